from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.redis_server import RedisServer, redis_server

# Property tests (tests/flow/test_fuzz.py): "ci" by default, a few hundred examples each;
# HYPOTHESIS_PROFILE=nightly for at least 10 000. Each example sets its own deadline.
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "nightly", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    """One redis-server for the tests that neither pause, kill nor fill it; each test keeps to
    its own ``prefix``."""
    with redis_server() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, to pause, kill, fill or restart."""
    with redis_server() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses (so tests can share one redis-server)."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def anyio_backend() -> str:
    """anyio's plugin runs only the tests that must also run under trio (tests/doors/test_trio.py
    sets its own); everything else is on pytest-asyncio."""
    return "asyncio"


# What some tests need from the machine beyond pip, by the helper module that starts it.
# CI (CI=true, .ci/run installs all three) runs every test and skips none; a developer without
# root gets each such test skipped with the package that is missing named, instead of an error.
_NEEDS = {
    "tests.redis_server": (("redis-server", "valkey-server"), "apt-get install redis-server"),
    "tests.browser": (("chromium", "chromium-browser"), "apt-get install chromium chromium-driver"),
    "tests.widgets": (("npm",), "apt-get install npm"),
}


def _helper_modules(module: object) -> set[str]:
    found = set()
    for value in vars(module).values():
        name = getattr(value, "__module__", None) or getattr(value, "__name__", None)
        if isinstance(name, str) and name in _NEEDS:
            found.add(name)
    return found


#: Modules whose tests start real servers, worker fleets, browsers or long fuzz runs: marked
#: ``slow`` so that ``pytest -m "not slow"`` is a quick pass while developing (CI runs all).
SLOW_MODULES = frozenset(
    {
        "test_adapter_extras",
        "test_altcha_widget",
        "test_clearance_browser",
        "test_clearance_shared",
        "test_demo",
        "test_django_adapter",
        "test_examples",
        "test_fastapi_adapter",
        "test_fields_differential",
        "test_flask_adapter",
        "test_fleet",
        "test_fuzz",
        "test_load",
        "test_metrics_site",
        "test_pow_flood",
        "test_private_tokens_browser",
        "test_readme_examples",
        "test_redis",
        "test_routing_differential",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    if os.environ.get("CI"):
        return
    missing = {
        helper: hint
        for helper, (programs, hint) in _NEEDS.items()
        if not any(shutil.which(program) for program in programs)
    }
    if not missing:
        return
    seen: dict[object, set[str]] = {}
    for item in items:
        module = getattr(item, "module", None)
        if module is None:
            continue
        if module not in seen:
            seen[module] = _helper_modules(module) & set(missing)
        for helper in sorted(seen[module]):
            item.add_marker(pytest.mark.skip(reason=f"not installed here: {missing[helper]}"))
