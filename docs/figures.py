"""The figures of minires' docs, drawn from minires itself, so they cannot drift from the code.

    python docs/figures.py [OUT_DIR]      (default: docs/figures/, which git ignores)

The site build runs ``generate`` (docs/hooks.py), so the published figures are always the
current code's. Every number in a figure comes from a call into minires: the windows from
``plan_windows`` and ``im2col``, the overlap counts from ``col2im``, the routing from
``maxpool2d_backward``, the transforms from ``minires.ops.winograd``, the shapes from the
seed's model, the residual gradients from ``Model.backward``, the curves from the committed
benchmark results. Needs Matplotlib (the ``plot`` or ``test`` extra).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)       # no display needed; the site build is headless
    import matplotlib.pyplot as plt
    plt.rcParams.update({"svg.hashsalt": "minires", "font.size": 9, "svg.fonttype": "path"})
    return plt


def _grid(ax, values, title, fmt="{:g}", cmap="Blues", highlight=None, vmin=None, vmax=None):
    """A matrix drawn as coloured cells with its numbers written in."""
    values = np.asarray(values, dtype=float)
    ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    for (r, c), v in np.ndenumerate(values):
        text = "" if np.isneginf(v) else fmt.format(v)
        ax.text(c, r, text, ha="center", va="center", fontsize=8)
    if highlight is not None:
        for (r, c) in zip(*np.nonzero(highlight)):
            ax.add_patch(_rect(c - 0.5, r - 0.5, 1, 1, "red", 2.0))
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(values.shape[1]))
    ax.set_yticks(range(values.shape[0]))
    ax.tick_params(labelsize=7, length=0)


def _rect(x, y, w, h, color, lw=1.5, ls="-"):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=lw, linestyle=ls)


def im2col_figure(plt, path: Path) -> None:
    """A 5x5 input padded to 7x7, a 3x3 kernel at stride 2: the four windows im2col copies
    into rows, and col2im(ones), how many windows read each padded pixel."""
    from minires.ops.im2col import col2im, im2col, pad_nhwc
    from minires.windows import plan_windows

    x = np.arange(1.0, 26.0).reshape(1, 5, 5, 1)
    window = plan_windows("conv2d", (5, 5), (3, 3), (2, 2), 1, allowed=("explicit",))
    xpad = pad_nhwc(x, window.padding)
    cols = im2col(xpad, window)                              # (1, 3, 3, 3, 3, 1)
    counts = col2im(np.ones_like(cols), xpad.shape, window)[0, :, :, 0]
    h_out, w_out = window.out_hw
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6), gridspec_kw={"width_ratios": [7, 9, 7]})
    _grid(axes[0], xpad[0, :, :, 0], f"xpad: x (5x5) padded by 1, windows 3x3 at stride 2",
          cmap="Greys", vmin=0, vmax=60)
    colors = ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown",
              "tab:pink", "tab:olive", "tab:cyan"]
    (sh, sw) = window.strides
    for k, (oh, ow) in enumerate(np.ndindex(h_out, w_out)):
        inset = 0.08 * (k % 3)
        axes[0].add_patch(_rect(ow * sw - 0.5 + inset, oh * sh - 0.5 + inset, 3 - 2 * inset,
                                3 - 2 * inset, colors[k], 1.8))
    rows = cols.reshape(h_out * w_out, -1)
    _grid(axes[1], rows, f"cols2d = im2col(xpad): one row per window ({rows.shape[0]} x {rows.shape[1]})",
          cmap="Greys", vmin=0, vmax=60)
    for k in range(rows.shape[0]):
        axes[1].add_patch(_rect(-0.5, k - 0.5, rows.shape[1], 1, colors[k], 1.8))
    _grid(axes[2], counts, "col2im(ones): windows reading each pixel", fmt="{:.0f}", cmap="Oranges",
          vmin=0, vmax=counts.max() + 1)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def maxpool_figure(plt, path: Path) -> None:
    """Max-pool 2x2 at stride 2 and 3x3 at stride 1 (overlapping) on one input with ties:
    where maxpool2d_backward sends each dy."""
    from minires import ops

    x = np.array([[1, 3, 2, 2],
                  [3, 0, 2, 1],
                  [4, 1, 0, 5],
                  [0, 4, 5, 2]], dtype=float).reshape(1, 4, 4, 1)
    fig, axes = plt.subplots(2, 3, figsize=(9, 6))
    for row, (size, stride) in enumerate(((2, 2), (3, 1))):
        y, cache = ops.maxpool2d_forward(x, pool_size=size, strides=stride)
        dy = np.arange(1.0, y.size + 1).reshape(y.shape)
        dx = ops.maxpool2d_backward(dy, cache)
        _grid(axes[row, 0], x[0, :, :, 0], f"x, pool {size}x{size} stride {stride}\n(red: a window's first maximum)",
              cmap="Greys", vmin=0, vmax=10, highlight=dx[0, :, :, 0] != 0)
        _grid(axes[row, 1], dy[0, :, :, 0], f"dy (y = {y[0, :, :, 0].astype(int).tolist()})", cmap="Blues",
              vmin=0, vmax=dy.max() * 1.5)
        _grid(axes[row, 2], dx[0, :, :, 0], "dx = maxpool2d_backward(dy)", cmap="Oranges",
              vmin=0, vmax=dx.max() * 1.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def winograd_figure(plt, path: Path) -> None:
    """F(2x2, 3x3) on one 4x4 tile: the transforms of minires.ops.winograd, step by step,
    and the direct correlation it equals."""
    from minires.ops.winograd import F2X2_3X3 as f

    rng = np.random.default_rng(3)
    d = rng.integers(-3, 4, (4, 4)).astype(float)
    g = rng.integers(-2, 3, (3, 3)).astype(float)
    u = f.G @ g @ f.G.T
    v = f.BT @ d @ f.BT.T
    m = u * v
    y = f.AT @ m @ f.AT.T
    direct = np.array([[np.sum(d[r:r + 3, c:c + 3] * g) for c in range(2)] for r in range(2)])
    assert np.allclose(y, direct)
    panels = [(d, "input tile d (4x4)"), (g, "kernel g (3x3)"), (v, "V = B^T d B"),
              (u, "U = G g G^T"), (m, "M = U * V (16 products)"), (y, "Y = A^T M A (2x2)"),
              (direct, "direct: 36 products")]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 2.9))
    for ax, (values, title) in zip(axes, panels):
        lim = np.abs(values).max() or 1
        _grid(ax, values, title, fmt="{:.3g}", cmap="RdBu", vmin=-lim * 1.6, vmax=lim * 1.6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def seed_layers(model):
    """(name, type, output shape, receptive field, parameters) per layer of a one-input chain-like
    model: the receptive field of one output pixel on the input, grown by each conv or pool
    (r += (k - 1) * jump; jump *= stride), the larger one where two paths meet."""
    fields = {}
    rows = []
    for layer in model.layers:
        node = layer._nodes[0]
        inbound = [fields[id(t)] for t in node.inbound if id(t) in fields] or [(1, 1)]
        r, jump = max(inbound)
        kind = type(layer).__name__
        if kind == "Conv2D":
            k, s = layer.kernel_size[0], layer.strides[0]
            r, jump = r + (k - 1) * jump, jump * s
        elif kind == "MaxPooling2D":
            k, s = layer.pool_size[0], layer.strides[0]
            r, jump = r + (k - 1) * jump, jump * s
        fields[id(node)] = (r, jump)
        rows.append((layer.name, kind, tuple(node.shape), r, layer.count_params()))
    return rows


def model_figure(plt, path: Path) -> None:
    """The seed's model: every layer's output shape and receptive field on the input."""
    from minires.models import build_resnet

    rows = seed_layers(build_resnet(seed=0))
    fig, ax = plt.subplots(figsize=(8.5, 0.25 * len(rows) + 0.5))
    ax.axis("off")
    table = ax.table(cellText=[[n, k, str(s).replace("None", "N"),
                                f"{r}x{r}" if k not in ("Flatten", "Dense") else "the whole image",
                                f"{p:,}"]
                               for n, k, s, r, p in rows],
                     colLabels=["layer", "type", "output shape", "receptive field", "parameters"],
                     colWidths=[0.22, 0.2, 0.2, 0.2, 0.18], bbox=[0, 0, 1, 1],
                     cellLoc="left", colLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (r, _), cell in table.get_celld().items():
        name = rows[r - 1][0] if r > 0 else ""
        if "skip" in name:
            cell.set_facecolor("#fde9d9")
        elif name.startswith("block"):
            cell.set_facecolor("#e8f0fb")
    ax.set_title("The seed's model (build_resnet): blue the main path of each residual block, "
                 "orange its skip path.\nA receptive field wider than 32 reaches into the zero padding.",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def residual_gradients():
    """The gradients that reach the residual block's input through its main path and through
    its skip path, in the tiny seed-shaped model and batch of docs/training-step.md (their
    sum is what Model.backward hands to the layer below)."""
    from minires import ops
    from minires.models import build_resnet

    model = build_resnet(input_shape=(8, 8, 3), num_classes=3, filters=4, blocks=1,
                         dense_units=6, seed=0, dtype="float64")
    x = np.random.default_rng(1).uniform(0.0, 1.0, (2, 8, 8, 3))
    labels = np.array([0, 2])
    logits = model.forward(x, training=True, return_logits=True)
    _, cache = ops.softmax_cross_entropy_forward(logits, labels)
    dlogits = ops.softmax_cross_entropy_backward(np.array(1.0), cache)
    # Run the backward pass layer by layer from the top, down to the block's add.
    order = [layer.name for layer in model.layers]
    g = dlogits
    for name in reversed(order[order.index("block1_add") + 1:]):
        g = model.get_layer(name).backward(g)
    d_main, d_skip = model.get_layer("block1_add").backward(g)
    for name in ("block1_pool", "block1_conv2", "block1_conv1"):
        d_main = model.get_layer(name).backward(d_main)
    for name in ("block1_skip_pool", "block1_skip_conv"):
        d_skip = model.get_layer(name).backward(d_skip)
    return d_main, d_skip


def residual_figure(plt, path: Path) -> None:
    """Backward through a residual block: dy splits at the add, runs down both paths, and the
    two gradients add at the block's input."""
    d_main, d_skip = residual_gradients()
    total = d_main + d_skip
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), gridspec_kw={"width_ratios": [1.4, 1, 1, 1]})
    ax = axes[0]
    ax.axis("off")
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    boxes = {"add + relu": (5, 9), "pool": (2.5, 7), "conv2 3x3": (2.5, 5), "conv1 3x3 + relu": (2.5, 3),
             "skip pool": (7.5, 6), "skip conv 1x1": (7.5, 4), "block input": (5, 1)}
    for text, (cx, cy) in boxes.items():
        ax.text(cx, cy, text, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": "#e8f0fb" if cx < 5 else "#fde9d9" if cx > 5 else "#eeeeee"})
    arrow = {"arrowstyle": "->", "color": "black", "shrinkA": 9, "shrinkB": 9}
    for a, b in [("add + relu", "pool"), ("pool", "conv2 3x3"), ("conv2 3x3", "conv1 3x3 + relu"),
                 ("conv1 3x3 + relu", "block input"), ("add + relu", "skip pool"),
                 ("skip pool", "skip conv 1x1"), ("skip conv 1x1", "block input")]:
        ax.annotate("", xy=boxes[b], xytext=boxes[a], arrowprops=arrow)
    ax.set_title("gradients flow down both paths and add", fontsize=9)
    lim = np.abs(total[0, :, :, 0]).max()
    for axis, values, title in ((axes[1], d_main, "through the main path"),
                                (axes[2], d_skip, "through the skip path"),
                                (axes[3], total, "their sum: dL/d(block input)")):
        axis.imshow(values[0, :, :, 0], cmap="RdBu", vmin=-lim, vmax=lim)
        axis.set_title(f"{title}\nchannel 0 shown; norm over all {np.linalg.norm(values):.3g}", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def curves_figure(plt, path: Path) -> None:
    """Validation and training accuracy per epoch of the seed's recipe on CIFAR-10, from the
    committed results (benchmarks/results/*-cifar10.json)."""
    results = ROOT / "benchmarks" / "results"
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for file in sorted(results.glob("*cifar10*.json")):
        history = json.loads(file.read_text())["history"]
        epochs = range(1, len(history) + 1)
        line, = ax.plot(epochs, [100 * h["val_accuracy"] for h in history], marker="o", ms=3,
                        label=f"{file.stem}: validation")
        ax.plot(epochs, [100 * h["accuracy"] for h in history], ls="--", color=line.get_color(),
                label=f"{file.stem}: training")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("The seed's recipe on CIFAR-10 (benchmarks/results)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


FIGURES = {
    "im2col.svg": im2col_figure,
    "maxpool.svg": maxpool_figure,
    "winograd.svg": winograd_figure,
    "model.svg": model_figure,
    "residual.svg": residual_figure,
    "curves.svg": curves_figure,
}


def generate(out) -> list[Path]:
    """Write every figure into ``out``; returns their paths."""
    plt = _pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES.items():
        draw(plt, out / name)
        written.append(out / name)
    return written


if __name__ == "__main__":
    for path in generate(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "figures"):
        print(path)
