"""What shared state costs per operation, RedisState against MemoryState, in one run:

    python bench/state.py [--n 5000]

Starts its own redis-server (unix socket and 127.0.0.1 TCP, no persistence), then for each
backend and door (sync ``run``, async ``arun``) times every operation and the operations one
protected request needs: wall time per call (median and p99) and this process's CPU per call;
for Redis also the server's CPU per call and the round trips per request (``INFO
commandstats``). The failover wrapper is measured too, since that is what the doors use.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from captcha_guard._failover import FailoverState  # noqa: E402
from captcha_guard._memory import MemoryState  # noqa: E402
from captcha_guard._state import StateOp  # noqa: E402
from captcha_guard.redis import RedisState  # noqa: E402
from tests.redis_server import redis_server  # noqa: E402

ACQUIRE = StateOp("breaker_acquire", ("geetest", 5, 30.0))


def record(permit: Any) -> StateOp:
    return StateOp("breaker_record", ("geetest", 5, 30.0, permit, True))


class Counter:
    def __init__(self) -> None:
        self.k = 0

    def key(self) -> str:
        self.k += 1
        return f"lot-number-{self.k:032d}"


def workloads(counter: Counter) -> dict[str, Callable[[Any], Any]]:
    """Each takes a ``run`` callable (sync) and performs one unit of work."""

    def remember(run: Any) -> Any:
        return run(StateOp("remember", ("pow", counter.key(), 600)))

    def spend(run: Any) -> Any:
        return run(StateOp("spend", ("fallback", f"192.0.2.{counter.k % 250}", 10**9, 60)))

    def passing_request(run: Any) -> Any:
        permit = run(ACQUIRE)
        return run(record(permit))

    return {
        "remember (SET NX PX)": remember,
        "spend (budget script)": spend,
        "request: acquire + record ok": passing_request,
    }


def awork(counter: Counter) -> dict[str, Callable[[Any], Any]]:
    async def remember(arun: Any) -> Any:
        return await arun(StateOp("remember", ("pow", counter.key(), 600)))

    async def spend(arun: Any) -> Any:
        return await arun(StateOp("spend", ("fallback", f"192.0.2.{counter.k % 250}", 10**9, 60)))

    async def passing_request(arun: Any) -> Any:
        permit = await arun(ACQUIRE)
        return await arun(record(permit))

    async def overlapping_request(arun: Any) -> Any:
        permit = await arun(ACQUIRE)
        await asyncio.sleep(0)  # the provider call: the other requests acquire meanwhile
        return await arun(record(permit))

    return {
        "remember (SET NX PX)": remember,
        "spend (budget script)": spend,
        "request: acquire + record ok": passing_request,
        "overlapping": overlapping_request,
    }


def measure(fn: Callable[[], Any], n: int) -> tuple[float, float, float]:
    for _ in range(min(200, n)):
        fn()
    times = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / n
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)], cpu


async def ameasure(fn: Callable[[], Any], n: int) -> tuple[float, float, float]:
    for _ in range(min(200, n)):
        await fn()
    times = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / n
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)], cpu


class ServerCpu:
    def __init__(self, client: Any) -> None:
        self.client = client

    def read(self) -> tuple[float, int]:
        info = self.client.info("cpu")
        stats = self.client.info("commandstats")
        # Commands a script runs are counted too: count only what a client sends.
        sent = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_set")
        trips = sum(int(v["calls"]) for k, v in stats.items() if k in sent)
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), trips


@contextmanager
def tcp_redis() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="cg-bench-")
    argv = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(["redis-server", *argv, "--dir", directory], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


def server_note(server: ServerCpu | None, before: tuple[float, int] | None, per: int) -> str:
    if server is None or before is None:
        return ""
    cpu, trips = server.read()
    return f"{(cpu - before[0]) / per * 1e6:.1f}, {(trips - before[1]) / per:.2f}"


def row(label: str, backend: str, result: tuple[float, float, float], extra: str = "") -> None:
    median, p99, cpu = result
    print(
        f"| {label:<30} | {backend:<22} | {median * 1e6:8.1f} | {p99 * 1e6:8.1f} |"
        f" {cpu * 1e6:8.1f} | {extra:<20} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    n = parser.parse_args().n
    print(
        f"python {platform.python_version()}, redis-py {redis.__version__}, "
        f"{subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}, "  # noqa: E501
        f"{os.cpu_count()} CPUs, {platform.platform()}; n={n} per row"
    )
    print()
    print(
        "| operation                      | backend                | median µs |  p99 µs |"
        " CPU µs/op | server CPU µs, trips |"
    )
    print("| --- | --- | ---: | ---: | ---: | --- |")
    with redis_server() as unix, tcp_redis() as tcp_url:
        targets = [("unix socket", unix.url), ("TCP 127.0.0.1", tcp_url)]
        bench_sync(backends_for(targets), n)
        asyncio.run(bench_async(backends_for(targets), n))


def backends_for(targets: list[tuple[str, str]]) -> list[tuple[str, Any, Any]]:
    backends: list[tuple[str, Any, Any]] = [("MemoryState", MemoryState(), None)]
    for where, url in targets:
        state = RedisState.from_url(url, prefix="bench", timeout=1.0)
        admin = redis.Redis.from_url(url)
        backends.append((f"RedisState, {where}", state, admin))
        if where == "unix socket":
            backends.append(("Failover(Redis), unix", FailoverState(state, MemoryState()), admin))
    return backends


def bench_sync(backends: list[tuple[str, Any, Any]], n: int) -> None:
    for label, fn in workloads(Counter()).items():
        for name, backend, admin in backends:
            server = ServerCpu(admin) if admin else None
            before = server.read() if server else None
            result = measure(lambda fn=fn, b=backend: fn(b.run), n)
            row(label, f"{name} (run)", result, server_note(server, before, n + min(200, n)))


async def bench_async(backends: list[tuple[str, Any, Any]], n: int) -> None:
    work = awork(Counter())
    for label, fn in work.items():
        if label == "overlapping":
            continue
        for name, backend, admin in backends:
            server = ServerCpu(admin) if admin else None
            before = server.read() if server else None
            result = await ameasure(lambda fn=fn, b=backend: fn(b.arun), n)
            row(label, f"{name} (arun)", result, server_note(server, before, n + min(200, n)))
    # 16 requests at once per round, as a busy ASGI worker sees them.
    request = work["overlapping"]
    for name, backend, admin in backends:
        server = ServerCpu(admin) if admin else None
        before = server.read() if server else None
        rounds = max(1, n // 16)
        t0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            await asyncio.gather(*(request(backend.arun) for _ in range(16)))
        per = rounds * 16
        wall = (time.perf_counter() - t0) / per
        cpu = (time.process_time() - cpu0) / per
        note = server_note(server, before, per)
        row("request, 16 at once (per req)", f"{name} (arun)", (wall, wall, cpu), note)
    for _, backend, _ in backends:
        if hasattr(backend, "aclose"):
            await backend.aclose()


if __name__ == "__main__":
    main()
