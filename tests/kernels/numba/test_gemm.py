"""The numba backend's float32 matrix product against float64 NumPy: every shape it takes on
(rows not a multiple of its block, one inner value, stacks, a transposed left operand, sums
added onto the output), and the cases it leaves to NumPy."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")
from minires.kernels.numba import _gemm  # noqa: E402


def _expected(a, b, out_before, accumulate):
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    return exact + out_before if accumulate else exact


@given(rows=st.integers(1, 20), inner=st.integers(1, 40), panels=st.integers(1, 2),
       stack=st.sampled_from([None, 1, 3]), transposed=st.booleans(), accumulate=st.booleans(),
       seed=st.integers(0, 2**16))
def test_product_matches_float64(rows, inner, panels, stack, transposed, accumulate, seed):
    rng = np.random.default_rng(seed)
    lead = () if stack is None else (stack,)
    cols = 64 * panels
    if transposed:      # a is the transposed view of a (inner, rows) array, read in place
        a = np.swapaxes(rng.standard_normal((*lead, inner, rows)).astype(np.float32), -1, -2)
    else:
        a = rng.standard_normal((*lead, rows, inner)).astype(np.float32)
    b = rng.standard_normal((*lead, inner, cols)).astype(np.float32)
    out = rng.standard_normal((*lead, rows, cols)).astype(np.float32)
    before = out.astype(np.float64)
    assert _gemm.runs_here(a, b, out)
    result = _gemm.product(a, b, out, accumulate=accumulate)
    assert result is out
    scale = np.sqrt(inner) + (np.abs(before).max() if accumulate else 0)
    np.testing.assert_allclose(out, _expected(a, b, before, accumulate), rtol=0, atol=1e-5 * scale)


def test_non_finite_numbers_spread_as_in_a_matrix_product():
    a = np.ones((7, 3), np.float32)
    b = np.ones((3, 64), np.float32)
    a[1, 2], b[0, 5], b[2, 9] = np.nan, np.inf, -np.inf
    out = np.empty((7, 64), np.float32)
    _gemm.product(a, b, out)
    with np.errstate(invalid="ignore"):
        expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(out[~np.isnan(out)], expected[~np.isnan(expected)])


@pytest.mark.parametrize("case", ["float64", "narrow", "strided b"])
def test_other_products_go_to_numpy_with_the_same_result(case):
    rng = np.random.default_rng(0)
    dtype = np.float64 if case == "float64" else np.float32
    cols = 10 if case == "narrow" else 64
    a = rng.standard_normal((5, 8)).astype(dtype)
    b = rng.standard_normal((8, 2 * cols)).astype(dtype)
    b = b[:, ::2] if case == "strided b" else b[:, :cols]
    out = np.zeros((5, cols), dtype)
    assert not _gemm.runs_here(a, b, out)
    _gemm.product(a, b, out, accumulate=True)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)


@given(rows=st.integers(2, 14), inner=st.integers(1, 20), stack=st.integers(2, 4),
       accumulate=st.booleans(), seed=st.integers(0, 2**16))
def test_rows_of_b_and_out_may_lie_apart(rows, inner, stack, accumulate, seed):
    """b and out as views whose rows are contiguous but lie anywhere: the stack running
    across the rows of a (rows, stack, 64) buffer, as the Winograd kernels lay out their
    transformed tiles, and b's rows a slice of wider ones."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((stack, rows, inner)).astype(np.float32)
    b = rng.standard_normal((inner, stack, 128)).astype(np.float32).transpose(1, 0, 2)[..., 32:96]
    out = rng.standard_normal((rows, stack, 64)).astype(np.float32).transpose(1, 0, 2)
    before = out.astype(np.float64)
    assert not b.flags.c_contiguous and not out.flags.c_contiguous
    assert _gemm.runs_here(a, b, out)
    _gemm.product(a, b, out, accumulate=accumulate)
    scale = np.sqrt(inner) + (np.abs(before).max() if accumulate else 0)
    np.testing.assert_allclose(out, _expected(a, b, before, accumulate), rtol=0, atol=1e-5 * scale)


def test_one_b_serves_a_whole_stack():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 7, 5)).astype(np.float32)
    b = rng.standard_normal((1, 5, 64)).astype(np.float32)
    out = np.empty((3, 7, 64), np.float32)
    _gemm.product(a, b, out)
    np.testing.assert_allclose(out, _expected(a, b, None, False), rtol=0, atol=1e-5 * np.sqrt(5))


@pytest.mark.parametrize("case", ["overlapping out", "strided out columns"])
def test_outputs_it_cannot_write_row_by_row_go_to_numpy(case):
    a = np.ones((4, 3), np.float32)
    b = np.ones((3, 64), np.float32)
    if case == "overlapping out":     # every row the same memory: only NumPy's rules apply
        out = np.lib.stride_tricks.as_strided(np.zeros(64, np.float32), (4, 64), (0, 4))
    else:
        out = np.zeros((4, 128), np.float32)[:, ::2]
    assert not _gemm.runs_here(a, b, out)


def test_empty_products():
    a = np.ones((0, 3), np.float32)
    b = np.ones((3, 64), np.float32)
    out = np.empty((0, 64), np.float32)
    assert _gemm.product(a, b, out).shape == (0, 64)
    stacked = np.empty((0, 4, 64), np.float32)
    assert _gemm.product(np.ones((0, 4, 3), np.float32), np.ones((0, 3, 64), np.float32), stacked).shape == (0, 4, 64)
