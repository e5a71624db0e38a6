"""Device-specific kernels: the tier-3 fast paths that replace parts of the vectorized ops.

``cpu_numba`` holds the Numba JIT kernels of the ``numba`` backend. An op never imports a
kernel module itself; it asks ``minires.backend.kernels_for(*arrays)``, which returns the
kernel module for the current backend (or None, and the op runs its array code).
"""
