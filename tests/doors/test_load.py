"""Load: 1 000 concurrent protected requests through uvicorn against the GeeTest emulator
served for real (in a process of its own, as a provider would be). Zero errors, every body
intact, memory that does not grow with the number of requests, and the pooled client reused
(connections to the provider at most the pool size)."""

from __future__ import annotations

import hashlib
import json
import resource
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from captcha_guard import CaptchaGuard, GeeTest, Rule
from captcha_guard._aio import POOL_SIZE
from captcha_guard.testing import GeeTestEmulator
from tests.emulator_process import EmulatorProcess, emulator_process
from tests.hardening_kit import raw_post
from tests.helpers import RecordingApp
from tests.servers import serve_asgi

CONCURRENCY = 1_000
WAVES = 2
#: Memory after the last wave may not exceed memory after the first by more than this.
GROWTH_LIMIT_MIB = 25.0


def rss_mib() -> float:
    """Resident memory now (not the peak): to see growth between waves."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, EmulatorProcess, RecordingApp]]:
    keys = GeeTestEmulator()  # the emulator process serves the same default id and key
    app = RecordingApp()
    with emulator_process("geetest", CONCURRENCY * WAVES) as upstream:
        # 1 000 calls queue for the pools' connections: on a busy 2-core machine the last wait
        # seconds. That wait is this test's own load, not a slow provider, so it may not turn
        # into fallbacks here: a timeout well above it.
        provider = GeeTest(keys.captcha_id, keys.captcha_key, endpoint=upstream.url, timeout=30)
        guard = CaptchaGuard(app, rules=[Rule("/login")], provider=provider)
        # backlog: all 1 000 connections may arrive before uvicorn accepts the first.
        with serve_asgi(guard, backlog=4096) as url:
            yield url, upstream, app


async def wave(url: str, solved: list[dict[str, str]]) -> tuple[list[Any], float]:
    bodies = [
        json.dumps({"user": f"user{n}", "note": "x" * (n % 300), "captcha": fields}).encode()
        for n, fields in enumerate(solved)
    ]
    results: list[Any] = [None] * len(bodies)
    headers = {"content-type": "application/json", "accept": "application/json"}
    started = time.monotonic()

    async def one(n: int) -> None:
        try:
            status, content = await raw_post(url, "/login", bodies[n], headers)
            results[n] = (status, json.loads(content), bodies[n])
        except Exception as exc:  # counted, not raised: the test reports them all
            results[n] = exc

    with anyio.fail_after(55):
        async with anyio.create_task_group() as group:
            for n in range(len(bodies)):
                group.start_soon(one, n)
    return results, time.monotonic() - started


def check(results: list[Any]) -> None:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"{len(errors)} errors, first: {errors[0]!r}"
    statuses = [r[0] for r in results]
    assert statuses.count(200) == len(results), {s: statuses.count(s) for s in set(statuses)}
    outcomes = [r[1]["outcome"] for r in results]
    assert outcomes.count("passed") == len(results), {o: outcomes.count(o) for o in set(outcomes)}
    for _, seen, body in results:
        assert seen["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.asyncio
async def test_a_thousand_concurrent_protected_requests(
    stack: tuple[str, EmulatorProcess, RecordingApp],
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, upstream, app = stack
    seconds: list[float] = []
    memory: list[float] = []
    connections: list[int] = []
    for n in range(WAVES):
        results, elapsed = await wave(url, upstream.fields[n * CONCURRENCY : (n + 1) * CONCURRENCY])
        check(results)
        seconds.append(elapsed)
        memory.append(rss_mib())
        connections.append(upstream.stats()["connections"])
    assert app.calls == WAVES * CONCURRENCY
    assert upstream.stats()["calls"] == WAVES * CONCURRENCY
    pool = POOL_SIZE
    # The pooled clients were reused: 1 000 calls over at most as many connections as the
    # pools hold. (Between waves, connections idle past httpx's keep-alive expiry of 5 s
    # are closed, so a later wave may open a few again.)
    assert connections[0] <= pool, connections
    assert memory[-1] - memory[0] < GROWTH_LIMIT_MIB, memory
    with capsys.disabled():
        print(
            f"\nload: {WAVES} x {CONCURRENCY} concurrent protected requests in "
            + " + ".join(f"{s:.1f} s" for s in seconds)
            + f", 0 errors; connections to the provider after each wave {connections} "
            + f"(pool {pool}); "
            + "RSS after each wave "
            + " / ".join(f"{m:.0f}" for m in memory)
            + f" MiB, peak {peak_rss_mib():.0f} MiB"
        )
