"""Shared test set-up: hypothesis profiles and helpers.

Profiles: ``ci`` (quick, the default under CI), ``dev`` (default elsewhere) and
``deep`` (on demand: ``HYPOTHESIS_PROFILE=deep make test``).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("deep", max_examples=2000, deadline=None)
default = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or default)
