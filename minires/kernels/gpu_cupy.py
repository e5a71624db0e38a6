"""CUDA kernels for the GPU, through CuPy: the fast paths of the ``cupy`` backend.

``minires.backend.kernel(name, *arrays)`` looks kernels up here when the backend is ``cupy``
and the arrays are CuPy arrays, by the names of the table ``minires.kernels.interface.KERNELS``
(which states each one's contract); this module provides the ones listed in ``__all__``. Each
stands for a piece of array code in ``minires.ops`` and returns what it returns (``im2col``
the same ``cols``, ``maxpool2d_forward`` the same ``y`` and ``argmax``), so an op takes either
path with one line (``k = kernel("im2col", x)``) and its cache stays the same. Where this
module has no kernel (the numba backend's whole blocked convolutions, Winograd's stages), the
op runs its array code on CuPy and asks here for the finer kernels that replace steps of it:
an im2col convolution is the ``im2col`` kernel, one cuBLAS product, ``bias_relu`` and, backward,
``bias_relu_backward`` and ``col2im``.

The rules every kernel follows, so that the code reads the way it does:

1. **One thread per output element**, in a grid-stride loop over the flat C-order index of
   the output (per row for the softmax cross-entropy, whose rows need their own maximum and
   sum; per (block of rows, channel) for the bias gradient's partial sums): a thread writes
   only what it owns, so no two threads ever write one address. No atomics, no locks, no
   races, and results do not depend on scheduling.
2. **Adjoints are gathers, not scatters.** col2im and the max-pool backward pass are written
   from the receiving side: each input pixel sums the windows that read it, in the same
   (i, j) order as the array code and the Numba kernels, so float64 results agree with them
   to the last bit. (A scatter with ``atomicAdd`` would add in whatever order the threads
   arrive: faster to write, but not reproducible from run to run.)
3. **Neighbouring threads touch neighbouring addresses.** The flat index runs fastest over
   channels, which NHWC stores contiguously, so a warp reads and writes one contiguous run
   of memory (coalesced accesses); the bias gradient's threads are (chunk, channel) pairs for
   the same reason.
4. **Kernels take C-contiguous arrays**; the Python wrappers make them so, and allocate every
   output with CuPy. Each kernel is a C++ template compiled once per dtype (float32,
   float64) and index width (32-bit indices where the arrays allow, since 64-bit division is
   several times slower on a GPU; 64-bit past 2^31 elements).
5. **Compiled on first use, then cached**: the whole source is one ``cupy.RawModule`` per
   dtype, built by NVRTC the first time a kernel of that dtype runs; CuPy keeps the binary
   in its kernel cache (``~/.cupy/kernel_cache``), so later processes load it instead of
   compiling. Importing this module compiles nothing.
6. **IEEE arithmetic, no contraction** (``--fmad=false``, no fast-math): a * b + c is two
   rounded operations, as in NumPy, never one fused multiply-add; divisions and square roots
   are correctly rounded; NaN and infinity keep their meaning in max-pool and ReLU. These
   kernels do a few operations per element they load, so memory traffic, not arithmetic,
   bounds them. One difference from NumPy remains: CuPy compiles every kernel with
   ``-ftz=true``, so float32 subnormals (below 1.2e-38 in magnitude) read as zero (a
   subnormal ReLU input gives 0 and a False mask). float64 keeps them.
7. **Scalars are cast to the arrays' dtype** before a kernel runs, so float32 work is
   float32 arithmetic, as in the array code; only the softmax cross-entropy works in float64
   inside (its exponentials, sums and logarithms), like the Numba kernel.
8. **Nothing waits for the GPU.** No wrapper reads a device value back: the softmax
   cross-entropy returns its loss as a 0-d device array (float64) and takes ``dloss`` as one,
   so a training step is queued on the GPU without a host round trip in the middle.
9. **Matrix products are cuBLAS** (CuPy's ``@``), in the operands' precision: CuPy lets
   cuBLAS use TensorFloat-32 for float32 only when the environment sets ``CUPY_TF32=1``,
   which minires never does.

Winograd's transforms are not rewritten here: ``minires.ops.winograd``'s array code runs on
CuPy unchanged. ``conv2d``'s ``"auto"`` never picks Winograd on ``cupy``: an im2col convolution
is one large cuBLAS product, its home ground.
"""

from __future__ import annotations

import functools

import cupy
import numpy

from ..windows import argmax_dtype

__all__ = [
    "adam_update", "adam_update_many",
    "bias_relu", "bias_relu_backward",
    "col2im", "im2col",
    "maxpool2d_backward", "maxpool2d_forward",
    "relu_backward", "relu_forward",
    "softmax_cross_entropy_backward", "softmax_cross_entropy_forward",
]

_THREADS = 256            # threads per block: a multiple of the warp size, good occupancy
_MAX_BLOCKS = 65535       # grid cap; the grid-stride loop covers the rest
_INT32_LIMIT = 2**31 - 1 - _THREADS * _MAX_BLOCKS   # idx + stride must not overflow an int
_DTYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}

# The CUDA C++ source of every kernel, templated on the value type T and the index type I.
_SOURCE = r"""
template <typename T> struct Limits;
template <> struct Limits<float> {
    __device__ static float neg_inf() { return __int_as_float(0xff800000); }
};
template <> struct Limits<double> {
    __device__ static double neg_inf() { return __longlong_as_double(0xfff0000000000000ULL); }
};

#define GRID_STRIDE(idx, total) \
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); \
         idx += (I)blockDim.x * gridDim.x)

// cols[b, oh, ow, i, j, ch] = x[b, oh*sh + i - top, ow*sw + j - left, ch], 0 off the image.
template <typename T, typename I>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, I total,
                       int h, int w, int c, int h_out, int w_out, int kh, int kw,
                       int sh, int sw, int top, int left) {
    GRID_STRIDE(idx, total) {
        I rest = idx;
        const int ch = rest % c; rest /= c;
        const int j = rest % kw; rest /= kw;
        const int i = rest % kh; rest /= kh;
        const int ow = rest % w_out; rest /= w_out;
        const int oh = rest % h_out;
        const I b = rest / h_out;
        const int r = oh * sh + i - top, s = ow * sw + j - left;
        cols[idx] = (0 <= r && r < h && 0 <= s && s < w) ? x[((b * h + r) * w + s) * c + ch] : T(0);
    }
}

// dx[b, r, s, ch] = sum over the windows (oh, ow) that read padded pixel (r + top, s + left)
// at offset (i, j) of cols[b, oh, ow, i, j, ch], in row-major (i, j) order.
template <typename T, typename I>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ dx, I total,
                       int h, int w, int c, int h_out, int w_out, int kh, int kw,
                       int sh, int sw, int top, int left) {
    GRID_STRIDE(idx, total) {
        I rest = idx;
        const int ch = rest % c; rest /= c;
        const int s = rest % w; rest /= w;
        const int r = rest % h;
        const I b = rest / h;
        T sum = T(0);
        for (int i = 0; i < kh; ++i) {
            const int t = r + top - i;
            if (t < 0 || t % sh != 0 || t / sh >= h_out) continue;
            const int oh = t / sh;
            for (int j = 0; j < kw; ++j) {
                const int u = s + left - j;
                if (u < 0 || u % sw != 0 || u / sw >= w_out) continue;
                const int ow = u / sw;
                sum += cols[((((b * h_out + oh) * w_out + ow) * kh + i) * kw + j) * c + ch];
            }
        }
        dx[idx] = sum;
    }
}

// y = the window's maximum, argmax = i*pw + j of its first maximum in row-major order, stored
// as A (windows.argmax_dtype: unsigned char up to 256 window elements). The padding reads as
// -inf; a NaN wins and stays (the first NaN), as NumPy's argmax has it.
template <typename T, typename A, typename I>
__global__ void maxpool_forward(const T* __restrict__ x, T* __restrict__ y,
                                A* __restrict__ argmax, I total,
                                int h, int w, int c, int h_out, int w_out, int ph, int pw,
                                int sh, int sw, int top, int left) {
    GRID_STRIDE(idx, total) {
        I rest = idx;
        const int ch = rest % c; rest /= c;
        const int ow = rest % w_out; rest /= w_out;
        const int oh = rest % h_out;
        const I b = rest / h_out;
        T best = Limits<T>::neg_inf();
        int where = 0;
        for (int k = 0; k < ph * pw; ++k) {
            const int r = oh * sh + k / pw - top, s = ow * sw + k % pw - left;
            const T v = (0 <= r && r < h && 0 <= s && s < w)
                ? x[((b * h + r) * w + s) * c + ch] : Limits<T>::neg_inf();
            if (k == 0 || (best == best && (v > best || v != v))) {
                best = v;
                where = k;
            }
        }
        y[idx] = best;
        argmax[idx] = (A)where;
    }
}

// dx[b, r, s, ch] = sum of dy over the windows whose first maximum is this pixel.
template <typename T, typename A, typename I>
__global__ void maxpool_backward(const T* __restrict__ dy, const A* __restrict__ argmax,
                                 T* __restrict__ dx, I total,
                                 int h, int w, int c, int h_out, int w_out, int ph, int pw,
                                 int sh, int sw, int top, int left) {
    GRID_STRIDE(idx, total) {
        I rest = idx;
        const int ch = rest % c; rest /= c;
        const int s = rest % w; rest /= w;
        const int r = rest % h;
        const I b = rest / h;
        T sum = T(0);
        for (int i = 0; i < ph; ++i) {
            const int t = r + top - i;
            if (t < 0 || t % sh != 0 || t / sh >= h_out) continue;
            const int oh = t / sh;
            for (int j = 0; j < pw; ++j) {
                const int u = s + left - j;
                if (u < 0 || u % sw != 0 || u / sw >= w_out) continue;
                const I o = ((b * h_out + oh) * w_out + u / sw) * c + ch;
                if ((int)argmax[o] == i * pw + j) sum += dy[o];
            }
        }
        dx[idx] = sum;
    }
}

// y = max(x, 0) with NaN kept, positive = x > 0.
template <typename T, typename I>
__global__ void relu_forward(const T* __restrict__ x, T* __restrict__ y,
                             bool* __restrict__ positive, I total) {
    GRID_STRIDE(idx, total) {
        const T v = x[idx];
        positive[idx] = v > T(0);
        y[idx] = (v > T(0) || v != v) ? v : T(0);
    }
}

template <typename T, typename I>
__global__ void relu_backward(const T* __restrict__ dy, const bool* __restrict__ positive,
                              T* __restrict__ dx, I total) {
    GRID_STRIDE(idx, total) {
        dx[idx] = positive[idx] ? dy[idx] : T(0);
    }
}

// In place over z: z = max(z + b, 0) with NaN kept, positive = z + b > 0; b over the last axis.
template <typename T, typename I>
__global__ void bias_relu(T* __restrict__ z, const T* __restrict__ b,
                          bool* __restrict__ positive, I total, int c, int has_bias) {
    GRID_STRIDE(idx, total) {
        const T v = has_bias ? z[idx] + b[idx % c] : z[idx];
        positive[idx] = v > T(0);
        z[idx] = (v > T(0) || v != v) ? v : T(0);
    }
}

// dz = dy where positive, else 0, over (rows, c); thread (chunk, ch) also sums its column of
// dz over its fixed block of rows into partial[chunk, ch], so the bias gradient's summation
// order depends only on the shape.
template <typename T, typename I>
__global__ void bias_relu_backward(const T* __restrict__ dy, const bool* __restrict__ positive,
                                   T* __restrict__ dz, T* __restrict__ partial,
                                   I rows, int c, int chunks) {
    GRID_STRIDE(t, (I)chunks * c) {
        const int ch = t % c, chunk = t / c;
        const I first = (I)((long long)rows * chunk / chunks);
        const I last = (I)((long long)rows * (chunk + 1) / chunks);
        T acc = T(0);
        for (I row = first; row < last; ++row) {
            const I k = row * c + ch;
            const T v = positive[k] ? dy[k] : T(0);
            dz[k] = v;
            acc += v;
        }
        partial[t] = acc;
    }
}

// One thread per row of logits z (n, c): log-softmax shifted by the row's maximum, in double;
// probs = exp(log p) and the row's loss -sum_k t[k] log p[k] (t one-hot at ids[row] if sparse).
template <typename T, typename I>
__global__ void softmax_xent_forward(const T* __restrict__ z, const long long* __restrict__ ids,
                                     const T* __restrict__ t, T* __restrict__ probs,
                                     double* __restrict__ row_loss, I n, int c, int sparse) {
    GRID_STRIDE(row, n) {
        const T* zr = z + row * c;
        T top = zr[0];
        for (int k = 1; k < c; ++k) top = zr[k] > top ? zr[k] : top;
        double total = 0.0;
        for (int k = 0; k < c; ++k) total += exp((double)zr[k] - (double)top);
        const double shift = (double)top + log(total);
        double loss = 0.0;
        for (int k = 0; k < c; ++k) {
            const double log_p = (double)zr[k] - shift;
            probs[row * c + k] = (T)exp(log_p);
            if (!sparse) loss -= (double)t[row * c + k] * log_p;
        }
        if (sparse) {
            const long long id = ids[row];
            // The op checks ids against [0, c); an id outside it gives NaN, never a stray read.
            loss = (0 <= id && id < c) ? -((double)zr[id] - shift) : __longlong_as_double(0x7ff8000000000000ULL);
        }
        row_loss[row] = loss;
    }
}

// dz[row, k] = (p * s - t) * scale, s = sum_k t[row, k] (1 for class ids), scale = dloss / n.
template <typename T, typename I>
__global__ void softmax_xent_backward(const T* __restrict__ probs, const long long* __restrict__ ids,
                                      const T* __restrict__ t, const T* __restrict__ scale,
                                      T* __restrict__ dz, I total, int c, int sparse) {
    GRID_STRIDE(idx, total) {
        const I row = idx / c;
        const int k = idx % c;
        if (sparse) {
            dz[idx] = (probs[idx] - (ids[row] == k ? T(1) : T(0))) * scale[0];
        } else {
            const T* tr = t + row * c;
            T s = tr[0];
            for (int q = 1; q < c; ++q) s += tr[q];
            dz[idx] = (probs[idx] * s - t[idx]) * scale[0];
        }
    }
}

// Keras' Adam, in place: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
// p -= lr_t * m / (sqrt(v) + eps).
template <typename T, typename I>
__global__ void adam_update(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, I total, T lr_t, T b1, T b2,
                            T one_minus_b1, T one_minus_b2, T eps) {
    GRID_STRIDE(idx, total) {
        const T gk = g[idx];
        const T mk = b1 * m[idx] + one_minus_b1 * gk;
        const T vk = b2 * v[idx] + one_minus_b2 * gk * gk;
        m[idx] = mk;
        v[idx] = vk;
        p[idx] -= lr_t * mk / (sqrt(vk) + eps);
    }
}
"""

_KERNELS = ("im2col", "col2im", "maxpool_forward", "maxpool_backward", "relu_forward",
            "relu_backward", "bias_relu", "bias_relu_backward", "softmax_xent_forward",
            "softmax_xent_backward", "adam_update")
_INDEX_TYPES = {numpy.int32: "int", numpy.int64: "long long"}
# Max-pool's argmax is stored in windows.argmax_dtype(window): uint8 or int32 (int64 accepted).
_ARGMAX_TYPES = {numpy.dtype(numpy.uint8): "unsigned char", numpy.dtype(numpy.int32): "int",
                 numpy.dtype(numpy.int64): "long long"}
_POOL_KERNELS = ("maxpool_forward", "maxpool_backward")
_OPTIONS = ("--std=c++14", "--fmad=false")


def _instance(kernel: str, value_type: str, index_type: str, argmax_type: str | None = None) -> str:
    middle = "" if argmax_type is None else f"{argmax_type}, "
    return f"{kernel}<{value_type}, {middle}{index_type}>"


def _instances(value_type: str) -> list[str]:
    """Every template instance for one value type: both index widths, every argmax type."""
    names = []
    for kernel in _KERNELS:
        for index_type in _INDEX_TYPES.values():
            if kernel in _POOL_KERNELS:
                names += [_instance(kernel, value_type, index_type, a) for a in _ARGMAX_TYPES.values()]
            else:
                names.append(_instance(kernel, value_type, index_type))
    return names


@functools.lru_cache(maxsize=None)
def _module(dtype: numpy.dtype) -> cupy.RawModule:
    """Every kernel for ``dtype``, compiled by NVRTC on first use (then from CuPy's cache)."""
    return cupy.RawModule(code=_SOURCE, options=_OPTIONS, name_expressions=_instances(_DTYPES[dtype]))


class _Index(int):
    """A kernel argument of the index type ``I`` (``int`` or ``long long``, chosen by ``_launch``)."""


def _launch(kernel: str, dtype, work: int, *args, extent: int = 0, argmax=None) -> None:
    """Run ``kernel`` with one thread per item of ``work`` (a grid-stride loop), or do nothing
    when there is no work.

    The index type follows the size: 32-bit while every flat index the kernel forms (into its
    output, ``work``, and into its largest input, ``extent``) plus one grid stride fits in an
    int; ``_Index`` arguments are passed in that type. ``argmax``: the dtype of max-pool's argmax array.
    """
    if work <= 0:
        return
    index = numpy.int32 if max(work, extent) <= _INT32_LIMIT else numpy.int64
    dtype = numpy.dtype(dtype)
    argmax_type = None if argmax is None else _ARGMAX_TYPES[numpy.dtype(argmax)]
    function = _module(dtype).get_function(_instance(kernel, _DTYPES[dtype], _INDEX_TYPES[index], argmax_type))
    blocks = min(-(-work // _THREADS), _MAX_BLOCKS)
    function((blocks,), (_THREADS,), tuple(index(a) if isinstance(a, _Index) else a for a in args))


def _ints(*values) -> tuple:
    """Geometry arguments as C ``int`` (a Python int would be passed as a 64-bit ``long long``)."""
    return tuple(numpy.int32(v) for v in values)


# --- argument checks --------------------------------------------------------------------------

def _float_array(op: str, name: str, a, writable: bool = False):
    """``a`` as a C-contiguous float32/float64 CuPy array; NumPy input is copied to the device
    unless the kernel writes into it (``writable``), which must then be a C-contiguous CuPy array."""
    if writable and not (isinstance(a, cupy.ndarray) and a.flags.c_contiguous):
        raise TypeError(f"gpu_cupy.{op}: {name} is written in place and must be a C-contiguous "
                        f"CuPy array, got {type(a).__name__}"
                        + (" (not C-contiguous)" if isinstance(a, cupy.ndarray) else ""))
    if not writable:
        a = cupy.ascontiguousarray(a)
    if a.dtype not in _DTYPES:
        raise TypeError(f"gpu_cupy.{op}: {name} must be float32 or float64, got dtype {a.dtype}")
    return a


def _expect_shape(op: str, name: str, a, shape) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"gpu_cupy.{op}: {name} must have shape {tuple(shape)}, got {tuple(a.shape)}")


def _expect_dtype(op: str, name: str, a, dtype) -> None:
    if a.dtype != dtype:
        raise TypeError(f"gpu_cupy.{op}: {name} must have dtype {dtype}, got {a.dtype}")


def _nhwc_shape(op: str, name: str, shape) -> tuple[int, int, int, int]:
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4:
        raise ValueError(f"gpu_cupy.{op}: {name} must be NHWC with 4 dims, got {shape}")
    return shape


# --- im2col / col2im --------------------------------------------------------------------------

def im2col(x, window):
    """Windows of x, padded with zeros as ``window.padding`` says: (N, h_out, w_out, kh, kw, C).

    The same array as ``ops.im2col.im2col(pad_nhwc(x, window.padding), window)``, without
    building the padded copy: reads that fall on the padding give 0.
    """
    if window.pointwise:
        return x[:, :, :, None, None, :]         # each window is one pixel: a view, no copy
    x = _float_array("im2col", "x", x)
    n, h, w, c = _nhwc_shape("im2col", "x", x.shape)
    (kh, kw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    cols = cupy.empty((n, h_out, w_out, kh, kw, c), dtype=x.dtype)
    _launch("im2col", x.dtype, cols.size, x, cols, _Index(cols.size),
            *_ints(h, w, c, h_out, w_out, kh, kw, sh, sw, top, left), extent=x.size)
    return cols


def col2im(cols, x_shape, window):
    """Adjoint of ``im2col``, cropped to the input: dx (N, H, W, C), the padding's share dropped.

    The same as ``unpad_nhwc(col2im(cols, padded_shape, window), ...)`` of the array code, as a
    gather: each input pixel sums the window rows that read it, in the same (i, j) order.
    """
    if window.pointwise:
        return cols[:, :, :, 0, 0, :]
    cols = _float_array("col2im", "cols", cols)
    n, h, w, c = _nhwc_shape("col2im", "x_shape", x_shape)
    (kh, kw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    _expect_shape("col2im", "cols", cols, (n, h_out, w_out, kh, kw, c))
    dx = cupy.empty((n, h, w, c), dtype=cols.dtype)
    _launch("col2im", cols.dtype, dx.size, cols, dx, _Index(dx.size),
            *_ints(h, w, c, h_out, w_out, kh, kw, sh, sw, top, left), extent=cols.size)
    return dx


# --- max-pool ---------------------------------------------------------------------------------

def maxpool2d_forward(x, window):
    """(y, argmax) of a max-pool: argmax[n, oh, ow, c] = i*pw + j of the first maximum."""
    x = _float_array("maxpool2d_forward", "x", x)
    n, h, w, c = _nhwc_shape("maxpool2d_forward", "x", x.shape)
    (ph, pw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    y = cupy.empty((n, h_out, w_out, c), dtype=x.dtype)
    argmax = cupy.empty(y.shape, dtype=argmax_dtype(window))     # the array code's type
    _launch("maxpool_forward", x.dtype, y.size, x, y, argmax, _Index(y.size),
            *_ints(h, w, c, h_out, w_out, ph, pw, sh, sw, top, left), extent=x.size, argmax=argmax.dtype)
    return y, argmax


def maxpool2d_backward(dy, argmax, x_shape, window):
    """dx of a max-pool: each input pixel gathers dy of the windows whose winner it is."""
    dy = _float_array("maxpool2d_backward", "dy", dy)
    n, h, w, c = _nhwc_shape("maxpool2d_backward", "x_shape", x_shape)
    (ph, pw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    _expect_shape("maxpool2d_backward", "dy", dy, (n, h_out, w_out, c))
    _expect_shape("maxpool2d_backward", "argmax", argmax, dy.shape)
    argmax = cupy.ascontiguousarray(argmax)
    if argmax.dtype not in _ARGMAX_TYPES:
        raise TypeError(f"gpu_cupy.maxpool2d_backward: argmax must be uint8, int32 or int64, "
                        f"got dtype {argmax.dtype}")
    dx = cupy.empty((n, h, w, c), dtype=dy.dtype)
    _launch("maxpool_backward", dy.dtype, dx.size, dy, argmax, dx, _Index(dx.size),
            *_ints(h, w, c, h_out, w_out, ph, pw, sh, sw, top, left), extent=dy.size, argmax=argmax.dtype)
    return dx


# --- ReLU -------------------------------------------------------------------------------------

def relu_forward(x):
    """(y, positive): y = max(x, 0) with NaN propagated, and the mask x > 0, in one pass."""
    x = _float_array("relu_forward", "x", x)
    y = cupy.empty(x.shape, dtype=x.dtype)
    positive = cupy.empty(x.shape, dtype=cupy.bool_)
    _launch("relu_forward", x.dtype, x.size, x, y, positive, _Index(x.size))
    return y, positive


def relu_backward(dy, positive):
    """dx = dy where positive, else 0."""
    dy = _float_array("relu_backward", "dy", dy)
    _expect_shape("relu_backward", "positive", positive, dy.shape)
    positive = cupy.ascontiguousarray(positive, dtype=cupy.bool_)
    dx = cupy.empty(dy.shape, dtype=dy.dtype)
    _launch("relu_backward", dy.dtype, dx.size, dy, positive, dx, _Index(dx.size))
    return dx


# --- bias + ReLU, fused -----------------------------------------------------------------------
# A conv layer's output gets its bias and its ReLU in one pass over memory instead of three
# (add, compare, max), and its backward pass masks the gradient and sums the bias gradient
# in one pass instead of two.

def bias_relu(z, b):
    """(y, positive): y = max(z + b, 0) over the last axis with NaN propagated, and the mask
    z + b > 0. ``z`` is an array the caller owns: y is written over it (over a C-contiguous
    copy when z is not C-contiguous). ``b`` (C,) or None."""
    if not isinstance(z, cupy.ndarray) or not z.flags.c_contiguous:
        z = cupy.ascontiguousarray(z)            # a fresh copy, ours to write
    z = _float_array("bias_relu", "z", z, writable=True)
    if z.ndim < 1:
        raise ValueError(f"gpu_cupy.bias_relu: z must have at least 1 dim, got shape {tuple(z.shape)}")
    c = z.shape[-1]
    if b is not None:
        b = _float_array("bias_relu", "b", b)
        _expect_shape("bias_relu", "b", b, (c,))
        _expect_dtype("bias_relu", "b", b, z.dtype)
    positive = cupy.empty(z.shape, dtype=cupy.bool_)
    # Without a bias the kernel never reads b; z itself stands in for the pointer.
    _launch("bias_relu", z.dtype, z.size, z, z if b is None else b, positive, _Index(z.size),
            *_ints(c, b is not None))
    return z, positive


_BIAS_THREADS = 1 << 16   # about the (chunk, channel) threads that fill a large GPU


def bias_relu_backward(dy, positive):
    """(dz, db): dz = dy where positive, else 0; db = dz summed over every axis but the last.

    Rows are cut into ``chunks`` fixed blocks (a function of the shape alone, so the sum's
    order and its rounding do not vary from run to run); each (chunk, channel) thread sums
    its block into its own partial sum, and CuPy adds the partials up.
    """
    dy = _float_array("bias_relu_backward", "dy", dy)
    if dy.ndim < 1:
        raise ValueError(f"gpu_cupy.bias_relu_backward: dy must have at least 1 dim, got shape {tuple(dy.shape)}")
    _expect_shape("bias_relu_backward", "positive", positive, dy.shape)
    positive = cupy.ascontiguousarray(positive, dtype=cupy.bool_)
    c = dy.shape[-1]
    rows = dy.size // c if c else 0
    chunks = max(1, min(rows, -(-_BIAS_THREADS // max(c, 1))))
    dz = cupy.empty(dy.shape, dtype=dy.dtype)
    partial = cupy.zeros((chunks, c), dtype=dy.dtype)
    if rows:
        _launch("bias_relu_backward", dy.dtype, chunks * c, dy, positive, dz, partial, _Index(rows),
                *_ints(c, chunks), extent=dy.size)
    return dz, partial.sum(axis=0)


# --- softmax cross-entropy --------------------------------------------------------------------

def _targets(op: str, targets, probs_shape, dtype, sparse: bool):
    n, c = probs_shape
    if sparse:
        _expect_shape(op, "targets", targets, (n,))
        if getattr(targets, "dtype", numpy.dtype(numpy.int64)).kind not in "iu":
            raise TypeError(f"gpu_cupy.{op}: sparse targets must be integer class ids, got dtype {targets.dtype}")
        return cupy.ascontiguousarray(targets, dtype=cupy.int64)
    _expect_shape(op, "targets", targets, (n, c))
    return cupy.ascontiguousarray(targets, dtype=dtype)


def softmax_cross_entropy_forward(logits, targets, sparse):
    """(mean loss, probs): class ids if ``sparse``, else target rows.

    The loss is a 0-d float64 CuPy array, not a Python float as on the CPU: reading it would
    make the host wait for the GPU in the middle of a training step (the op turns it into a
    0-d array of the logits' dtype either way).
    """
    op = "softmax_cross_entropy_forward"
    logits = _float_array(op, "logits", logits)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"gpu_cupy.{op}: logits must be (N, C) with N, C >= 1, got shape {tuple(logits.shape)}")
    n, c = logits.shape
    targets = _targets(op, targets, logits.shape, logits.dtype, sparse)
    probs = cupy.empty(logits.shape, dtype=logits.dtype)
    row_loss = cupy.empty(n, dtype=cupy.float64)
    ids, rows = (targets, logits) if sparse else (cupy.empty(1, cupy.int64), targets)
    _launch("softmax_xent_forward", logits.dtype, n, logits, ids, rows, probs, row_loss, _Index(n),
            *_ints(c, bool(sparse)), extent=logits.size)
    return row_loss.sum() / n, probs


def softmax_cross_entropy_backward(dloss, probs, targets, sparse):
    """dlogits = dloss * (p * sum(t) - t) / N; ``dloss`` a number or a 0-d (device) array."""
    op = "softmax_cross_entropy_backward"
    probs = _float_array(op, "probs", probs)
    if probs.ndim != 2:
        raise ValueError(f"gpu_cupy.{op}: probs must be (N, C), got shape {tuple(probs.shape)}")
    n, c = probs.shape
    targets = _targets(op, targets, probs.shape, probs.dtype, sparse)
    # dloss / N in the probabilities' dtype, computed on the device: no host round trip.
    scale = cupy.asarray(dloss, dtype=probs.dtype).reshape(1) / probs.dtype.type(n)
    dz = cupy.empty(probs.shape, dtype=probs.dtype)
    ids, rows = (targets, probs) if sparse else (cupy.empty(1, cupy.int64), targets)
    _launch("softmax_xent_backward", probs.dtype, dz.size, probs, ids, rows, scale, dz, _Index(dz.size),
            *_ints(c, bool(sparse)))
    return dz


# --- Adam -------------------------------------------------------------------------------------

def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps):
    """One Adam step in place, Keras' form; param, m, v must be C-contiguous CuPy arrays of one
    dtype:

        m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  param -= lr_t * m / (sqrt(v) + eps)
    """
    op = "adam_update"
    param = _float_array(op, "param", param, writable=True)
    m = _float_array(op, "m", m, writable=True)
    v = _float_array(op, "v", v, writable=True)
    grad = _float_array(op, "grad", grad)
    for name, a in (("grad", grad), ("m", m), ("v", v)):
        _expect_shape(op, name, a, param.shape)
        _expect_dtype(op, name, a, param.dtype)
    t = param.dtype.type
    b1, b2 = t(beta1), t(beta2)
    _launch("adam_update", param.dtype, param.size, param, grad, m, v, _Index(param.size),
            t(lr_t), b1, b2, t(1) - b1, t(1) - b2, t(eps))


def adam_update_many(params, grads, ms, vs, lr_t, beta1, beta2, eps):
    """``adam_update`` for every (param, grad, m, v) of the lists. On the GPU one launch per
    array: the kernels queue without a host round trip, so their launches overlap."""
    for p, g, m, v in zip(params, grads, ms, vs):
        adam_update(p, g, m, v, lr_t, beta1, beta2, eps)
