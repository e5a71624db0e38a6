"""Numba JIT kernels for the CPU: the fast paths of the ``numba`` backend.

``minires.backend.kernel(name, *arrays)`` looks its kernels up here, by the names of the
table ``minires.kernels.interface.KERNELS`` (which states each one's contract); this package
provides the ones listed in ``__all__``, one module per module of ``minires.ops``
(``conv``, ``pool``, ``activation``, ``loss``, ``update``, ``winograd``). Each returns what
the array code it replaces returns (``col2im`` the same ``dx``, ``maxpool2d_forward`` the
same ``y`` and ``argmax``), so the op can take either path and its cache stays the same. An
op asks for a kernel only where it measured faster than the array code at the seed model's
shapes (numbers in docs/kernels.md).

The rules every kernel follows, so that the code reads the way it does:

1. **The outer loop is a ``prange`` over independent work**: rows of output images, tiles, or
   flat elements. An iteration writes only to the part of the output it owns, so no two
   threads ever write one element: no atomics, no locks, no races. (The blocked
   convolutions, im2col and Winograd, split their work over threads with
   ``cpu_threads.run_ranges`` instead, because each block also runs a BLAS product; the same
   ownership rule holds there.)
2. **Adjoints are gathers, not scatters.** col2im and the max-pool backward pass are
   written from the receiving side: each input pixel sums the contributions of the windows
   that read it. That is what makes rule 1 possible for them, and it sums in the same order
   as the array code, so float64 results agree to the last bit or nearly. The one exception
   is the Winograd input adjoint, where a gather would redo each tile's transform for every
   pixel it covers; it scatters, each thread over whole images of its own
   (``winograd_backward_blocked``).
3. **The innermost loop runs over channels**, which NHWC stores contiguously, so LLVM turns
   it into SIMD code; the spatial bounds checks sit outside it. Where a loop reads or writes
   several rows at once (a tile transform reads six and writes six), it indexes flat
   buffers with unsigned indices and passes its intermediates through a stack scratch
   (``_inline``): LLVM otherwise guards such a loop with runtime checks that its arrays do
   not overlap, and where they fail the loop runs one number at a time. A loop of known
   short length is unrolled before it can be vectorized, so the product's stores run over
   a length the compiler cannot see (docs/kernels.md).
4. **Kernels take C-contiguous arrays**; the Python wrappers make them so. Each kernel then
   compiles once per dtype (float32, float64), not once per memory layout.
5. **No writes but to the owned part of the output**; scratch space (the Winograd kernels'
   half-transformed row of tiles) is allocated per iteration, never shared.
6. **cache=True**: compiled machine code is saved next to each file (or under
   ``NUMBA_CACHE_DIR``) and reloaded by later processes, so the compile cost is paid once
   per machine, not once per run. Numba notices a change to a kernel's own file only, so a
   jitted function calls jitted functions of its own file alone; a kernel of another file
   is called from Python (as ``conv`` calls ``activation``'s row loops). The one exception
   is ``_inline``, the helpers that make loops vector code (flat buffers, unsigned indices,
   stack scratch) and max-pool's rule: each file that compiles them in records that file's
   digest (``INLINE_DIGEST``), and a test fails while a record is stale, so a change there
   comes with a change to every file whose cached kernels it touches.
7. **fastmath only where results stay within float32's 1e-4 tolerance and NaN/inf keep their
   meaning**: the flags ``reassoc``, ``contract`` and ``nsz`` (reorder and fuse sums,
   ignore the sign of zero), on sums only. Never ``nnan``/``ninf``, and never on max-pool or
   ReLU, whose NaN behaviour must match NumPy's exactly.
8. **Outputs are allocated by NumPy, in the Python wrapper, and passed in**: NumPy asks the
   OS for huge pages on large arrays, Numba's allocator does not, and the first-touch page
   faults of a fresh ``cols`` of tens of megabytes then cost more than filling it.
   Accumulating kernels zero their own output as they go, so ``np.empty`` suffices.
9. **Small problems run on the calling thread alone** (``_launch.launch``: fewer than 2^21
   elements read or written, 8 MB of float32: the seed's layers from 16x16 down), compiled a second
   time without ``parallel`` (its serial twin). At 16x16x64, batch 64, a ReLU took 93 us
   serial against 130 in parallel (OpenMP) and 111 against 203 (workqueue); at 32x32 the
   parallel loop wins. Waking the pool's sleeping workers costs more than a small kernel's
   work, and on a busy machine a woken worker may wait for a time slice while the others
   wait for it. A parallel kernel asked for one thread would still hand its loop to a
   worker on Numba's workqueue layer; its twin never starts one.
10. **Scalars are cast to the arrays' dtype** before a kernel runs, so float32 work is
    float32 arithmetic, as in the array code; only the softmax cross-entropy sums its few
    exponentials and its loss in float64.
"""

from .activation import bias_relu, bias_relu_backward, relu_backward, relu_forward
from .conv import (col2im, im2col_conv_backward, im2col_conv_forward, im2col_conv_maxpool_forward,
                   im2col_conv_maxpool_training_backward, im2col_conv_maxpool_training_forward)
from .loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .pool import maxpool2d_backward, maxpool2d_forward, maxpool2d_forward_value
from .update import adam_update, adam_update_many
from .winograd import winograd_backward_blocked, winograd_forward_blocked, winograd_kernel_transform

__all__ = [
    "adam_update", "adam_update_many",
    "bias_relu", "bias_relu_backward",
    "col2im", "im2col_conv_backward", "im2col_conv_forward", "im2col_conv_maxpool_forward",
    "im2col_conv_maxpool_training_backward", "im2col_conv_maxpool_training_forward",
    "maxpool2d_backward", "maxpool2d_forward", "maxpool2d_forward_value",
    "relu_backward", "relu_forward",
    "softmax_cross_entropy_backward", "softmax_cross_entropy_forward",
    "winograd_backward_blocked", "winograd_forward_blocked", "winograd_kernel_transform",
]
