"""Issue 10, the fleet: the doors with ``state=RedisState`` on a real redis-server, first as
two guards in this process, then as real worker processes (``uvicorn --workers 2`` and 4,
``gunicorn -w 2`` with sync and with uvicorn workers), with Redis killed and restarted under
them, and as two "hosts" (two servers, each its own in-process state) on one Redis.

No fakes and no sleeping in hope: every wait polls a condition under a deadline, and every
loop is bounded. The provider is the Turnstile emulator served over HTTP from this process
(its ``calls`` count every request the workers made to it); the site is tests/state/fleet_app.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis as redis_py

# Public names only (and StateOp, the state's one operation type), so that this file runs
# unchanged whatever the package's private module layout.
from captcha_guard import (
    CircuitBreaker,
    ProofOfWork,
    Rule,
    Turnstile,
)
from captcha_guard._state import StateOp
from captcha_guard.redis import RedisState
from captcha_guard.testing import EmulatorServer, Outage, TurnstileEmulator
from tests import ROOT, TLS
from tests.helpers import solve_pow as solve
from tests.redis_server import RedisServer
from tests.servers import serve_asgi, serve_wsgi
from tests.state import fleet_app

THRESHOLD = 3
RESET = 1.5
#: The reset of guards built for tests that never reach half-open (in_process, some fleets).
GUARD_RESET = 60.0
CHALLENGE = "/captcha-guard/challenge"
POW_FIELD = "altcha"

pytestmark = pytest.mark.timeout(60)


# Fixtures and helpers.


@pytest.fixture
def emulator() -> Iterator[tuple[TurnstileEmulator, EmulatorServer]]:
    emulator = TurnstileEmulator()
    with emulator.serve() as server:
        yield emulator, server


def endpoint(server: EmulatorServer) -> str:
    return server.endpoint("/siteverify")


class Site:
    """A guarded site reached over HTTP: a base URL on TCP, or a unix socket."""

    def __init__(self, base: str = "http://fleet", uds: str | None = None) -> None:
        self.base = base
        self.uds = uds

    def client(self, timeout: float = 5.0) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=self.uds, verify=TLS) if self.uds else None
        return httpx.Client(base_url=self.base, transport=transport, timeout=timeout)

    def request(
        self, method: str, path: str, data: dict[str, str] | None = None, timeout: float = 5.0
    ) -> tuple[int, dict[str, Any]]:
        """One request on a fresh connection (so successive ones may land on any worker)."""
        with self.client(timeout) as client:
            response = client.request(method, path, data=data)
        document = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        return response.status_code, document

    def solution(self) -> str:
        status, challenge = self.request("GET", CHALLENGE)
        assert status == 200, challenge
        return solve(challenge)

    def post_pow(self, value: str) -> tuple[int, dict[str, Any]]:
        return self.request("POST", "/pow", {POW_FIELD: value})

    def post_token(self, token: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return self.request("POST", "/login", token)


def poll(condition: Callable[[], bool], seconds: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class State:
    """The breaker states as ``breaker_state`` reads them (``captcha_guard``'s State values)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def breaker_state(redis: RedisServer, prefix: str, reset: float = RESET) -> str:
    """The fleet's Turnstile circuit as Redis holds it (read only), read with the guards'
    own ``reset`` (an open circuit reads half-open once ``reset`` has passed)."""
    state = RedisState.from_url(redis.url, prefix=prefix, timeout=2.0)
    try:
        result = state.run(StateOp("breaker_state", ("turnstile", THRESHOLD, reset)))
        return str(result.value)
    finally:
        state.close()


def breaker_record(redis: RedisServer, prefix: str) -> tuple[str, int]:
    """The Turnstile breaker's hash in Redis: its state letter and generation (redis.py: the
    generation grows by one on every transition and every probe granted)."""
    client = redis_py.Redis(unix_socket_path=redis.socket)
    try:
        state, generation = client.hmget("{" + prefix + ":breaker:turnstile}", "s", "g")
    finally:
        client.close()
    return state.decode(), int(generation)


def probes_since(redis: RedisServer, prefix: str, opened: tuple[str, int]) -> int:
    """How many half-open probes were granted since ``opened`` (an open circuit's record),
    the circuit being open again now: each cool-down (open -> half-open), probe granted and
    failure (-> open) is three generations."""
    state, generation = breaker_record(redis, prefix)
    assert opened[0] == state == "o", (opened, state)
    assert (generation - opened[1]) % 3 == 0, (opened, generation)
    return (generation - opened[1]) // 3


# Part 1: two guards in this process, each its own door and its own RedisState.


@contextmanager
def in_process(
    door: str,
    redis: RedisServer,
    prefix: str,
    server: EmulatorServer,
    door_kwargs: dict[str, Any] | None = None,
) -> Iterator[Site]:
    options: dict[str, Any] = {
        "redis": redis.url,
        "prefix": prefix,
        "endpoint": endpoint(server),
        "threshold": THRESHOLD,
        "reset": GUARD_RESET,  # no half-open within a test of part 1
    }
    if door == "asgi":
        with serve_asgi(fleet_app.build_asgi(door_kwargs, **options)) as base:
            yield Site(base)
    else:
        with serve_wsgi(fleet_app.build_wsgi(door_kwargs, **options)) as base:
            yield Site(base)


PAIRS = [("asgi", "asgi"), ("wsgi", "wsgi"), ("asgi", "wsgi")]


@contextmanager
def two_guards(
    pair: tuple[str, str],
    redis: RedisServer,
    prefixes: tuple[str, str],
    server: EmulatorServer,
    door_kwargs: Callable[[], dict[str, Any]] | None = None,
) -> Iterator[tuple[Site, Site]]:
    """Two guards, each built with its own ``door_kwargs()`` (fresh objects each)."""
    make = door_kwargs or dict
    with (
        in_process(pair[0], redis, prefixes[0], server, make()) as a,
        in_process(pair[1], redis, prefixes[1], server, make()) as b,
    ):
        yield a, b


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_pow_solution_passes_once_across_two_guards(
    pair: tuple[str, str], shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    with two_guards(pair, shared_redis, (prefix, prefix), emulator[1]) as (a, b):
        for first, second in ((a, b), (b, a)):
            value = first.solution()
            assert first.post_pow(value) == (200, {"pid": os.getpid(), "outcome": "passed"})
            status, _ = second.post_pow(value)
            assert status == 403
            assert first.post_pow(value)[0] == 403


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_fallback_token_passes_once_across_two_guards(
    pair: tuple[str, str], shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    emu, server = emulator
    emu.outage = Outage.HTTP_500
    with two_guards(pair, shared_redis, (prefix, prefix), server) as (a, b):
        for first, second in ((a, b), (b, a)):
            token = emu.issue()
            assert first.post_token(token) == (200, {"pid": os.getpid(), "outcome": "fallback"})
            assert second.post_token(token)[0] == 403
            assert first.post_token(token)[0] == 403


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_failing_provider_opens_the_breaker_for_both_guards(
    pair: tuple[str, str], shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    emu, server = emulator
    with two_guards(pair, shared_redis, (prefix, prefix), server) as (a, b):
        # Both guards have seen the provider working: each holds a closed snapshot.
        for site in (a, b):
            assert site.post_token(emu.issue()) == (200, {"pid": os.getpid(), "outcome": "passed"})
        before = emu.calls
        emu.outage = Outage.HTTP_500
        # Alternating, one at a time: the guard that did not make the opening call may make
        # one more on its cached closed snapshot (under a second old), whose reply says open.
        for n in range(2 * THRESHOLD):
            site = (a, b)[n % 2]
            assert site.post_token(emu.issue())[1]["outcome"] == "fallback"
        opened_after = emu.calls - before
        assert THRESHOLD <= opened_after <= THRESHOLD + 1
        assert breaker_state(shared_redis, prefix, reset=GUARD_RESET) == State.OPEN
        for n in range(6):
            assert (a, b)[n % 2].post_token(emu.issue())[1]["outcome"] == "fallback"
        assert emu.calls - before == opened_after  # open for both: no call from either


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_two_prefixes_share_nothing_through_the_doors(
    pair: tuple[str, str], shared_redis: RedisServer, emulator: Any
) -> None:
    emu, server = emulator
    prefixes = ("fleetA" + uuid.uuid4().hex[:8], "fleetB" + uuid.uuid4().hex[:8])
    with two_guards(pair, shared_redis, prefixes, server) as (a, b):
        value = a.solution()
        assert a.post_pow(value)[0] == 200
        assert b.post_pow(value)[0] == 200  # its own memory: not seen under its prefix
        assert a.post_pow(value)[0] == b.post_pow(value)[0] == 403
        emu.outage = Outage.HTTP_500
        token = emu.issue()
        assert a.post_token(token)[1]["outcome"] == "fallback"
        assert b.post_token(token)[1]["outcome"] == "fallback"
        for _ in range(THRESHOLD):
            a.post_token(emu.issue())
        assert breaker_state(shared_redis, prefixes[0], reset=GUARD_RESET) == State.OPEN
        assert breaker_state(shared_redis, prefixes[1], reset=GUARD_RESET) == State.CLOSED
        before = emu.calls
        assert b.post_token(emu.issue())[1]["outcome"] == "fallback"
        assert emu.calls == before + 1  # b's circuit is its own: still closed, still calling


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_fallback_budget_is_spent_across_two_guards(
    pair: tuple[str, str], shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    emu, server = emulator
    emu.outage = Outage.HTTP_500
    budget = lambda: {"fallback_limit": 3}  # noqa: E731 - per minute per network, in Redis
    with two_guards(pair, shared_redis, (prefix, prefix), server, budget) as (a, b):
        answers = [(a, b)[n % 2].post_token(emu.issue()) for n in range(6)]
    # One client (127.0.0.1), one budget for both guards: three fallbacks in all, not six.
    assert [code for code, _ in answers] == [200, 200, 200, 403, 403, 403]
    assert {d["error"] for code, d in answers if code == 403} == {"captcha_rejected"}


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
def test_breakers_are_keyed_by_provider_name_not_class(
    pair: tuple[str, str], shared_redis: RedisServer, prefix: str
) -> None:
    one, two = TurnstileEmulator(), TurnstileEmulator()
    with one.serve() as first, two.serve() as second:

        def two_accounts() -> dict[str, Any]:
            def account(server: EmulatorServer) -> Turnstile:
                return Turnstile(
                    fleet_app.TURNSTILE_SECRET,
                    endpoint=endpoint(server),
                    timeout=fleet_app.PROVIDER_TIMEOUT,
                    breaker=CircuitBreaker(THRESHOLD, 60.0),
                )

            return {
                "rules": [Rule("/one", provider="one"), Rule("/two", provider="two")],
                "providers": {"one": account(first), "two": account(second)},
                "provider": None,
            }

        with two_guards(pair, shared_redis, (prefix, prefix), first, two_accounts) as (a, b):
            one.outage = Outage.HTTP_500
            for n in range(THRESHOLD + 1):
                (a, b)[n % 2].request("POST", "/one", one.issue())
            calls = one.calls
            assert a.request("POST", "/one", one.issue())[1]["outcome"] == "fallback"
            assert b.request("POST", "/one", one.issue())[1]["outcome"] == "fallback"
            assert one.calls == calls  # "one" is open for both guards
            for site in (a, b):  # "two", the same class, is closed and answers
                assert site.request("POST", "/two", two.issue())[1]["outcome"] == "passed"
            assert two.calls == 2


@pytest.mark.parametrize("pair", [("asgi", "wsgi")], ids="+".join)
def test_an_escalated_pow_solution_passes_once_across_two_guards(
    pair: tuple[str, str],
    own_redis: RedisServer,
    prefix: str,
    emulator: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Escalation is what a full replay memory leads to: a Redis at maxmemory (noeviction)
    refuses the first level's write, new challenges go one level up, and that level's memory
    (namespace "pow:1") must be shared as the first level's is."""

    def escalating() -> dict[str, Any]:
        pow_ = ProofOfWork(
            fleet_app.POW_SECRET, max_number=100, escalation=(8, 64)
        )  # 100, 800, 6400
        return {"providers": {"pow": pow_}}

    admin = redis_py.Redis(unix_socket_path=own_redis.socket)
    try:
        with two_guards(pair, own_redis, (prefix, prefix), emulator[1], escalating) as (a, b):
            admin.config_set("maxmemory", 1)  # every write is now OOM
            status, document = a.post_pow(a.solution())
            assert (status, document["error"]) == (403, "captcha_rejected")  # full: refused
            admin.config_set("maxmemory", 0)
            _, challenge = a.request("GET", CHALLENGE)
            assert challenge["maxnumber"] == 800  # one level up
            value = solve(challenge)
            caplog.clear()
            assert a.post_pow(value)[1]["outcome"] == "passed"
            assert b.post_pow(value)[0] == 403
            assert a.post_pow(value)[0] == 403
            assert not [r for r in caplog.records if "shared state unavailable" in r.message]
    finally:
        admin.close()


# Parts 2 to 4: real server processes, each serving tests/state/fleet_app.py on a unix socket.

#: gunicorn-sync-preload: the app (and its RedisState) is built in the master before the fork.
KINDS = ["uvicorn", "gunicorn-sync", "gunicorn-uvicorn", "gunicorn-sync-preload"]
#: Every state operation may take up to RedisState's timeout, and a request to fleet_app
#: performs at most three (breaker acquire and record, one replay write: no budget is set),
#: plus the provider's time.
REQUEST_BOUND = 3 * fleet_app.REDIS_TIMEOUT + fleet_app.PROVIDER_TIMEOUT + 0.5


def _command(kind: str, sock: str, workers: int) -> list[str]:
    if kind == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "--workers", str(workers), "--uds", sock,
            "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "30",
            "tests.state.fleet_app:asgi_app",
        ]  # fmt: skip
    sync = kind.startswith("gunicorn-sync")
    return [
        sys.executable, "-m", "gunicorn", "-w", str(workers),
        "-k", "sync" if sync else "uvicorn.workers.UvicornWorker",
        "--bind", f"unix:{sock}", "--log-level", "warning", "--keep-alive", "30",
        "--graceful-timeout", "2", *(["--preload"] if kind.endswith("-preload") else []),
        "tests.state.fleet_app:wsgi_app" if sync else "tests.state.fleet_app:asgi_app",
    ]  # fmt: skip


class Fleet(Site):
    def __init__(
        self, uds: str, process: subprocess.Popen[bytes], workers: int, log_path: str
    ) -> None:
        super().__init__(uds=uds)
        self.process = process
        self.log_path = log_path
        self.workers: set[int] = set()
        self.size = workers

    def log(self) -> str:
        """What the server and its workers wrote to stderr so far."""
        return Path(self.log_path).read_text(errors="replace")

    def status(self) -> tuple[int, bool] | None:
        try:
            code, document = self.request("GET", "/status", timeout=2.0)
        except httpx.TransportError:
            return None
        return (document["pid"], document["outage"]) if code == 200 else None

    def wait_ready(self, seconds: float = 20.0) -> None:
        """Until every worker has answered /status with its shared state up."""
        up: set[int] = set()

        def ready() -> bool:
            assert self.process.poll() is None, "the server exited"
            answer = self.status()
            if answer is not None:
                pid, outage = answer
                (up.discard if outage else up.add)(pid)
            return len(up) >= self.size

        poll(ready, seconds, f"{self.size} workers with shared state up")
        self.workers = set(up)

    def spread(
        self, send: Callable[[], tuple[int, dict[str, Any]]], at_least: int, limit: int = 60
    ) -> list[tuple[int, dict[str, Any]]]:
        """At least ``at_least`` requests, on fresh connections from 4 threads, until every
        worker has answered one (at most ``limit``)."""
        answers: list[tuple[int, dict[str, Any]]] = []
        with ThreadPoolExecutor(4) as pool:
            while len(answers) < limit:
                answers += list(pool.map(lambda _: send(), range(4)))
                pids = {document.get("pid") for _, document in answers}
                if len(answers) >= at_least and pids >= self.workers:
                    return answers
        raise AssertionError(f"not every worker answered in {limit} requests: {answers}")


@contextmanager
def fleet(
    kind: str,
    redis: RedisServer,
    prefix: str,
    server: EmulatorServer,
    *,
    workers: int = 2,
    reset: float = RESET,
    redis_timeout: float | None = None,
) -> Iterator[Fleet]:
    directory = tempfile.mkdtemp(prefix="cg-fleet-")
    sock = os.path.join(directory, "site.sock")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLEET_REDIS": redis.url,
        "FLEET_PREFIX": prefix,
        "FLEET_ENDPOINT": endpoint(server),
        "FLEET_THRESHOLD": str(THRESHOLD),
        "FLEET_RESET": str(reset),
    }
    if redis_timeout is not None:
        env["FLEET_REDIS_TIMEOUT"] = str(redis_timeout)
    log_path = os.path.join(directory, "stderr.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _command(kind, sock, workers),
            cwd=ROOT,
            env=env,
            stderr=log,
            start_new_session=True,
        )
    try:
        site = Fleet(sock, process, workers, log_path)
        site.wait_ready()
        yield site
    finally:
        # The server and its workers are one process group, ours: stop it, then make sure.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def outcomes(answers: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, Any]]:
    return sorted((code, document.get("outcome")) for code, document in answers)


def passes_once_across_the_fleet(
    site: Fleet, send: Callable[[], tuple[int, dict[str, Any]]], outcome: str
) -> None:
    answers = site.spread(send, at_least=12)
    passed = [a for a in answers if a[0] == 200]
    assert [(code, d["outcome"]) for code, d in passed] == [(200, outcome)], outcomes(answers)
    assert all(code == 403 for code, _ in answers if (code, _) not in passed), outcomes(answers)


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn-sync"])
def test_four_workers_let_one_solution_and_one_fallback_token_pass_once(
    kind: str, shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    # The issue's own reproduction: under ``--workers 4`` one proof-of-work solution passed
    # once per worker. With the shared state it passes once in 40 posts spread over all four.
    # What is shown is the sharing, so Redis must answer in time: four workers on a loaded
    # two-core machine sometimes took over the default 0.2 s, and then each worker that saw the
    # outage let the token through once on its own (the documented bound, tested below with
    # Redis killed). A 2 s timeout keeps that out of this test, and no outage may be logged.
    emu, server = emulator
    with fleet(kind, shared_redis, prefix, server, workers=4, redis_timeout=2.0) as site:
        assert len(site.workers) == 4
        value = site.solution()
        answers = site.spread(lambda: site.post_pow(value), at_least=40)
        assert sorted(code for code, _ in answers).count(200) == 1, outcomes(answers)
        assert {code for code, _ in answers} == {200, 403}, outcomes(answers)
        assert {document.get("pid") for _, document in answers} >= site.workers

        emu.outage = Outage.HTTP_500
        token = emu.issue()
        answers = site.spread(lambda: site.post_token(token), at_least=40)
        passed = [(code, d["outcome"]) for code, d in answers if code == 200]
        assert passed == [(200, "fallback")], (outcomes(answers), site.log())
        assert {code for code, _ in answers} == {200, 403}, outcomes(answers)
        assert "shared state" not in site.log(), site.log()


def test_four_workers_with_loops_stalled_by_heavy_bodies_never_pass_a_solution_twice(
    shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    # The issue's R2: multipart bodies that take the loop past RedisState's 0.2 s timeout
    # while Redis is healthy. Default timeout here, on purpose: the stall is credited to our
    # own loop (never an outage) and no answer comes from a worker's own memory.
    _, server = emulator
    boundary = "b" * 30
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\n{"x" * 60}\r\n'
    heavy = (part * 1_200 + f"--{boundary}--\r\n").encode()  # about 140 KB
    stop = threading.Event()
    with fleet("uvicorn", shared_redis, prefix, server, workers=4) as site:
        value = site.solution()

        def flood() -> None:
            with site.client(timeout=30) as client:
                while not stop.is_set():
                    client.post(
                        "/pow",
                        content=heavy,
                        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
                    )

        with ThreadPoolExecutor(6) as pool:
            for _ in range(6):
                pool.submit(flood)
            try:
                answers = site.spread(lambda: site.post_pow(value), at_least=40)
            finally:
                stop.set()
        log = site.log()
    codes = [code for code, _ in answers]
    assert codes.count(200) <= 1, outcomes(answers)  # never twice, stalled or not
    assert set(codes) <= {200, 403, 503}, outcomes(answers)
    assert "shared state unavailable" not in log, log


@pytest.mark.parametrize("kind", KINDS)
def test_two_workers_share_replays_and_one_breaker(
    kind: str, shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    emu, server = emulator
    # Sharing is what is shown: Redis must answer in time (see the four-worker test above).
    with fleet(kind, shared_redis, prefix, server, redis_timeout=2.0) as site:
        assert len(site.workers) == 2
        # A proof-of-work solution passes exactly once out of many posts on both workers.
        value = site.solution()
        passes_once_across_the_fleet(site, lambda: site.post_pow(value), "passed")

        # Every worker has seen the provider answer: each holds a closed snapshot (the worst
        # case for the race below).
        site.spread(lambda: site.post_token(emu.issue()), at_least=4)
        before = emu.calls
        emu.outage = Outage.HTTP_500
        # One post at a time, each on a fresh connection: at most one call is in flight when
        # the fleet's circuit opens, so the only extra calls are those of the other worker
        # granting one on its closed snapshot (younger than breaker_cache_ttl), whose reply
        # says open: threshold + (workers - 1) at most.
        # On a loaded machine the open period may end within the loop: each cool-down then
        # adds its one probe, counted from the circuit's record as it opened.
        first_open: tuple[str, int] | None = None
        for _ in range(4 * THRESHOLD):
            code, document = site.post_token(emu.issue())
            assert (code, document["outcome"]) == (200, "fallback")
            if first_open is None and breaker_record(shared_redis, prefix)[0] == "o":
                first_open = breaker_record(shared_redis, prefix)
        assert first_open is not None
        calls = emu.calls - before
        opening = calls - probes_since(shared_redis, prefix, first_open)
        assert THRESHOLD <= opening <= THRESHOLD + len(site.workers) - 1
        # Opened (read with a long reset: on a loaded machine RESET may have passed already).
        assert breaker_state(shared_redis, prefix, reset=GUARD_RESET) == State.OPEN
        # Every worker is told the circuit is open: one post at a time, on fresh connections,
        # until each worker has answered one. A worker still answering "closed" from its
        # snapshot (made no call since the outage, younger than breaker_cache_ttl) makes its
        # one call, and the reply to it says open: workers - 1 such calls at most (the margin
        # in docs/shared-state.md).
        opened = breaker_record(shared_redis, prefix)
        told = emu.calls
        answered: set[int] = set()
        for _ in range(60):
            code, document = site.post_token(emu.issue())
            assert code == 200
            answered.add(document["pid"])
            if answered >= site.workers:
                break
        assert answered >= site.workers, answered
        late = emu.calls - told - probes_since(shared_redis, prefix, opened)
        assert 0 <= late <= len(site.workers) - 1
        # Then every worker's circuit is open: all answer, none calls the provider, however
        # many posts arrive at once. (On a slow machine the open period may end meanwhile:
        # then each cool-down adds its one probe.)
        opened = breaker_record(shared_redis, prefix)
        told = emu.calls
        answers = site.spread(lambda: site.post_token(emu.issue()), at_least=8)
        assert {code for code, _ in answers} == {200}
        assert emu.calls - told == probes_since(shared_redis, prefix, opened)

        # A token let through in the outage passes exactly once across the fleet too.
        token = emu.issue()
        passes_once_across_the_fleet(site, lambda: site.post_token(token), "fallback")

        # Half-open: exactly one probe in the whole fleet (it fails: open again).
        poll(lambda: breaker_state(shared_redis, prefix) == State.HALF_OPEN, 3 * RESET, "half-open")
        before = emu.calls
        opened = breaker_record(shared_redis, prefix)
        answers = site.spread(lambda: site.post_token(emu.issue()), at_least=12)
        assert {code for code, _ in answers} == {200}
        probes = probes_since(shared_redis, prefix, opened)
        assert probes >= 1
        assert emu.calls - before == probes  # one call per cool-down, fleet-wide: 1 unless slow

        # The provider is back: the next probe closes the circuit for every worker.
        emu.outage = None
        poll(lambda: breaker_state(shared_redis, prefix) == State.HALF_OPEN, 3 * RESET, "half-open")
        answers = site.spread(lambda: site.post_token(emu.issue()), at_least=8)
        assert breaker_state(shared_redis, prefix) == State.CLOSED
        answers = site.spread(lambda: site.post_token(emu.issue()), at_least=4)
        assert outcomes(answers) == [(200, "passed")] * len(answers)
        assert "shared state" not in site.log(), site.log()


def pinned(site: Fleet, limit: int = 40) -> dict[int, httpx.Client]:
    """One kept-alive connection to each worker (a connection stays with its worker)."""
    clients: dict[int, httpx.Client] = {}
    for _ in range(limit):
        client = site.client()
        pid = client.get("/status").json()["pid"]
        if pid in clients:
            client.close()
        else:
            clients[pid] = client
        if len(clients) == site.size:
            return clients
    for client in clients.values():
        client.close()
    raise AssertionError(f"not every worker answered in {limit} connections")


def test_the_probe_lease_outlives_a_worker_killed_while_probing(
    shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    emu, server = emulator
    with fleet("uvicorn", shared_redis, prefix, server) as site:
        clients = pinned(site)
        try:
            (holder, holder_client), (other, other_client) = clients.items()
            emu.outage = Outage.HTTP_500
            for _ in range(THRESHOLD):
                holder_client.post("/login", data=emu.issue())
            assert breaker_state(shared_redis, prefix, reset=GUARD_RESET) == State.OPEN
            poll(lambda: breaker_state(shared_redis, prefix) == State.HALF_OPEN, 3 * RESET)
            # The holder's probe goes out and hangs; the holder dies with it.
            emu.outage = Outage.HANG
            calls = emu.calls
            token = emu.issue()

            def probe() -> None:
                with suppress(httpx.TransportError):
                    holder_client.post("/login", data=token)

            thread = threading.Thread(target=probe, daemon=True)
            thread.start()
            poll(lambda: emu.calls == calls + 1, 5, "the probe's call")
            os.kill(holder, signal.SIGKILL)
            thread.join(10)
            # The lease (provider timeout + 1 s) is the dead worker's still: no second probe.
            answer = other_client.post("/login", data=emu.issue())
            assert (answer.status_code, answer.json()["pid"]) == (200, other)
            assert emu.calls == calls + 1

            # Once it expires, exactly one more probe, from the worker that is left.
            def probed_again() -> bool:
                other_client.post("/login", data=emu.issue())
                return emu.calls > calls + 1

            poll(probed_again, 5, "a probe once the dead worker's lease expired")
            opened = breaker_record(shared_redis, prefix)
            for _ in range(4):
                assert other_client.post("/login", data=emu.issue()).status_code == 200
            assert emu.calls == calls + 2 + probes_since(shared_redis, prefix, opened)
        finally:
            for client in clients.values():
                client.close()


def timed(
    send: Callable[[], tuple[int, dict[str, Any]]],
) -> Callable[[], tuple[int, dict[str, Any]]]:
    """``send``, asserting it answers within REQUEST_BOUND and never with a 500."""

    def run() -> tuple[int, dict[str, Any]]:
        started = time.monotonic()
        code, document = send()
        elapsed = time.monotonic() - started
        assert elapsed < REQUEST_BOUND, f"answered in {elapsed:.2f}s"
        assert code != 500, document
        return code, document

    return run


def test_redis_killed_under_the_workers_then_restarted(
    own_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    # Changed with issue 15: during the outage only the breaker is answered in process; a
    # replay guard that cannot be asked is a 503 (captcha_unavailable, Retry-After), never a
    # worker's own "first".
    emu, server = emulator
    with fleet("uvicorn", own_redis, prefix, server) as site:
        value = site.solution()
        passes_once_across_the_fleet(site, lambda: site.post_pow(value), "passed")

        own_redis.kill()  # SIGKILL, mid-run: the data is gone with it
        # No 500, each answer within its bound, on both workers; the provider still judges
        # (the breaker is kept in process).
        answers = site.spread(timed(lambda: site.post_token(emu.issue())), at_least=12)
        assert outcomes(answers) == [(200, "passed")] * len(answers)
        # A proof-of-work solution cannot be checked against the fleet's memory: refused.
        # (Solved before the clock starts: solving is the client's time, not the answer's.)
        during = site.solution()
        answers = site.spread(timed(lambda: site.post_pow(during)), at_least=12)
        assert {code for code, _ in answers} == {503}, outcomes(answers)
        assert {d["error"] for _, d in answers} == {"captcha_unavailable"}
        # Nor can a fallback token: refused, on every worker, however often it is sent.
        emu.outage = Outage.HTTP_500
        token = emu.issue()
        answers = site.spread(timed(lambda: site.post_token(token)), at_least=8)
        assert {code for code, _ in answers} == {503}, outcomes(answers)
        emu.outage = None

        # Redis back on the same socket, empty: every worker resumes sharing on its own.
        own_redis.start()
        up: set[int] = set()

        def shared_again() -> bool:
            answer = site.status()
            if answer is not None:
                (up.discard if answer[1] else up.add)(answer[0])
            return up >= site.workers

        poll(shared_again, 10, "every worker sharing again")
        fresh = site.solution()
        passes_once_across_the_fleet(site, lambda: site.post_pow(fresh), "passed")
        # What a restart without persistence loses (SECURITY.md): the solution that passed
        # before it was remembered there only, so it passes once more, once fleet-wide.
        passes_once_across_the_fleet(site, lambda: site.post_pow(value), "passed")
        log = site.log()
        assert "shared state unavailable" in log
        assert "sharing resumed" in log


def test_an_outage_seen_by_host_a_opens_the_circuit_for_host_b_within_one_call(
    shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    emu, server = emulator
    # Two "hosts": two servers, each one process with its own in-process state, one Redis.
    with (
        fleet("uvicorn", shared_redis, prefix, server, workers=1, reset=GUARD_RESET) as a,
        fleet("uvicorn", shared_redis, prefix, server, workers=1, reset=GUARD_RESET) as b,
    ):
        assert a.workers.isdisjoint(b.workers)
        # B has just seen the provider answer: it holds a closed snapshot (the worst case).
        assert b.post_token(emu.issue())[1]["outcome"] == "passed"
        emu.outage = Outage.HTTP_500
        before = emu.calls
        for _ in range(THRESHOLD):
            assert a.post_token(emu.issue())[1]["outcome"] == "fallback"
        assert emu.calls - before == THRESHOLD
        assert breaker_state(shared_redis, prefix, reset=GUARD_RESET) == State.OPEN
        # B calls at most once more (its snapshot said closed; the reply says open), then not.
        assert b.post_token(emu.issue())[1]["outcome"] == "fallback"
        assert emu.calls - before <= THRESHOLD + 1
        after_one = emu.calls
        for _ in range(5):
            assert b.post_token(emu.issue())[1]["outcome"] == "fallback"
            assert a.post_token(emu.issue())[1]["outcome"] == "fallback"
        assert emu.calls == after_one


def test_a_host_with_no_snapshot_sees_the_open_circuit_before_calling(
    shared_redis: RedisServer, prefix: str, emulator: Any
) -> None:
    emu, server = emulator
    emu.outage = Outage.HTTP_500
    with fleet("uvicorn", shared_redis, prefix, server, workers=1, reset=GUARD_RESET) as a:
        for _ in range(THRESHOLD):
            a.post_token(emu.issue())
        assert breaker_state(shared_redis, prefix, reset=GUARD_RESET) == State.OPEN
        before = emu.calls
        # A host started now (or idle for longer than breaker_cache_ttl) asks Redis first.
        with fleet("uvicorn", shared_redis, prefix, server, workers=1, reset=GUARD_RESET) as b:
            for _ in range(3):
                assert b.post_token(emu.issue())[1]["outcome"] == "fallback"
        assert emu.calls == before


# The door's own wiring under a Redis outage.


def _asgi_post(path: str, body: bytes) -> tuple[dict[str, Any], Callable[[], Any], Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"fleet"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return scope, receive, (send, sent)


@pytest.mark.anyio
async def test_a_probe_cancelled_during_a_redis_outage_frees_the_local_probe(
    emulator: Any, tmp_path: Path
) -> None:
    """With Redis down the breaker is the in-process one; a probe whose call is cancelled
    (client gone, server shutting down, a middleware's timeout) must hand the probe back, or
    that worker never probes again until Redis returns: every request falls back for good."""
    emu, server = emulator
    dead = f"unix://{tmp_path / 'nothing-listens.sock'}"  # Redis down from the start
    door = fleet_app.build_asgi(
        redis=dead, prefix="fleetcancel", endpoint=endpoint(server), threshold=1, reset=0.2
    )

    async def post(token: dict[str, str]) -> list[dict[str, Any]]:
        scope, receive, (send, sent) = _asgi_post("/login", urlencode(token).encode())
        await door(scope, receive, send)
        return sent

    try:
        await _cancel_a_probe_then_probe_again(emu, door, post)
    finally:
        await door.aclose()


async def _cancel_a_probe_then_probe_again(emu: Any, door: Any, post: Any) -> None:
    breaker = door.gate.routes[0].provider.breaker
    emu.outage = Outage.HTTP_500
    await post(emu.issue())  # one failure: the in-process circuit opens
    assert breaker.state.value == State.OPEN
    deadline = time.monotonic() + 5
    while breaker.state.value != State.HALF_OPEN:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    emu.outage = Outage.HANG
    calls = emu.calls
    scope, receive, (send, _) = _asgi_post("/login", urlencode(emu.issue()).encode())
    task = asyncio.create_task(door(scope, receive, send))
    while emu.calls == calls:  # the probe's call is out
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    emu.outage = None
    calls = emu.calls
    sent = await post(emu.issue())
    assert emu.calls == calls + 1, "no probe: the cancelled one still holds the local probe"
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["outcome"] == "passed"
    assert breaker.state.value == State.CLOSED
