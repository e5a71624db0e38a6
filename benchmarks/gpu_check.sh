#!/usr/bin/env bash
# The GPU check, in one command on a machine with a CUDA GPU:
#   1. every test marked gpu (the CUDA kernels against NumPy, and the cupy case of every op
#      test in tests/ops and elsewhere), which must pass before any figure means anything;
#   2. the GPU benchmarks (minires bench gpu): results/gpu.json and results/gpu.md.
#
# Usage: benchmarks/gpu_check.sh [--no-torch] [--repeats N]   (options go to minires bench gpu)
# Needs minires installed with CuPy (pip install -e ".[cuda,test]"); PyTorch with CUDA for
# the comparison (without it the results hold minires alone, with a note).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python}"

# float32 means float32 in both frameworks: no TensorFloat-32 in cuBLAS or cuDNN.
export NVIDIA_TF32_OVERRIDE=0

"$python" - <<'PY'
import cupy

if cupy.cuda.runtime.getDeviceCount() < 1:
    raise SystemExit("gpu_check: CuPy sees no CUDA device")
name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
print("CuPy", cupy.__version__, "|", name.decode() if isinstance(name, bytes) else name)
PY

echo "== tests marked gpu"
"$python" -m pytest -m gpu -q

echo "== benchmarks"
"$python" -m minires bench gpu --out benchmarks/results "$@"
