from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Property tests (tests/test_fuzz.py): "ci" by default, a few hundred examples each;
# HYPOTHESIS_PROFILE=nightly for at least 10 000. Each example sets its own deadline.
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "nightly", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def anyio_backend() -> str:
    """anyio's plugin runs only the tests that must also run under trio (tests/test_trio.py
    sets its own); everything else is on pytest-asyncio."""
    return "asyncio"
