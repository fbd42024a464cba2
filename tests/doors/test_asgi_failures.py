"""CaptchaGuard when the provider fails: every GeeTest error code in its bin, each outage a
fallback within the timeout (or a 503 where the rule does not fail open), the circuit and its
one probe, and a full connection pool that is never the provider's fault."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

import anyio
import pytest

from captcha_guard import CircuitBreaker, Outcome, Rule
from captcha_guard._breaker import State
from captcha_guard.providers.geetest import OPERATOR_ERRORS, USER_ERRORS
from captcha_guard.testing import Outage
from captcha_guard.testing._geetest import ERROR_MESSAGES
from tests.doors import asgi_kit
from tests.doors.asgi_kit import guard as _guard
from tests.doors.asgi_kit import levels as _levels
from tests.helpers import (
    FakeClock,
    GatedGeeTestEmulator,
    GeeTestEnv,
    RecordingApp,
    asgi_client,
    assert_logs_clean,
    body_receive,
    call,
    form_headers,
    geetest_env,
    http_scope,
)

env = asgi_kit.env

TIMEOUT = 0.3  # the provider timeout of the outage tests
MARGIN = 0.25  # what a fallback may take beyond it


# ---------------------------------------------------------------- error-code bins


ALL_CODES = [*sorted(ERROR_MESSAGES), "-59999", "oops"]


@pytest.mark.asyncio
@pytest.mark.parametrize("code", ALL_CODES)
async def test_each_error_code_lands_in_its_bin(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture, code: str
) -> None:
    app = RecordingApp()
    breaker = CircuitBreaker(failure_threshold=1)
    guard = _guard(env, app, breaker=breaker)
    env.emulator.force_error = code
    async with asgi_client(guard) as client:
        response = await client.post("/login", data=env.issue())
    logged = _levels(caplog)
    if code in USER_ERRORS:
        assert response.status_code == 403
        assert code in response.text
        assert app.calls == 0
        assert logged == []
        assert breaker.state is State.CLOSED
        return
    assert response.status_code == 200
    verdict = app.verdicts[0]
    assert verdict.outcome is Outcome.FALLBACK
    assert breaker.state is State.OPEN
    (record,) = logged
    if code in OPERATOR_ERRORS:
        assert verdict.details == {"fault": "operator", "code": code}
        assert record.levelno == logging.ERROR
        assert code in record.getMessage()
    else:
        assert verdict.details["fault"] == "provider"
        assert record.levelno == logging.WARNING


def test_the_error_code_table_is_covered() -> None:
    assert USER_ERRORS | OPERATOR_ERRORS | {"-50000"} == set(ERROR_MESSAGES)


# ---------------------------------------------------------------- outages


OUTAGES = ["500", "429", "garbage", "html", "hang", "slow", "reset", "refuse"]


@pytest.mark.asyncio
@pytest.mark.parametrize("outage", OUTAGES)
async def test_each_outage_falls_back_within_the_timeout(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    app = RecordingApp()
    guard = _guard(env, app, timeout=TIMEOUT)
    async with asgi_client(guard) as client:
        # a first request warms the pool: outages must also hit a reused connection
        assert (await client.post("/login", data=env.issue())).json()["outcome"] == "passed"
        env.emulator.delay = 1.0
        env.emulator.outage = Outage(outage)
        started = time.monotonic()
        response = await client.post("/login", data=env.issue())
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["outcome"] == "fallback"
    assert elapsed < TIMEOUT + MARGIN, elapsed
    if outage not in ("hang", "slow"):
        assert elapsed < TIMEOUT, elapsed  # a failure that is quick is not waited out
    assert app.verdicts[-1].details["fault"] == "provider"
    (record,) = _levels(caplog)
    assert record.levelno == logging.WARNING
    assert "unavailable" in record.getMessage()


@pytest.mark.asyncio
@pytest.mark.parametrize("outage", ["500", "hang", "refuse", "-50101", "circuit"])
async def test_fail_open_false_answers_503(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    app = RecordingApp()
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
    guard = _guard(
        env, app, rules=[Rule("/login", fail_open=False)], timeout=TIMEOUT, breaker=breaker
    )
    if outage == "circuit":
        breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    elif outage.startswith("-"):
        env.emulator.force_error = outage
    else:
        env.emulator.outage = Outage(outage)
    async with asgi_client(guard) as client:
        started = time.monotonic()
        response = await client.post("/login", data=env.issue(), headers={"accept": "text/html"})
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert app.calls == 0
    assert elapsed < TIMEOUT + MARGIN


# ---------------------------------------------------------------- the circuit


@pytest.mark.asyncio
async def test_the_circuit_opens_then_one_probe_closes_it(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    app = RecordingApp()
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    guard = _guard(env, app, breaker=breaker, timeout=TIMEOUT)
    env.emulator.outage = Outage.HTTP_500
    async with asgi_client(guard) as client:
        for _ in range(3):
            assert (await client.post("/login", data=env.issue())).json()["outcome"] == "fallback"
        assert env.emulator.calls == 3
        assert breaker.state is State.OPEN
        env.emulator.outage = None
        started = time.monotonic()
        response = await client.post("/login", data=env.issue())
        assert time.monotonic() - started < TIMEOUT
        assert response.json() == {
            **response.json(),
            "outcome": "fallback",
            "reason": "circuit open",
        }
        assert env.emulator.calls == 3  # no call while open
        clock.advance(30)
        assert (await client.post("/login", data=env.issue())).json()["outcome"] == "passed"
        assert breaker.state is State.CLOSED
        assert env.emulator.calls == 4


@pytest.mark.asyncio
async def test_100_requests_while_half_open_make_exactly_one_provider_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator = GatedGeeTestEmulator(wait_limit=10.0)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    clock.advance(30)
    assert breaker.state is State.HALF_OPEN
    outcomes: list[Outcome] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        outcomes.append(scope["state"]["captcha"].outcome)
        if outcomes.count(Outcome.FALLBACK) == 99:
            emulator.release.set()  # every other request is done: now the probe may answer
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with geetest_env(emulator) as env:
        guard = _guard(env, app, breaker=breaker, timeout=15)
        start = anyio.Event()
        statuses: list[int] = []

        async def one(fields: dict[str, str]) -> None:
            body = urlencode(fields).encode()
            await start.wait()
            sent = await call(guard, http_scope(headers=form_headers(body)), body_receive(body))
            statuses.append(sent.status)

        try:
            async with anyio.create_task_group() as group:
                for _ in range(100):
                    group.start_soon(one, env.issue())
                start.set()
        finally:
            await guard.aclose()
        assert not emulator.gave_up, "the 99 others queued behind the probe"
        assert emulator.calls == 1
        assert statuses == [200] * 100
        assert outcomes.count(Outcome.FALLBACK) == 99
        assert outcomes[-1] is Outcome.PASSED
        assert breaker.state is State.CLOSED
    # 99 fallbacks, one WARNING: an outage logs once per provider per interval (issue 11).
    fallbacks = _levels(caplog)
    assert [r.getMessage() for r in fallbacks] == [
        "captcha provider geetest unavailable: circuit open"
    ]
    assert_logs_clean(caplog.records, *env.secrets)


@pytest.mark.asyncio
@pytest.mark.parametrize("state", ["closed", "half-open"])
async def test_a_cancelled_provider_call_releases_its_permit_without_a_failure(
    caplog: pytest.LogCaptureFixture, state: str
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator = GatedGeeTestEmulator(wait_limit=30.0)
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
    if state == "half-open":
        breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
        clock.advance(30)
    app = RecordingApp()
    with geetest_env(emulator) as env:
        guard = _guard(env, app, breaker=breaker, timeout=30)
        body = urlencode(env.issue()).encode()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(
                    call, guard, http_scope(headers=form_headers(body)), body_receive(body)
                )
                entered = await anyio.to_thread.run_sync(emulator.entered.wait, 10)
                assert entered
                group.cancel_scope.cancel()
        finally:
            emulator.release.set()
            await guard.aclose()
    assert app.calls == 0
    if state == "closed":
        assert breaker.state is State.CLOSED  # threshold 1: a counted failure would open it
    else:
        assert breaker.state is State.HALF_OPEN
        permit = breaker.acquire()
        assert permit is not None and permit.probe
    assert _levels(caplog) == []  # a cancellation is neither a fallback nor a fault
    assert_logs_clean(caplog.records, *env.secrets)


@pytest.mark.asyncio
async def test_a_full_connection_pool_is_a_503_that_never_opens_the_circuit(
    env: GeeTestEnv,
) -> None:
    # Were a wait for a free connection charged to the provider, a flood of well-formed
    # requests could open the circuit and have forged fields let through in fallback.
    from captcha_guard._aio import AiohttpSender

    breaker = CircuitBreaker(failure_threshold=1)
    app = RecordingApp()
    guard = _guard(env, app, timeout=0.2, breaker=breaker)
    guard._sender = sender = AiohttpSender(limit=1)
    pool = sender.slots()
    await pool.acquire()  # every connection is out
    async with asgi_client(guard) as client:
        answers = [
            await client.post("/login", data=env.issue(), headers={"accept": "application/json"})
            for _ in range(3)
        ]
        pool.release()
        after = await client.post("/login", data=env.issue())
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert answers[0].json()["error"] == "captcha_busy"
    assert breaker.state is State.CLOSED
    assert env.emulator.calls == 1  # only the request after the pool freed up
    assert after.status_code == 200 and app.calls == 1
    await guard.aclose()
