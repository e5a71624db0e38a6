"""The cases: deterministic, adversarial ones fixed, random ones drawn from the seed, both
dtypes with the same values, each upstream gradient shaped like its output."""

import numpy as np

from minires import reference
from minires.verify.cases import DTYPES, build_cases, laid_out, noncontiguous
from minires.verify.specs import OPS, SPECS


def _by_id(cases):
    return {c.id: c for c in cases}


def test_every_op_has_adversarial_and_random_cases_in_both_dtypes():
    cases = build_cases(random_cases=2, seed=5)
    assert len(_by_id(cases)) == len(cases)
    for op in OPS:
        for dtype in DTYPES:
            mine = [c for c in cases if c.op == op and c.dtype == dtype]
            assert sum("-a" in c.id for c in mine) >= 3 and sum("r0" in c.id for c in mine) == 2
            assert all(v.dtype == dtype for c in mine for v in c.inputs.values() if v.dtype.kind == "f")


def test_the_same_seed_gives_the_same_cases_and_another_seed_other_random_ones():
    first, again, other = (build_cases(["conv2d"], random_cases=2, seed=s) for s in (1, 1, 2))
    for a, b in zip(first, again):
        assert a.id == b.id and a.options == b.options
        assert all(np.array_equal(a.inputs[k], b.inputs[k]) for k in a.inputs)
    fixed = [c for c in first if "-a" in c.id]
    assert all(np.array_equal(c.inputs["x"], _by_id(other)[c.id].inputs["x"]) for c in fixed)
    drawn = [c for c in first if "r0" in c.id]
    assert not any(c.id in _by_id(other) for c in drawn)


def test_float32_cases_hold_the_float64_values_rounded():
    cases = _by_id(build_cases(["softmax_cross_entropy", "maxpool2d"], random_cases=1))
    for case_id, case in cases.items():
        if case.dtype == "float32":
            twin = cases[case_id.replace("float32", "float64")]
            for name, value in case.inputs.items():
                assert np.array_equal(value, twin.inputs[name].astype(value.dtype))


def test_each_upstream_gradient_has_the_shape_of_the_output():
    for case in build_cases(random_cases=2, dtypes=["float64"], seed=9):
        args = [case.inputs.get(n) for n in SPECS[case.op].inputs]
        y = getattr(reference, f"{case.op}_forward")(*args, **case.options)
        assert case.dy.shape == np.shape(y), case.id


def test_cases_asking_for_non_contiguous_inputs_get_views_with_the_same_values():
    cases = [c for c in build_cases(random_cases=0) if c.noncontiguous]
    assert {c.op for c in cases} >= {"conv2d", "maxpool2d", "dense", "flatten", "softmax"}
    for case in cases:
        for name, value in laid_out(case).items():
            if name in case.noncontiguous:
                assert not value.flags.c_contiguous and np.array_equal(value, case.inputs[name])
    assert noncontiguous(np.asarray(2.0)).shape == ()


def test_the_adversarial_list_holds_what_it_promises():
    cases = [c for c in build_cases(dtypes=["float64"], random_cases=0)]
    notes = " | ".join(c.note for c in cases)
    for promised in ("ties", "even kernel", "stride 3 larger", "1x1 images", "batch 1", "non-contiguous",
                     "magnitude 1e4", "do not sum to 1", "exact zeros"):
        assert promised in notes, promised
    zeros = next(c for c in cases if c.op == "relu" and "zeros" in c.note)
    assert (zeros.inputs["x"] == 0).sum() >= 3
    soft = next(c for c in cases if "do not sum to 1" in c.note)
    assert not np.allclose(soft.inputs["labels"].sum(axis=1), 1.0)
