"""CaptchaGuard under trio: no asyncio loop, so provider calls go through httpx on anyio.

The only tests that run on anyio's pytest plugin: everything else is asyncio (pytest-asyncio).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from captcha_guard import CaptchaGuard, CircuitBreaker, GeeTest, Rule
from captcha_guard._breaker import State
from tests import TLS
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


async def test_a_stalled_trio_loop_is_not_a_provider_timeout(
    gated: tuple[GatedGeeTestEmulator, str],
) -> None:
    # As under asyncio: a loop blocked (by a burst of heavy bodies, say) for longer than the
    # provider's timeout while the answer arrives must not open the circuit.
    import time

    import trio

    emulator, endpoint = gated
    guard = _guard(emulator, endpoint)
    body = urlencode(emulator.issue()).encode()
    sent: list[object] = []

    async def post() -> None:
        sent.append(await call(guard, http_scope(headers=form_headers(body)), body_receive(body)))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post)
            assert await trio.to_thread.run_sync(emulator.entered.wait, 5)
            emulator.release.set()
            time.sleep(0.9)  # the loop itself stalls: three times the provider's timeout
    finally:
        await guard.aclose()
    assert [s.status for s in sent] == [200]  # type: ignore[attr-defined]
    assert guard.app.verdicts[-1].outcome == "passed"  # type: ignore[attr-defined]
    assert guard.gate.routes[0].provider.breaker.state is State.CLOSED


async def test_a_full_pool_under_trio_is_busy_not_a_provider_failure(
    gated: tuple[GatedGeeTestEmulator, str],
) -> None:
    # The caller's client has one connection and the site's other traffic holds it (a request
    # to another slow server): the gate's call waits for it, bounded, and is captcha_busy.
    import httpx
    import trio

    emulator, endpoint = gated
    emulator.release.set()  # the provider itself answers at once
    other = GatedGeeTestEmulator(wait_limit=5)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with other.serve() as slow:
        async with httpx.AsyncClient(limits=limits, verify=TLS) as client:
            guard = _guard(emulator, endpoint, http_client=client)

            async def post() -> object:
                body = urlencode(emulator.issue()).encode()
                headers = [*form_headers(body), (b"accept", b"application/json")]
                return await call(guard, http_scope(headers=headers), body_receive(body))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.post, slow.endpoint("/validate"))
                assert await trio.to_thread.run_sync(other.entered.wait, 5)
                busy = await post()
                other.release.set()
            after = await post()
    assert busy.status == 503 and b"captcha_busy" in busy.body  # type: ignore[attr-defined]
    assert guard.gate.routes[0].provider.breaker.state is State.CLOSED
    assert after.status == 200  # type: ignore[attr-defined]
    assert guard.app.verdicts[-1].outcome == "passed"  # type: ignore[attr-defined]
    assert emulator.calls == 1  # only the request after the connection came free
