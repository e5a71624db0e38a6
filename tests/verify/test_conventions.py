"""The other sides of each convention, computed where a case tells them apart and only there."""

import numpy as np

from minires.verify.cases import Case, build_cases
from minires.verify.conventions import alternatives


def _pool(x, padding="valid", pool_size=2):
    x = np.asarray(x, dtype=np.float64)[None, :, :, None]
    dy = np.ones((1, 1, 1, 1)) if padding == "valid" and x.shape[1] == pool_size else None
    case = Case("t", "maxpool2d", "float64", {"x": x},
                {"pool_size": pool_size, "strides": None, "padding": padding}, dy)
    return case


def test_tie_rules_route_the_gradient_as_named():
    case = _pool([[1.0, 3.0], [3.0, 0.0]])
    sides = {side: out["dx"][0, :, :, 0] for _, side, out in alternatives(case)}
    assert np.array_equal(sides["last maximum"], [[0, 0], [1, 0]])
    assert np.array_equal(sides["shared equally"], [[0, 0.5], [0.5, 0]])
    assert np.array_equal(sides["every maximum"], [[0, 1], [1, 0]])


def test_no_tie_no_alternative():
    assert alternatives(_pool([[1.0, 3.0], [2.0, 0.0]])) == []


def test_same_padding_other_side_only_when_the_total_is_odd():
    cases = {c.note: c for c in build_cases(["conv2d", "maxpool2d"], ["float64"], 0)}
    odd = alternatives(cases["'same' with an even kernel: one odd pixel"])
    assert [(name, side) for name, side, _ in odd] == [("'same' odd pixel", "top/left")]
    assert set(odd[0][2]) == {"y", "dx", "dw", "db"}
    assert alternatives(cases["1x1 images under a 3x3 'same' kernel"]) == []     # total 2: even
    negative = alternatives(cases["negative inputs under 'same': padding is -inf, not 0"])
    assert negative and np.all(negative[0][2]["y"] < 0)


def test_relu_and_soft_label_sides():
    cases = {c.note: c for c in build_cases(["relu", "softmax_cross_entropy"], ["float64"], 0)}
    relu = cases["exact zeros (and -0.0)"]
    sides = {side: out["dx"] for _, side, out in alternatives(relu)}
    zero = relu.inputs["x"] == 0
    assert np.array_equal(sides["1"][zero], relu.dy[zero])
    assert np.array_equal(sides["1/2"][zero], relu.dy[zero] / 2)
    soft = alternatives(cases["soft labels whose rows do not sum to 1"])
    assert [side for _, side, _ in soft] == ["renormalised"]
    assert alternatives(cases["batch 1"]) == []


def test_every_case_built_to_expose_a_convention_tells_its_sides_apart():
    for case in build_cases(random_cases=0):
        named = {name for name, _, _ in alternatives(case)}
        assert set(case.exposes) <= named, (case.id, case.note)
