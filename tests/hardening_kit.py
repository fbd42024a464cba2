"""Shared pieces of the hardening suites (faults, bypass, fuzz, load): one table of providers,
each with its emulator, and a guarded site served for real on 127.0.0.1.

A provider joins every suite by adding one ``ProviderCase`` to ``CASES``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from captcha_guard import CaptchaGuard, CircuitBreaker, GeeTest, Provider, Rule
from captcha_guard.testing import Emulator, EmulatorServer, GeeTestEmulator
from tests.helpers import FakeClock, RecordingApp
from tests.servers import serve_asgi

#: The path every protected site guards, and one it leaves alone.
PROTECTED = "/login"
UNPROTECTED = "/about"


@dataclass(frozen=True)
class ProviderCase:
    """How to stand up one provider against its emulator.

    ``provider(emulator, endpoint, timeout, breaker)`` builds the provider pointed at the
    emulator; ``issue(emulator)`` returns the client fields of one solved captcha (as the widget
    hands them to the browser); ``path`` is the emulator's verification path.
    """

    name: str
    emulator: Callable[[], Emulator]
    provider: Callable[[Any, str, float, CircuitBreaker], Provider]
    issue: Callable[[Any], dict[str, str]]
    path: str

    def __str__(self) -> str:
        return self.name


def _geetest(emulator: GeeTestEmulator, endpoint: str, timeout: float, breaker: Any) -> Provider:
    return GeeTest(
        emulator.captcha_id,
        emulator.captcha_key,
        endpoint=endpoint,
        timeout=timeout,
        breaker=breaker,
    )


CASES: list[ProviderCase] = [
    ProviderCase(
        name="geetest",
        emulator=GeeTestEmulator,
        provider=_geetest,
        issue=lambda emulator: emulator.issue(),
        path="/validate",
    ),
]


@dataclass
class Site:
    """A guarded app under uvicorn, its provider's emulator served for real, and the knobs."""

    case: ProviderCase
    url: str
    emulator: Any
    upstream: EmulatorServer
    provider: Provider
    breaker: CircuitBreaker
    clock: FakeClock
    app: RecordingApp
    guard: CaptchaGuard
    client: httpx.Client = field(repr=False)

    def issue(self) -> dict[str, str]:
        return self.case.issue(self.emulator)

    def post(self, path: str = PROTECTED, **kwargs: Any) -> httpx.Response:
        headers = {"accept": "application/json", **kwargs.pop("headers", {})}
        return self.client.post(self.url + path, headers=headers, **kwargs)

    def reset(self) -> None:
        """Back to a healthy provider and a closed circuit, between tests on one site."""
        self.emulator.outage = None
        self.emulator.delay = 0.0
        self.breaker.reset()


@contextmanager
def guarded_site(
    case: ProviderCase,
    *,
    timeout: float = 1.0,
    failure_threshold: int = 5,
    reset_timeout: float = 30.0,
    **guard_options: Any,
) -> Iterator[Site]:
    emulator = case.emulator()
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold, reset_timeout, clock=clock)
    app = RecordingApp()
    with emulator.serve() as upstream:
        provider = case.provider(emulator, upstream.endpoint(case.path), timeout, breaker)
        guard = CaptchaGuard(
            app,
            rules=[Rule(PROTECTED), Rule("/pay", fail_open=False)],
            provider=provider,
            **guard_options,
        )
        with serve_asgi(guard) as url, httpx.Client(timeout=30) as client:
            yield Site(case, url, emulator, upstream, provider, breaker, clock, app, guard, client)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
