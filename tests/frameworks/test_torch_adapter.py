"""PyTorch's adapter interface: outputs by name, in the dtype PyTorch computed them in.
(The op-by-op agreement of its functions with minires is tested with each op, tests/ops.)"""

import numpy as np
import pytest

torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")
pytestmark = pytest.mark.torch


def test_run_op_names_each_output_and_keeps_the_dtype():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    dy = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    out = torch_adapter.run_op("conv2d", {"x": x, "w": w}, {"stride": 2, "padding": "same"}, dy, "float32")
    assert set(out) == {"y", "dx", "dw"}                     # no bias, no db
    assert all(v.dtype == np.float32 for v in out.values())
    y, dx, dw, _ = torch_adapter.conv2d(x, w, None, 2, "same", dy)
    assert np.array_equal(out["y"], y) and np.array_equal(out["dx"], dx) and np.array_equal(out["dw"], dw)


def test_run_op_covers_every_op_of_verify():
    from minires.verify.cases import build_cases

    for case in build_cases(dtypes=["float64"], random_cases=0):
        out = torch_adapter.run_op(case.op, case.inputs, case.options, case.dy, case.dtype)
        assert set(out) == set(case.outputs), case.id
        assert all(v.dtype == np.float64 for v in out.values()), case.id


def test_unknown_ops_are_refused_as_unsupported():
    with pytest.raises(NotImplementedError, match="conv3d"):
        torch_adapter.run_op("conv3d", {}, {}, np.zeros(1), "float64")
    assert torch_adapter.versions() == {"torch": torch_adapter.torch.__version__}
