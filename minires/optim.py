"""Optimizers: Adam and SGD, in Keras' form, updating parameters in place.

    opt.apply(params, grads)       # one step; params and grads are lists in the same order

Step t = 1, 2, ... (``opt.iterations`` counts the steps taken). The optimizers keep the
hyperparameters, the step count and the slots (Adam's moments m and v, SGD's velocity); the
updates themselves are the ops of ``minires.ops.update``, whose docstring writes them out:

- ``Adam``: Keras' Adam (``ops.adam_update_many``), or with ``epsilon_placement="torch"``
  PyTorch's, which adds eps to the bias-corrected root (``ops.adam_torch_update_many``). The two
  agree when PyTorch's eps is Keras' eps / sqrt(1 - b2^t), a factor that changes with the step,
  so no single eps makes them equal except eps = 0.
- ``SGD``: plain, with momentum, or Nesterov, in Keras' velocity form
  (``ops.sgd_update_many``); PyTorch's buffer form is the same method while lr is constant.

State: ``get_state()`` returns ``{"iterations": int, "<slot>/<i>": array, ...}`` (NumPy
copies), ``set_state`` takes it back, so a checkpoint resumes bit for bit.
"""

from __future__ import annotations

import math

import numpy

from . import ops
from .backend import array_module, to_numpy


class Optimizer:
    """Base: step counting, per-parameter slots, state export, configuration."""

    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: float, name: str):
        self.learning_rate = _non_negative(type(self).__name__, "learning_rate", learning_rate)
        self.name = name
        self.iterations = 0
        self._slots: dict[str, list] | None = None
        self._shapes: list[tuple[int, ...]] = []
        self._pending_state: dict | None = None

    def _who(self) -> str:
        return type(self).__name__

    @property
    def built(self) -> bool:
        return self._slots is not None

    def build(self, params) -> None:
        """Create zeroed slots (moments, velocities) shaped like ``params``."""
        params = list(params)
        self._slots = {name: [array_module(p).zeros_like(p) for p in params]
                       for name in self.active_slots()}
        self._shapes = [tuple(p.shape) for p in params]
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.set_state(state)

    def active_slots(self) -> tuple[str, ...]:
        return self.slot_names

    def apply(self, params, grads) -> None:
        """One step: update every parameter in ``params`` in place from ``grads``."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"{self._who()}: got {len(params)} parameters but {len(grads)} gradients")
        if not self.built:
            self.build(params)
        if len(params) != len(self._shapes):
            raise ValueError(f"{self._who()}: was built for {len(self._shapes)} parameters, "
                             f"got {len(params)}")
        for i, (p, g) in enumerate(zip(params, grads)):
            if tuple(g.shape) != tuple(p.shape) or tuple(p.shape) != self._shapes[i]:
                raise ValueError(f"{self._who()}: parameter {i} has shape {tuple(p.shape)} and its "
                                 f"gradient {tuple(g.shape)}; the optimizer was built for {self._shapes[i]}")
        step = self.iterations + 1
        grads = [g if g.dtype == p.dtype else g.astype(p.dtype) for p, g in zip(params, grads)]
        self._update_all(params, grads, step)
        self.iterations = step

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras' spelling: a list of (gradient, parameter) pairs."""
        pairs = list(grads_and_vars)
        self.apply([p for _, p in pairs], [g for g, _ in pairs])

    def _update_all(self, params, grads, step: int) -> None:
        """Update every parameter in place, with one update op for all of them."""
        raise NotImplementedError

    # -- state --------------------------------------------------------------------------------

    def get_state(self) -> dict:
        """{"iterations": int, "<slot>/<i>": NumPy array}: everything needed to resume."""
        state: dict = {"iterations": int(self.iterations)}
        for name, arrays in (self._slots or {}).items():
            for i, a in enumerate(arrays):
                state[f"{name}/{i}"] = numpy.array(to_numpy(a), copy=True)
        return state

    def set_state(self, state: dict) -> None:
        """Restore ``get_state()``'s output. Before the first step it is kept until ``build``."""
        iterations = state.get("iterations")
        if (isinstance(iterations, bool) or not isinstance(iterations, (int, numpy.integer))
                or iterations < 0):
            raise ValueError(f"{self._who()}.set_state: 'iterations' must be an int >= 0, "
                             f"got {iterations!r}")
        slot_keys = sorted(k for k in state if k != "iterations")
        if not self.built:
            if not slot_keys:
                self.iterations = int(iterations)
            else:
                self._pending_state = dict(state)
            return
        expected = sorted(f"{name}/{i}" for name in self._slots for i in range(len(self._shapes)))
        if slot_keys != expected:
            raise ValueError(f"{self._who()}.set_state: expected slots {_short(expected)}, got "
                             f"{_short(slot_keys)}")
        for name, arrays in self._slots.items():
            for i, a in enumerate(arrays):
                value = numpy.asarray(state[f"{name}/{i}"])
                if tuple(value.shape) != tuple(a.shape):
                    raise ValueError(f"{self._who()}.set_state: slot {name}/{i} must have shape "
                                     f"{tuple(a.shape)}, got {tuple(value.shape)}")
                a[...] = array_module(a).asarray(value.astype(a.dtype, copy=False))
        self.iterations = int(iterations)

    # -- configuration ------------------------------------------------------------------------

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        return cls(**config)


def _short(keys):
    return keys if len(keys) <= 6 else keys[:3] + ["..."] + keys[-2:]


def _non_negative(who, arg, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {arg} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{who}: {arg} must be a finite number >= 0, got {value!r}")
    return value


def _unit_interval(who, arg, value, closed: bool = False) -> float:
    value = _non_negative(who, arg, value)
    if value > 1 or (value == 1 and not closed):
        raise ValueError(f"{who}: {arg} must be in [0, 1{']' if closed else ')'}, got {value!r}")
    return value


class Adam(Optimizer):
    """Adam with Keras' defaults; ``epsilon_placement`` = "keras" or "torch" (module doc)."""

    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 epsilon_placement="keras", name="adam"):
        super().__init__(learning_rate, name)
        self.beta_1 = _unit_interval("Adam", "beta_1", beta_1)
        self.beta_2 = _unit_interval("Adam", "beta_2", beta_2)
        self.epsilon = _non_negative("Adam", "epsilon", epsilon)
        if epsilon_placement not in ("keras", "torch"):
            raise ValueError(f"Adam: epsilon_placement must be 'keras' or 'torch', got {epsilon_placement!r}")
        self.epsilon_placement = epsilon_placement

    def _update_all(self, params, grads, step):
        m, v = self._slots["m"], self._slots["v"]
        b1, b2 = self.beta_1, self.beta_2
        if self.epsilon_placement == "keras":
            lr_t = self.learning_rate * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            ops.adam_update_many(params, grads, m, v, lr_t, b1, b2, self.epsilon)
        else:
            ops.adam_torch_update_many(params, grads, m, v, self.learning_rate, b1, b2, self.epsilon,
                                       step)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "epsilon_placement": self.epsilon_placement}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, Keras' form."""

    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD"):
        super().__init__(learning_rate, name)
        self.momentum = _unit_interval("SGD", "momentum", momentum, closed=True)
        if not isinstance(nesterov, bool):
            raise ValueError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        self.nesterov = nesterov

    def active_slots(self):
        # Keras keeps no velocity when momentum is 0.
        return self.slot_names if self.momentum else ()

    def _update_all(self, params, grads, step):
        velocities = self._slots["velocity"] if self.momentum else None
        ops.sgd_update_many(params, grads, velocities, self.learning_rate, self.momentum, self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


_BY_NAME = {"adam": Adam, "sgd": SGD}
_BY_CLASS = {"Adam": Adam, "SGD": SGD}


def get(identifier) -> Optimizer:
    """An optimizer from a name ("adam", "sgd"), a config dict, or an Optimizer itself."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_CLASS.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; known: {', '.join(sorted(_BY_NAME))}")
        return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BY_CLASS:
        return _BY_CLASS[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"optimizer must be a name, a config dict or an Optimizer, got {identifier!r}")


def serialize(optimizer: Optimizer) -> dict:
    if type(optimizer).__name__ not in _BY_CLASS:
        raise ValueError(f"cannot save the optimizer {optimizer!r}: only minires' own optimizers are saved")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
