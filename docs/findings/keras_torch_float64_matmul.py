"""Keras 3 on PyTorch, floatx float64: keras.ops.matmul of two float64 tensors returns float32,
so a float64 Dense layer is only float32-accurate.

Run: python docs/findings/keras_torch_float64_matmul.py   (needs keras and torch)

Cause: Keras' type promotion (keras/src/backend/common/dtypes.py, _lattice_result_type) maps
every 64-bit result type to its 32-bit one on every backend but TensorFlow, "to be aligned
with JAX's default behavior", and the PyTorch backend's matmul casts its result to that type.
The JAX backend's matmul calls jnp.matmul directly and stays float64 (with x64 enabled).
"""

import os

os.environ["KERAS_BACKEND"] = "torch"   # Keras reads it once, on import

import keras  # noqa: E402
import numpy as np  # noqa: E402

keras.config.set_floatx("float64")
rng = np.random.default_rng(0)
x, w = rng.standard_normal((8, 16)), rng.standard_normal((16, 4))
exact = x @ w                                       # NumPy, float64

y = keras.ops.matmul(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(w))
print(f"keras {keras.__version__}, backend {keras.backend.backend()}: "
      f"matmul(float64, float64) -> {keras.backend.standardize_dtype(y.dtype)}")

dense = keras.layers.Dense(4, use_bias=False)
dense.build((None, 16))
dense.set_weights([w])
out = keras.ops.convert_to_numpy(dense(x))
err = np.abs(out - exact).max() / np.abs(exact).max()
print(f"Dense(float64) output dtype {out.dtype}, relative error {err:.1e} (float64 rounding is ~1e-16)")
