"""Device-specific kernels: the tier-3 fast paths that replace parts of the vectorized ops.

``interface`` declares every kernel an op may ask for, with its contract; ``numba`` holds the
Numba JIT kernels of the ``numba`` backend, ``gpu_cupy`` the CUDA kernels of the ``cupy``
backend, each providing the entries it has; ``cpu_threads`` splits CPU work over threads. An
op never imports a kernel module itself: it asks ``minires.backend.kernel(name, *arrays)``,
which returns the current backend's kernel for those arrays (or None, and the op runs its
array code).

Kernels are leaves: they import nothing from ``minires.ops``, ``minires.backend`` or any
module above them, only the leaf modules ``minires.windows`` and ``minires.threads``, and
each other.
"""
