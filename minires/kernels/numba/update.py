"""Numba kernels of ``minires.ops.update``: the Adam step in Keras' form, in place, one fused
pass over each parameter and its two moments.
"""

from __future__ import annotations

import math

from numba import njit, prange

from ._launch import contiguous, launch


@njit(parallel=True, cache=True)
def _adam_update(p, g, m, v, lr_t, b1, b2, eps):
    one = b1 * 0 + 1
    for k in prange(p.size):
        gk = g[k]
        mk = b1 * m[k] + (one - b1) * gk
        vk = b2 * v[k] + (one - b2) * gk * gk
        m[k] = mk
        v[k] = vk
        p[k] -= lr_t * mk / (math.sqrt(vk) + eps)


def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps):
    """One Adam step in place, Keras' form; param, m, v must be C-contiguous, one dtype:

        m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  param -= lr_t * m / (sqrt(v) + eps)
    """
    t = param.dtype.type
    launch(_adam_update, param.size, param.reshape(-1), contiguous(grad).reshape(-1), m.reshape(-1),
           v.reshape(-1), t(lr_t), t(beta1), t(beta2), t(eps))


@njit(parallel=True, cache=True)
def _adam_update_many(ps, gs, ms, vs, lr_t, b1, b2, eps):
    one = b1 * 0 + 1
    for i in prange(len(ps)):                 # one array per iteration, whole
        p, g, m, v = ps[i], gs[i], ms[i], vs[i]
        for k in range(p.size):
            gk = g[k]
            mk = b1 * m[k] + (one - b1) * gk
            vk = b2 * v[k] + (one - b2) * gk * gk
            m[k] = mk
            v[k] = vk
            p[k] -= lr_t * mk / (math.sqrt(vk) + eps)


def adam_update_many(params, grads, ms, vs, lr_t, beta1, beta2, eps):
    """``adam_update`` for every (param, grad, m, v) of the lists in one kernel call: a model's
    parameters are many small arrays (the seed's 270,026 values are 24 arrays), and a call
    per array would pay the dispatch and the thread pool's start-up once per array. Every
    array is of one dtype; params, ms and vs C-contiguous."""
    t = params[0].dtype.type
    flat = [tuple(contiguous(a).reshape(-1) for a in arrays) for arrays in (params, grads, ms, vs)]
    _adam_update_many(*flat, t(lr_t), t(beta1), t(beta2), t(eps))
