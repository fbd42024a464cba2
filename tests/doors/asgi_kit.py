"""What the ASGI door's test modules share: a served GeeTest emulator whose secrets and
tokens are checked out of the logs after each test, and a door in front of it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from captcha_guard import CaptchaGuard, Rule
from tests.helpers import GeeTestEnv, RecordingApp, assert_logs_clean, geetest_env


@pytest.fixture
def env(caplog: pytest.LogCaptureFixture) -> Iterator[GeeTestEnv]:
    """A served GeeTest emulator; after the test, no log record holds a secret or a token."""
    caplog.set_level(logging.DEBUG)
    with geetest_env() as served:
        yield served
    assert_logs_clean(caplog.get_records("call"), *served.secrets)


def guard(env: GeeTestEnv, app: Any = None, rules: Any = None, **kwargs: Any) -> CaptchaGuard:
    """A door on ``/login`` in front of ``env``'s provider (``timeout``, ``breaker`` and
    ``captcha_key`` go to the provider, the rest to the door)."""
    provider_args = {k: kwargs.pop(k) for k in ("timeout", "breaker", "captcha_key") if k in kwargs}
    return CaptchaGuard(
        app or RecordingApp(),
        rules=rules or [Rule("/login")],
        provider=env.provider(**provider_args),
        **kwargs,
    )


def levels(caplog: pytest.LogCaptureFixture, at_least: int = logging.WARNING) -> list[Any]:
    """The package's log records at ``at_least`` or above."""
    return [r for r in caplog.records if r.name == "captcha_guard" and r.levelno >= at_least]
