"""Our own slowness is never the provider's fault (issue 8, part 2).

A breaker that counted our waits (a blocked event loop, a full connection pool, a client
trickling its body) could be opened by a client's own load, and forged fields would then pass
in fallback while the provider is healthy. Each test here makes the gate wait for a reason of
ours and checks that the breaker was not charged, through real sockets.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import time
from collections.abc import Iterator
from typing import Any
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
from tests.servers import serve_asgi

TIMEOUT = 0.3


@pytest.fixture
def gated() -> Iterator[tuple[GatedGeeTestEmulator, str]]:
    emulator = GatedGeeTestEmulator()
    with emulator.serve() as server:
        yield emulator, server.endpoint("/validate")
    emulator.release.set()


def _guard(endpoint: str, emulator: Any, breaker: CircuitBreaker, **options: Any) -> CaptchaGuard:
    provider = GeeTest(
        emulator.captcha_id,
        emulator.captcha_key,
        endpoint=endpoint,
        timeout=TIMEOUT,
        breaker=breaker,
    )
    return CaptchaGuard(RecordingApp(), rules=[Rule("/login")], provider=provider, **options)


def _post(emulator: Any) -> tuple[dict[str, Any], Any]:
    body = urlencode(emulator.issue()).encode()
    scope = http_scope(headers=[*form_headers(body), (b"accept", b"application/json")])
    return scope, body_receive(body)


@pytest.mark.asyncio
async def test_a_stalled_event_loop_is_not_a_provider_timeout(
    gated: tuple[GatedGeeTestEmulator, str],
) -> None:
    emulator, endpoint = gated
    breaker = CircuitBreaker(failure_threshold=1)
    guard = _guard(endpoint, emulator, breaker)
    try:
        task = asyncio.create_task(call(guard, *_post(emulator)))
        assert await asyncio.to_thread(emulator.entered.wait, 5)
        emulator.release.set()
        # The loop is blocked (as by a burst of heavy bodies) for longer than the provider's
        # timeout, while the provider's answer arrives: the provider was on time.
        time.sleep(TIMEOUT * 3)
        sent = await task
    finally:
        await guard.aclose()
    assert sent.status == 200
    assert guard.app.verdicts[-1].outcome == "passed"  # type: ignore[attr-defined]
    assert breaker.state is State.CLOSED


@pytest.mark.asyncio
@pytest.mark.parametrize("module", [None, "httpx", "httpx2"])
async def test_a_provider_that_never_answers_still_times_out_on_time(
    module: str | None, gated: tuple[GatedGeeTestEmulator, str]
) -> None:
    # The default client (aiohttp), and a caller's httpx or httpx2 one: the same deadline.
    emulator, endpoint = gated
    breaker = CircuitBreaker(failure_threshold=1)
    client = None if module is None else importlib.import_module(module).AsyncClient()
    guard = _guard(endpoint, emulator, breaker, http_client=client)
    started = time.monotonic()
    try:
        sent = await call(guard, *_post(emulator))
    finally:
        await guard.aclose()
        if client is not None:
            await client.aclose()
    elapsed = time.monotonic() - started
    assert sent.status == 200  # fail-open: the app ran with a fallback verdict
    assert guard.app.verdicts[-1].outcome == "fallback"  # type: ignore[attr-defined]
    assert guard.app.verdicts[-1].reason == "timeout"  # type: ignore[attr-defined]
    assert breaker.state is State.OPEN
    assert TIMEOUT <= elapsed < TIMEOUT + 0.25


async def _burst_through_a_small_pool(
    client: Any, hold: Any, gated: tuple[GatedGeeTestEmulator, str]
) -> None:
    """The caller's client has one connection, and the site's other traffic holds it (a
    request to another slow server): the gate's calls wait for it, bounded, and are BUSY."""
    emulator, endpoint = gated
    emulator.release.set()  # the provider itself answers at once
    other = GatedGeeTestEmulator()
    with other.serve() as slow:
        holder = asyncio.create_task(hold(slow.endpoint("/validate")))
        assert await asyncio.to_thread(other.entered.wait, 5)
        breaker = CircuitBreaker(failure_threshold=1)
        guard = _guard(endpoint, emulator, breaker, http_client=client)
        waiting = await asyncio.gather(*(call(guard, *_post(emulator)) for _ in range(3)))
        other.release.set()
        await holder
        after = await call(guard, *_post(emulator))
    assert [w.status for w in waiting] == [503, 503, 503]
    assert all(b"captcha_busy" in w.body for w in waiting)
    assert breaker.state is State.CLOSED
    assert after.status == 200
    assert guard.app.verdicts[-1].outcome == "passed"  # type: ignore[attr-defined]
    assert emulator.calls == 1  # only the request after the connection came free


@pytest.mark.asyncio
@pytest.mark.parametrize("module", ["httpx", "httpx2"])
async def test_a_callers_small_httpx_pool_is_busy_not_a_provider_failure(
    module: str, gated: tuple[GatedGeeTestEmulator, str]
) -> None:
    # httpx2, the maintained fork, is a first-class client too: the same pool-wait semantics.
    http = importlib.import_module(module)
    limits = http.Limits(max_connections=1, max_keepalive_connections=1)
    async with http.AsyncClient(limits=limits) as client:

        async def hold(url: str) -> None:
            await client.post(url, data={"x": "1"})

        await _burst_through_a_small_pool(client, hold, gated)


@pytest.mark.asyncio
async def test_a_callers_small_aiohttp_pool_is_busy_not_a_provider_failure(
    gated: tuple[GatedGeeTestEmulator, str],
) -> None:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:

        async def hold(url: str) -> None:
            async with session.post(url, data={"x": "1"}) as response:
                await response.read()

        await _burst_through_a_small_pool(session, hold, gated)


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_a_trickling_body_is_cut_off_with_a_408(http: str) -> None:
    app = RecordingApp()
    provider = GeeTest("647f5ed2ed8acb4be36784e01556bb71", "key", endpoint="http://127.0.0.1:9/")
    guard = CaptchaGuard(app, rules=[Rule("/login")], provider=provider, body_timeout=0.3)
    with serve_asgi(guard, http=http) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            # Before sending: the server's clock for the body cannot start any earlier.
            started = time.monotonic()
            sock.sendall(
                b"POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/"
                b"x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nlot_number=1"
            )
            answer = b""
            while b"\r\n\r\n" not in answer:  # the rest of the body never comes
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert 0.3 <= elapsed < 2.0
    assert app.calls == 0


def test_body_timeout_is_checked_at_start_up() -> None:
    provider = GeeTest("647f5ed2ed8acb4be36784e01556bb71", "key")
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="body_timeout"):
            CaptchaGuard(RecordingApp(), rules=[], provider=provider, body_timeout=bad)
    with pytest.raises(TypeError, match="body_timeout"):
        CaptchaGuard(RecordingApp(), rules=[], provider=provider, body_timeout="5")  # type: ignore[arg-type]
