"""CaptchaGuard under trio: no asyncio loop, so provider calls go through httpx on anyio.

The only tests that run on anyio's pytest plugin: everything else is asyncio (pytest-asyncio).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from captcha_guard import CaptchaGuard, CircuitBreaker, GeeTest, Rule
from captcha_guard._breaker import State
from tests.helpers import (
    GatedGeeTestEmulator,
    RecordingApp,
    body_receive,
    call,
    form_headers,
    http_scope,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.fixture
def gated() -> Iterator[tuple[GatedGeeTestEmulator, str]]:
    emulator = GatedGeeTestEmulator(wait_limit=5)
    with emulator.serve() as server:
        yield emulator, server.endpoint("/validate")
    emulator.release.set()


def _guard(emulator: GatedGeeTestEmulator, endpoint: str, **options: object) -> CaptchaGuard:
    provider = GeeTest(
        emulator.captcha_id,
        emulator.captcha_key,
        endpoint=endpoint,
        timeout=0.3,
        breaker=CircuitBreaker(failure_threshold=1),
    )
    return CaptchaGuard(RecordingApp(), rules=[Rule("/login")], provider=provider, **options)  # type: ignore[arg-type]


async def test_a_valid_captcha_passes_under_trio(gated: tuple[GatedGeeTestEmulator, str]) -> None:
    emulator, endpoint = gated
    emulator.release.set()
    guard = _guard(emulator, endpoint)
    body = urlencode(emulator.issue()).encode()
    try:
        sent = await call(guard, http_scope(headers=form_headers(body)), body_receive(body))
    finally:
        await guard.aclose()
    assert sent.status == 200
    assert guard.app.verdicts[-1].outcome == "passed"  # type: ignore[attr-defined]


async def test_a_silent_provider_times_out_under_trio(
    gated: tuple[GatedGeeTestEmulator, str],
) -> None:
    emulator, endpoint = gated
    guard = _guard(emulator, endpoint)
    body = urlencode(emulator.issue()).encode()
    try:
        sent = await call(guard, http_scope(headers=form_headers(body)), body_receive(body))
    finally:
        await guard.aclose()
    assert sent.status == 200
    verdict = guard.app.verdicts[-1]  # type: ignore[attr-defined]
    assert (verdict.outcome, verdict.reason) == ("fallback", "timeout")
    assert guard.gate.routes[0].provider.breaker.state is State.OPEN


async def test_a_trickling_body_is_408_under_trio(gated: tuple[GatedGeeTestEmulator, str]) -> None:
    import trio

    emulator, endpoint = gated
    guard = _guard(emulator, endpoint, body_timeout=0.2)

    async def receive() -> dict[str, object]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    sent = await call(guard, http_scope(headers=form_headers(b"x" * 10)), receive)
    assert sent.status == 408
    assert guard.app.calls == 0  # type: ignore[attr-defined]
