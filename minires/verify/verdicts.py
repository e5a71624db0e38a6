"""How a verdict is reached for one output of one case: the opinions, who agrees, who is out.

The voices are minires' array code (each CPU backend, each conv algorithm), minires' loop
reference (both in the case's dtype) and the framework. Two voices agree when their relative
error (``minires.verify.compare``) is within the dtype's tolerance. The largest group of
voices that agree with one of them wins, with central differences as the judge above the
count: a group that central differences contradict loses to one they support, so a framework
that is right against all of minires' code is found right. Central differences take no part
where the case has a kink (ties, zeros into ReLU). Ties in the count go to minires'
reference. The voices outside the winning group are the outliers:

- none: ``agree``;
- only the framework, and minires recomputed on the other side of a named convention
  agrees with it (``minires.verify.conventions``): ``convention``;
- otherwise ``disagree``, naming the outliers: the framework, or minires' own voices
  ("minires:numba", "minires:reference", "minires:central differences") when minires does
  not agree with itself.

A framework that returns another dtype than it was asked for (a float32 result in a float64
run) is an outlier whatever its values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .compare import CENTRAL_DIFFERENCES_TOLERANCE, TOLERANCES, relative_error
from .opinions import Opinions

CENTRAL = "minires:central differences"
REFERENCE = "minires:reference"


@dataclass
class Judgement:
    verdict: str                      # "agree", "convention" or "disagree"
    err: float | None                 # the framework's relative error (None: not measurable)
    convention: str | None = None     # "max-pool ties: last maximum"
    outliers: tuple = ()
    notes: tuple = ()


def _voice(opinion, output: str):
    if isinstance(opinion, BaseException):
        return opinion
    return opinion.get(output, KeyError(f"no output {output}"))


def voices(opinions: Opinions, output: str) -> dict:
    """minires' voices on ``output``: name -> array, or the exception that opinion raised."""
    out = {REFERENCE: _voice(opinions.reference, output)}
    for name, opinion in opinions.arrays.items():
        out[f"minires:{name}"] = _voice(opinion, output)
    return out


def judge(opinions: Opinions, output: str, framework: str, value, alternatives) -> Judgement:
    """The verdict on the framework's ``value`` of ``output``. ``alternatives()`` gives the
    case's outputs on other sides of conventions (computed only when needed)."""
    dtype = opinions.case.dtype
    tol = TOLERANCES[dtype]
    floor = opinions.floors.get(output, 0.0)
    heard = voices(opinions, output)
    heard[framework] = value
    names = list(heard)
    usable = [n for n in names if not isinstance(heard[n], BaseException)]
    central = opinions.central.get(output)

    def backed_by_central(center: str) -> bool:
        if central is None:
            return True
        numeric, noise = central
        scale = max(float(np.abs(heard[center]).max(initial=0.0)), floor)
        allowed = max(CENTRAL_DIFFERENCES_TOLERANCE, tol) + (noise / scale if scale else math.inf)
        return relative_error(numeric, heard[center], floor) <= allowed

    best_key, members, center = None, [], None
    for rank, candidate in enumerate(usable):
        group = [n for n in usable if relative_error(heard[n], heard[candidate], floor) <= tol]
        key = (backed_by_central(candidate), len(group), -rank)
        if best_key is None or key > best_key:
            best_key, members, center = key, group, candidate
    outliers = [n for n in names if n not in members]
    if central is not None and best_key is not None and not best_key[0]:
        outliers.append(CENTRAL)

    notes = []
    returned = getattr(value, "dtype", None)
    if returned is not None and str(returned) != dtype:
        notes.append(f"returned {returned} for {dtype}")
        if framework not in outliers:
            outliers.append(framework)
    exact = _voice(opinions.exact, output)
    if REFERENCE in members and not isinstance(exact, BaseException):
        err = relative_error(value, exact, floor)
    else:
        err = relative_error(value, heard[center], floor) if center is not None else math.inf
    err = err if math.isfinite(err) else None

    if not outliers:
        return Judgement("agree", err)
    if outliers == [framework] and not notes:
        for name, side, outputs in alternatives():
            if output in outputs:
                explained = relative_error(value, outputs[output], floor)
                if explained <= tol:
                    return Judgement("convention", explained, f"{name}: {side}")
    return Judgement("disagree", err, outliers=tuple(outliers), notes=tuple(notes))


def side_taken(opinions: Opinions, convention, values: dict, alternatives) -> str | None:
    """Which side of ``convention`` the framework's ``values`` take on this case (built to
    expose it): minires' side, another side, or "neither"; None when the case's outputs do
    not tell the sides apart, or the framework gives none of the outputs they differ in.

    Sides differ by whole gradients or pixels, so they are told apart at float32's tolerance
    in both dtypes: a framework that loses float64 precision (a disagreement of its own)
    still shows which definition it follows."""
    tol = TOLERANCES["float32"]
    exact = opinions.exact
    if isinstance(exact, BaseException):
        return None
    sides = [(side, outputs) for name, side, outputs in alternatives() if name == convention.name]
    if not sides or not any(o in values for o in sides[0][1]):
        return None

    def matches(outputs: dict) -> bool:
        shared = [o for o in outputs if o in values]
        return bool(shared) and all(
            relative_error(values[o], outputs[o], opinions.floors.get(o, 0.0)) <= tol for o in shared)

    if matches({o: exact[o] for o in sides[0][1] if o in exact}):
        return convention.minires
    for side, outputs in sides:
        if matches(outputs):
            return side
    return "neither"
