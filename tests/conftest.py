"""Shared test settings: Hypothesis profiles and the markers' skip rules.

Profiles (choose with HYPOTHESIS_PROFILE or --hypothesis-profile):
- ``ci`` (default): no deadline, since the first call of a JIT kernel or of PyTorch takes
  seconds; a moderate number of examples so the suite stays within minutes on 2 cores.
- ``dev``: fewer examples, for quick edit-test loops.
- ``thorough``: many examples, for a long run before a release.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("dev", max_examples=8, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
