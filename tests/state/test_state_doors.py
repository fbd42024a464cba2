"""What the shared state answers when it cannot answer (docs/shared-state.md), through both
doors on real servers against a real redis-server: killed, paused (SIGSTOP), restarted
without its data, full (maxmemory, noeviction), and a loop stalled by heavy multipart bodies
while Redis is healthy. Only the breaker falls back to in-process state; a security question
is refused (503 captcha_unavailable, Retry-After), never a 500, never a second pass."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis as redis_py

from captcha_guard import CaptchaGuard, ProofOfWork, Rule, WSGICaptchaGuard
from captcha_guard._failover import FailoverState, bind_state
from captcha_guard._state import StateOp
from captcha_guard.redis import RedisState
from captcha_guard.testing import Outage
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.hardening_kit import CASES, DOORS, guarded_site
from tests.helpers import solve_pow
from tests.redis_server import RedisServer
from tests.servers import serve_asgi, serve_wsgi

SECRET = "state-doors-secret-0123456789abcdef"
TIMEOUT = 0.2
JSON = {"accept": "application/json"}


def shared(server: RedisServer, prefix: str, **options: Any) -> RedisState:
    return RedisState.from_url(server.url, prefix=prefix, timeout=TIMEOUT, **options)


def unavailable(answer: httpx.Response) -> bool:
    return (
        answer.status_code == 503
        and answer.json()["error"] == "captcha_unavailable"
        and answer.headers.get("retry-after") == "5"
    )


def pow_site(door: str, state: RedisState) -> Any:
    provider = ProofOfWork(SECRET, max_number=30, challenge_path="/c", escalation=(8, 64))
    if door == "asgi":
        return serve_asgi(
            CaptchaGuard(echo_asgi, rules=[Rule("/login")], provider=provider, state=state)
        )
    return serve_wsgi(
        WSGICaptchaGuard(echo_wsgi, rules=[Rule("/login")], provider=provider, state=state)
    )


# -- down, paused, back without its data -----------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("failure", ["killed", "paused"])
def test_a_store_that_cannot_answer_refuses_replay_guards_and_keeps_the_breaker(
    door: str, failure: str, own_redis: RedisServer, prefix: str
) -> None:
    state = shared(own_redis, prefix)
    with guarded_site(CASES[0], door=door, failure_threshold=1, state=state) as s:
        s.emulator.outage = Outage.HTTP_500
        before = s.post(data=s.issue())
        assert before.json()["outcome"] == "fallback"  # Redis answers: one fallback
        own_redis.kill() if failure == "killed" else own_redis.pause()
        try:
            started = time.monotonic()
            answers = [s.post(data=s.issue()) for _ in range(4)]
            took = time.monotonic() - started
        finally:
            if failure == "paused":
                own_redis.resume()
    # The fallback guard cannot be asked: 503 with Retry-After, never a local "first".
    assert all(unavailable(a) for a in answers), [a.text for a in answers]
    assert took < 4 * 3 * TIMEOUT + 2.0  # bounded by the timeout, never the client's 5 s
    # The breaker, kept in process, still counts: the circuit the outage opened is open.
    assert s.breaker.state.value == "open"


@pytest.mark.parametrize("door", DOORS)
def test_a_store_back_without_its_data_shares_again(
    door: str, own_redis: RedisServer, prefix: str
) -> None:
    state = shared(own_redis, prefix)
    with (
        pow_site(door, state) as url,
        httpx.Client(base_url=url, headers=JSON, verify=TLS) as client,
    ):
        value = solve_pow(client.get("/c").json())
        assert client.post("/login", data={"altcha": value}).status_code == 200
        own_redis.kill()
        down = client.post("/login", data={"altcha": solve_pow(client.get("/c").json())})
        assert unavailable(down)
        own_redis.start()  # no persistence: every replay key is gone

        def answers() -> bool:
            fresh = solve_pow(client.get("/c").json())
            return client.post("/login", data={"altcha": fresh}).status_code == 200

        deadline = time.monotonic() + 10
        while not answers():
            assert time.monotonic() < deadline
        fresh = solve_pow(client.get("/c").json())
        assert client.post("/login", data={"altcha": fresh}).status_code == 200
        assert client.post("/login", data={"altcha": fresh}).status_code == 403  # shared again


@pytest.mark.parametrize("door", DOORS)
def test_the_per_process_opt_in_answers_from_memory_during_a_real_outage(
    door: str, own_redis: RedisServer, prefix: str
) -> None:
    state = shared(own_redis, prefix, in_outage="per_process")
    with (
        pow_site(door, state) as url,
        httpx.Client(base_url=url, headers=JSON, verify=TLS) as client,
    ):
        own_redis.kill()
        value = solve_pow(client.get("/c").json())
        first = client.post("/login", data={"altcha": value})
        again = client.post("/login", data={"altcha": value})
    assert (first.status_code, again.status_code) == (200, 403)  # once per worker


# -- full --------------------------------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_a_full_cheap_level_escalates_and_honest_solvers_pass(
    door: str, own_redis: RedisServer, prefix: str
) -> None:
    # Client traffic fills the cheap level's capacity (shared mode has one per namespace):
    # new challenges go one level up, where an honest solver still passes.
    state = shared(own_redis, prefix, max_entries=2)
    with (
        pow_site(door, state) as url,
        httpx.Client(base_url=url, headers=JSON, verify=TLS) as client,
    ):
        hoard = [client.get("/c").json() for _ in range(3)]
        for challenge in hoard[:2]:
            assert client.post("/login", data={"altcha": solve_pow(challenge)}).status_code == 200
        full = client.post("/login", data={"altcha": solve_pow(hoard[2])})
        assert full.status_code == 403
        honest = client.get("/c").json()
        assert honest["maxnumber"] == 240
        assert client.post("/login", data={"altcha": solve_pow(honest)}).status_code == 200


@pytest.mark.parametrize("door", DOORS)
def test_a_redis_at_maxmemory_is_never_a_500(
    door: str, own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = shared(own_redis, prefix)
    admin = redis_py.Redis(unix_socket_path=own_redis.socket)
    try:
        with (
            caplog.at_level(logging.DEBUG, logger="captcha_guard"),
            guarded_site(CASES[0], door=door, failure_threshold=2, state=state) as s,
        ):
            s.emulator.outage = Outage.HTTP_500
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", 1)  # every write is now OOM: breaker writes too
            answers = [s.post(data=s.issue()) for _ in range(5)]
    finally:
        admin.config_set("maxmemory", 0)
        admin.close()
    assert all(unavailable(a) for a in answers), [a.status_code for a in answers]
    assert s.breaker.state.value == "open"  # the breaker counted, in process
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- a stalled loop is not an outage -------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_answer_that_came_while_the_loop_was_stalled_is_read(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = bind_state(shared(own_redis, prefix), door="asgi")
    assert isinstance(state, FailoverState)
    op = StateOp("remember", ("pow", "k", 60))
    assert await state.arun(op)

    async def stall() -> None:
        time.sleep(5 * TIMEOUT)  # what parsing heavy bodies does to the loop

    replay, _ = await asyncio.gather(state.arun(op), stall())
    assert not replay  # Redis's answer (a replay), read after the stall: not a timeout
    assert not state.outage
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    await state.aclose()


def heavy_multipart(size: int = 140_000) -> tuple[bytes, str]:
    boundary = "b" * 30
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\n{"x" * 60}\r\n'
        for n in range(size // 120)
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), boundary


def test_a_loop_stalled_by_heavy_bodies_never_lets_a_solution_pass_twice(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # ASGI only: a WSGI worker has no loop to stall (a slow parse holds its own thread).
    state = shared(own_redis, prefix)
    body, boundary = heavy_multipart()
    content_type = f"multipart/form-data; boundary={boundary}"
    stop = threading.Event()
    with (
        caplog.at_level(logging.DEBUG, logger="captcha_guard"),
        pow_site("asgi", state) as url,
        httpx.Client(base_url=url, headers=JSON, timeout=30, verify=TLS) as client,
    ):
        value = solve_pow(client.get("/c").json())
        assert client.post("/login", data={"altcha": value}).status_code == 200

        def flood() -> None:
            with httpx.Client(base_url=url, timeout=30, verify=TLS) as heavy:
                while not stop.is_set():
                    heavy.post("/login", content=body, headers={"content-type": content_type})

        with ThreadPoolExecutor(8) as pool:
            for _ in range(6):
                pool.submit(flood)
            replays = [client.post("/login", data={"altcha": value}) for _ in range(20)]
            stop.set()
    codes = {r.status_code for r in replays}
    assert 200 not in codes  # never a second pass, stalled loop or not
    assert codes <= {403, 503}
    assert not [r for r in caplog.records if "shared state unavailable" in r.getMessage()]
