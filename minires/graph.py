"""The graph of a functional model: symbolic tensors, the nodes layer calls record, and the order.

    inputs = Input(shape=(32, 32, 3))              # a KerasTensor: a shape, no values
    x = Conv2D(64, 3, padding="same")(inputs)      # record_call: a node of the graph
    outputs = Dense(10, activation="softmax")(Flatten()(x))

Calling a layer on a ``KerasTensor`` computes nothing: ``record_call`` builds the layer for
the input's shape and returns a new ``KerasTensor`` that remembers the layer and the tensors
it was called on. ``map_nodes`` walks these links back from a model's outputs and returns
the tensors (the nodes) in the order the model computes them; ``map_graph`` returns the
layers in that order, each once.

A layer may be called more than once (a Siamese network runs one encoder on two images):
each call is a node of its own, numbered by ``KerasTensor.node_index``, and the layer's
parameters are shared by all of them.

The graph is a DAG (a residual block's input feeds two paths). The order is Keras': by
decreasing depth from the output, ties in the order a depth-first walk from the output first
meets them. That is a topological order: forward runs through it, backward runs through it
reversed, and a model's ``get_weights`` lists the parameters in it, layer by layer (kernel,
bias), which is Keras' order.

This module sits below the layers and the model, and imports neither: it sees a layer only
through what every layer has (``name``, ``_nodes``, ``_dtype``, ``dtype``, ``output_shape``,
``_who()``, ``_ensure_built()``). A tensor with no inbound tensors is the output of an
``InputLayer`` (a layer call always has at least one input).
"""

from __future__ import annotations


class KerasTensor:
    """A symbolic tensor: the shape (batch None) and dtype of a layer's future output."""

    def __init__(self, shape, dtype, layer, inbound=(), list_call=False, node_index=0):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.layer = layer              # the layer that produces it
        self.inbound = list(inbound)    # the tensors that layer was called on; none for an input
        self.list_call = list_call      # True when the layer was called on a list
        self.node_index = node_index    # which call of the layer made it (0 unless shared)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


def record_call(layer, inputs, **kwargs) -> KerasTensor:
    """``layer(inputs)`` on KerasTensors: build the layer and add a node to the graph."""
    who = layer._who()
    if kwargs:
        raise ValueError(f"{who}: unsupported call arguments {sorted(kwargs)}")
    list_call = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if list_call else [inputs]
    if not tensors:
        raise ValueError(f"{who}: called on an empty list")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise ValueError(f"{who}: inputs have different dtypes {sorted(dtypes)}")
    dtype = tensors[0].dtype
    if layer._dtype is not None and layer._dtype != dtype:
        raise ValueError(f"{who}: dtype {layer._dtype} differs from its input's {dtype}")
    shapes = [t.shape for t in tensors]
    if layer._nodes and list_call != layer._nodes[0].list_call:
        raise ValueError(f"{who}: was first called on {'a list' if layer._nodes[0].list_call else 'one tensor'}; "
                         f"a shared layer must be called the same way each time")
    # A second call of a built layer checks the new input against the built shape.
    layer._ensure_built(shapes if list_call else shapes[0], dtype)
    shape = layer.compute_output_shape(shapes if list_call else shapes[0]) if layer._nodes else layer.output_shape
    out = KerasTensor(shape, layer.dtype, layer, tensors, list_call, node_index=len(layer._nodes))
    layer._nodes.append(out)
    return out


def map_graph(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> list:
    """The layers between ``inputs`` and ``outputs``, in Keras' order, each once."""
    layers: dict = {}
    for node in map_nodes(inputs, outputs):
        layers.setdefault(node.layer, None)
    return list(layers)


def map_nodes(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> list[KerasTensor]:
    """The tensors between ``inputs`` and ``outputs`` (both included), in the order a model
    computes them (see the module doc); a layer called twice appears twice."""
    first_seen: dict = {}
    finished: set[int] = set()
    in_progress: set[int] = set()
    post_order: list[KerasTensor] = []
    input_ids = {id(t) for t in inputs}

    def visit(tensor: KerasTensor) -> None:
        # Iterative depth-first walk (a deep network must not hit Python's recursion limit).
        stack = [(tensor, False)]
        while stack:
            t, expanded = stack.pop()
            if id(t) in finished:
                continue
            if expanded:
                in_progress.discard(id(t))
                finished.add(id(t))
                post_order.append(t)
                continue
            if id(t) in in_progress:
                raise ValueError(f"Model: the graph has a cycle through layer {t.layer.name!r}")
            first_seen.setdefault(id(t), len(first_seen))
            in_progress.add(id(t))
            stack.append((t, True))
            if id(t) in input_ids:
                continue
            if not t.inbound:
                raise ValueError(f"Model: the outputs depend on the input {t.layer.name!r}, which "
                                 f"is not among the model's inputs (graph disconnected)")
            for parent in reversed(t.inbound):
                stack.append((parent, False))

    for out in outputs:
        visit(out)

    depth: dict[int, int] = {}
    tensors = {id(t): t for t in post_order}
    for t in reversed(post_order):          # consumers before producers
        d = depth.setdefault(id(t), 0)
        if id(t) in input_ids:
            continue
        for parent in t.inbound:
            depth[id(parent)] = max(depth.get(id(parent), 0), d + 1)
    by_depth: dict[int, list] = {}
    for tid, d in depth.items():
        by_depth.setdefault(d, []).append(tensors[tid])
    ordered = []
    for d in sorted(by_depth, reverse=True):
        ordered.extend(sorted(by_depth[d], key=lambda t: first_seen[id(t)]))
    for t in inputs:
        if id(t) not in first_seen:
            raise ValueError(f"Model: the input {t.layer.name!r} is not connected to the outputs")
    return ordered
