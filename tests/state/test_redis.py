"""RedisState against a real redis-server (unix socket, started by the tests), and the
failover to the in-process state when that server dies, pauses, or comes back empty."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from captcha_guard._breaker import Permit, State
from captcha_guard._events import StoreErrorEvent
from captcha_guard._failover import FailoverState, bind_state
from captcha_guard._memory import MemoryState
from captcha_guard._redis_lua import BREAKER, SPEND
from captcha_guard._state import StateFull, StateOp, StateUnavailable, Stored, Transition
from captcha_guard.redis import RedisState
from tests import ROOT
from tests.redis_server import RedisServer, redis_cluster


def op(name: str, *args: Any) -> StateOp:
    return StateOp(name, args)


def server_ms(server: RedisServer) -> int:
    with redis.Redis(unix_socket_path=server.socket) as client:
        seconds, micros = client.time()
        return int(seconds) * 1000 + int(micros) // 1000


def poll(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.005)


def run_workers(mode: str, server: RedisServer, prefix: str, n: int, *args: str) -> list[Any]:
    """Start ``n`` worker processes, release them at once, return their JSON answers."""
    start = os.path.join(server.directory, f"go-{uuid.uuid4().hex}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.state.redis_worker",
                mode,
                server.url,
                prefix,
                start,
                *args,
            ],
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        for _ in range(n)
    ]
    # Every worker has imported everything and connected before any is released.
    time.sleep(0)
    Path(start).touch()
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        outputs.append(json.loads(out))
    return outputs


# -- every operation atomic under concurrency -----------------------------------------------


def test_remember_is_exactly_once_across_threads(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, timeout=2.0)
    firsts: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        mine = [k for k in map(str, range(300)) if state.run(op("remember", "pow", k, 60))]
        with lock:
            firsts.update(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert firsts == Counter(str(k) for k in range(300))


@pytest.mark.asyncio
async def test_remember_is_exactly_once_across_tasks(
    shared_redis: RedisServer, prefix: str
) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, timeout=2.0)
    answers = await asyncio.gather(
        *(state.arun(op("remember", "pow", str(k % 50), 60)) for k in range(400))
    )
    assert sum(map(bool, answers)) == 50
    await state.aclose()


def test_remember_is_exactly_once_across_processes(shared_redis: RedisServer, prefix: str) -> None:
    outputs = run_workers("remember", shared_redis, prefix, 3, "200")
    firsts = Counter(k for out in outputs for k in out["first"])
    assert firsts == Counter(range(200))  # each solution passes once, fleet-wide


def test_remember_expires_on_server_time(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, clock_skew=0)
    assert state.run(op("remember", "fallback", "lot", 0.05))
    assert not state.run(op("remember", "fallback", "lot", 0.05))
    poll(lambda: state.run(op("remember", "fallback", "lot", 0.05)))


def test_replay_keys_live_their_ttl_plus_the_tolerated_skew_on_the_servers_clock(
    shared_redis: RedisServer, prefix: str
) -> None:
    # A host whose clock lags by up to clock_skew still finds what the others remembered
    # until the challenge's expiry by their clocks: a solution never passes twice for skew.
    state = RedisState.from_url(shared_redis.url, prefix=prefix, clock_skew=45)
    assert state.run(op("remember", "pow", "k", 60))
    with redis.Redis(unix_socket_path=shared_redis.socket) as admin:
        seconds, micros = admin.time()
        now_ms = seconds * 1000 + micros // 1000
        ((_, expires),) = admin.zrange(f"{{{prefix}:replay:pow}}", 0, -1, withscores=True)
    assert 105_000 - 1_000 <= expires - now_ms <= 105_000
    with pytest.raises(ValueError):
        RedisState.from_url(shared_redis.url, prefix=prefix, clock_skew=-1)


def test_each_namespace_has_its_own_capacity_in_redis(
    shared_redis: RedisServer, prefix: str
) -> None:
    state = RedisState.from_url(
        shared_redis.url, prefix=prefix, max_entries=2, capacities={"pow:1": 3}
    )
    assert state.run(op("remember", "pow", "a", 60)) == Stored(True, 0.5)
    assert state.run(op("remember", "pow", "b", 60)) == Stored(True, 1.0)
    assert state.run(op("remember", "pow", "a", 60)) == Stored(False, 1.0)  # still a replay
    with pytest.raises(StateFull):
        state.run(op("remember", "pow", "c", 60))  # full: refused, nothing forgotten
    # A full cheap level leaves the dearer ones their room.
    assert [bool(state.run(op("remember", "pow:1", k, 60))) for k in "abc"] == [True] * 3
    assert state.run(op("remember", "fallback", "a", 60))


def test_a_missing_revocation_generation_honours_nothing(
    own_redis: RedisServer, prefix: str
) -> None:
    state = RedisState.from_url(own_redis.url, prefix=prefix)

    def tenths() -> int:  # the server's clock, as the counter script reads it
        with redis.Redis(unix_socket_path=own_redis.socket) as admin:
            seconds, micros = admin.time()
        return (seconds - 1_704_067_200) * 10 + micros // 100_000

    first = state.run(op("read_counter", "clearance", "generation"))
    assert first >= tenths() - 1 > 0  # starts at the server's clock, never at 0
    assert state.run(op("bump_counter", "clearance", "generation")) == first + 1
    poll(lambda: tenths() > first + 1)  # a revocation rate under ten a second
    own_redis.kill()
    own_redis.start()  # back without its data
    state = RedisState.from_url(own_redis.url, prefix=prefix)
    again = state.run(op("read_counter", "clearance", "generation"))
    assert again > first + 1  # no cookie issued before the loss matches it


def test_spend_counts_exactly_under_threads_and_processes(
    shared_redis: RedisServer, prefix: str
) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, timeout=2.0)
    results: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [state.run(op("spend", "fallback", "client", 37, 86_400)) for _ in range(20)]
        with lock:
            results.extend(mine)

    before = server_ms(shared_redis) // 86_400_000
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outputs = run_workers("spend", shared_redis, prefix, 2, "20", "50")
    if server_ms(shared_redis) // 86_400_000 != before:
        pytest.fail("the test ran across a UTC midnight (a budget window boundary); run again")
    assert results.count(True) == 37
    # The processes share the same bucket: 37 already spent, 50 allowed in all.
    assert sum(out["within"] for out in outputs) == 50 - 37


@pytest.mark.asyncio
async def test_spend_counts_exactly_under_tasks(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, timeout=2.0)
    answers = await asyncio.gather(
        *(state.arun(op("spend", "fallback", f"c{k % 3}", 10, 86_400)) for k in range(90))
    )
    assert sum(answers) == 30
    await state.aclose()


def test_spend_window_rolls_over_on_server_time(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix)
    assert state.run(op("spend", "fallback", "c", 1, 0.05))
    # The next window opens on the server's clock; the same client may spend again then.
    poll(lambda: state.run(op("spend", "fallback", "c", 1, 0.05)))


# -- the breaker, fleet-wide ----------------------------------------------------------------


def test_breaker_walks_the_transition_table(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix)
    name, args = "geetest", (2, 0.2)
    first = state.run(op("breaker_acquire", name, *args))
    assert first == Permit(probe=False, generation=first.generation)
    assert state.run(op("breaker_record", name, *args, first, False)) is None
    second = state.run(op("breaker_acquire", name, *args))
    opened = state.run(op("breaker_record", name, *args, second, False))
    assert opened == Transition(State.CLOSED, State.OPEN)
    assert state.run(op("breaker_acquire", name, *args)) is None
    assert state.run(op("breaker_state", name, *args)) is State.OPEN
    poll(lambda: state.run(op("breaker_state", name, *args)) is State.HALF_OPEN)
    probe = state.run(op("breaker_acquire", name, *args))
    assert probe is not None and probe.probe
    assert state.run(op("breaker_acquire", name, *args)) is None  # one probe only
    # A late result from before the opening counts for nothing.
    assert state.run(op("breaker_record", name, *args, first, True)) is None
    closed = state.run(op("breaker_record", name, *args, probe, True))
    assert closed == Transition(State.HALF_OPEN, State.CLOSED)
    assert state.run(op("breaker_state", name, *args)) is State.CLOSED


def test_a_snapshots_reopening_deadline_can_only_end_early() -> None:
    # The script reads the server's clock in whole milliseconds, so "200 ms left" may be up to
    # 1 ms less; counted from ``sent`` (before the server read its clock), a deadline 1 ms
    # shorter ends no later than the server's half-open. (CI once caught the 1 ms.)
    state = RedisState.from_url("redis://127.0.0.1:9", prefix="unused")  # no I/O here
    state._remember_snapshot("p", "o", 7, 200, 100.0)
    assert state._snapshots["p"].open_until <= 100.0 + 0.199
    state._remember_snapshot("p", "h", 8, 0, 100.5)  # a reply saying half-open: ask the server
    assert "p" not in state._snapshots


def test_breaker_failed_probe_reopens_and_release_frees_the_probe(
    shared_redis: RedisServer, prefix: str
) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix)
    args = ("p", 1, 0.05)
    state.run(op("breaker_record", *args, state.run(op("breaker_acquire", *args)), False))
    poll(lambda: state.run(op("breaker_state", *args)) is State.HALF_OPEN)
    probe = state.run(op("breaker_acquire", *args))
    assert probe.probe
    state.run(op("breaker_release", "p", probe))
    again = state.run(op("breaker_acquire", *args))
    assert again is not None and again.probe and again.generation > probe.generation
    # The released probe's late answer is not the probe's answer any more.
    assert state.run(op("breaker_record", *args, probe, True)) is None
    assert state.run(op("breaker_record", *args, again, False)) == Transition(
        State.HALF_OPEN, State.OPEN
    )


def test_a_success_resets_the_fleets_consecutive_failures(
    shared_redis: RedisServer, prefix: str
) -> None:
    one = RedisState.from_url(shared_redis.url, prefix=prefix)
    two = RedisState.from_url(shared_redis.url, prefix=prefix)
    args = ("p", 3, 60.0)
    for _ in range(2):
        one.run(op("breaker_record", *args, one.run(op("breaker_acquire", *args)), False))
    two.run(op("breaker_record", *args, two.run(op("breaker_acquire", *args)), True))
    for _ in range(2):
        one.run(op("breaker_record", *args, one.run(op("breaker_acquire", *args)), False))
    assert two.run(op("breaker_state", *args)) is State.CLOSED
    transition = one.run(op("breaker_record", *args, one.run(op("breaker_acquire", *args)), False))
    assert transition == Transition(State.CLOSED, State.OPEN)


def test_failing_provider_is_called_threshold_plus_margin_times_across_processes(
    shared_redis: RedisServer, prefix: str
) -> None:
    threshold, workers = 5, 4
    outputs = run_workers("failing", shared_redis, prefix, workers, str(threshold))
    calls = sum(out["calls"] for out in outputs)
    # Each worker calls sequentially, so at the opening at most one call per other worker is
    # in flight, and a worker's next reply after that says open (RedisState's docstring):
    assert threshold <= calls <= threshold + workers - 1
    # Every worker stopped because its breaker said no: the circuit is open for all.
    probe = RedisState.from_url(shared_redis.url, prefix=prefix)
    assert probe.run(op("breaker_state", "p", threshold, 60.0)) is State.OPEN


def test_an_outage_seen_by_one_host_opens_the_other_within_one_call(
    shared_redis: RedisServer, prefix: str
) -> None:
    seer = RedisState.from_url(shared_redis.url, prefix=prefix)
    other = RedisState.from_url(shared_redis.url, prefix=prefix)
    args = ("p", 3, 60.0)
    # The other host has a fresh closed snapshot: its next acquire is answered locally.
    other.run(op("breaker_record", *args, other.run(op("breaker_acquire", *args)), True))
    for _ in range(3):
        seer.run(op("breaker_record", *args, seer.run(op("breaker_acquire", *args)), False))
    late = other.run(op("breaker_acquire", *args))
    assert late is not None  # the one call the snapshot allows...
    assert other.run(op("breaker_record", *args, late, False)) is None  # ...counts for nothing
    assert other.run(op("breaker_acquire", *args)) is None  # and then it is open here too


def test_local_permits_are_bounded_by_outstanding_count(
    shared_redis: RedisServer, prefix: str
) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, breaker_cache_permits=3)
    args = ("p", 5, 30.0)
    with redis.Redis(unix_socket_path=shared_redis.socket) as admin:

        def trips() -> int:
            return int(admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))

        before = trips()
        held = [state.run(op("breaker_acquire", *args)) for _ in range(5)]
        # The first asks (no snapshot yet); two more come from its reply (three outstanding);
        # the fourth and fifth must ask again.
        assert trips() - before == 3
        for permit in held:
            state.run(op("breaker_record", *args, permit, True))
        assert trips() - before == 8
        before = trips()
        state.run(op("breaker_release", "p", state.run(op("breaker_acquire", *args))))
        assert trips() == before  # handed back unused: no round trip at all


def test_after_the_fleet_opens_a_process_starts_at_most_its_local_permits(
    shared_redis: RedisServer, prefix: str
) -> None:
    late = RedisState.from_url(shared_redis.url, prefix=prefix, breaker_cache_permits=3)
    opener = RedisState.from_url(shared_redis.url, prefix=prefix)
    args = ("p", 2, 60.0)
    late.run(op("breaker_record", *args, late.run(op("breaker_acquire", *args)), True))
    for _ in range(2):
        opener.run(op("breaker_record", *args, opener.run(op("breaker_acquire", *args)), False))
    granted = [late.run(op("breaker_acquire", *args)) for _ in range(10)]
    # The documented margin: breaker_cache_permits calls, then it asks and hears "open".
    assert sum(p is not None for p in granted) == 3
    assert granted[3:] == [None] * 7


def test_exactly_one_probe_fleet_wide(shared_redis: RedisServer, prefix: str) -> None:
    opener = RedisState.from_url(shared_redis.url, prefix=prefix)
    opener.run(
        op("breaker_record", "p", 1, 0.2, opener.run(op("breaker_acquire", "p", 1, 0.2)), False)
    )
    poll(lambda: opener.run(op("breaker_state", "p", 1, 0.2)) is State.HALF_OPEN)
    outputs = run_workers("probe", shared_redis, prefix, 4, "0.2", "30")
    states = [RedisState.from_url(shared_redis.url, prefix=prefix) for _ in range(4)]
    barrier = threading.Barrier(len(states))
    probes: list[bool] = []

    def race(state: RedisState) -> None:
        barrier.wait()
        permit = state.run(op("breaker_acquire", "p", 1, 0.2, 30.0))
        probes.append(bool(permit and permit.probe))

    threads = [threading.Thread(target=race, args=(s,)) for s in states]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(out["probe"] for out in outputs) + sum(probes) == 1


def test_probe_lease_expires_when_its_holder_dies(shared_redis: RedisServer, prefix: str) -> None:
    opener = RedisState.from_url(shared_redis.url, prefix=prefix)
    opener.run(
        op("breaker_record", "p", 1, 0.05, opener.run(op("breaker_acquire", "p", 1, 0.05)), False)
    )
    poll(lambda: opener.run(op("breaker_state", "p", 1, 0.05)) is State.HALF_OPEN)
    start = os.path.join(shared_redis.directory, f"go-{uuid.uuid4().hex}")
    Path(start).touch()
    argv = ["probe", shared_redis.url, prefix, start, "0.05", "0.5", "hold"]
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.state.redis_worker", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert holder.stdout is not None
    got = json.loads(holder.stdout.readline())
    assert got["probe"]
    holder.kill()  # the prober dies holding the lease
    holder.wait(10)
    other = RedisState.from_url(shared_redis.url, prefix=prefix)
    refused = 0
    deadline = time.monotonic() + 10
    while other.run(op("breaker_acquire", "p", 1, 0.05, 0.5)) is None:
        refused += 1
        assert time.monotonic() < deadline, "the dead prober's lease never expired"
        time.sleep(0.01)
    # Granted again, and not before the lease ran out by the server's clock.
    assert server_ms(shared_redis) >= got["before_ms"] + 500
    assert refused > 0


def test_passing_path_costs_one_round_trip(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix)
    args = ("p", 5, 30.0)
    state.run(op("breaker_record", *args, state.run(op("breaker_acquire", *args)), True))
    with redis.Redis(unix_socket_path=shared_redis.socket) as admin:
        before = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        for _ in range(50):
            permit = state.run(op("breaker_acquire", *args))
            state.run(op("breaker_record", *args, permit, True))
        after = admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    # Other tests may share the server; this test's prefix is alone in using it now, but allow
    # for nothing: the 50 requests took 50 round trips plus at most the stale-snapshot ones.
    assert 50 <= after - before <= 52


# -- scripts, prefixes, clients ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_scripts_reload_after_script_flush(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, breaker_cache_permits=0)
    args = ("p", 5, 30.0)
    assert state.run(op("breaker_acquire", *args)) is not None
    with redis.Redis(unix_socket_path=shared_redis.socket) as admin:
        admin.script_flush()
        assert state.run(op("breaker_acquire", *args)) is not None
        assert state.run(op("spend", "fallback", "c", 5, 60))
        admin.script_flush()
        assert await state.arun(op("breaker_acquire", *args)) is not None
        assert await state.arun(op("spend", "fallback", "c", 5, 60))
        # The EVAL that answered NOSCRIPT also cached the script again.
        assert all(admin.script_exists(BREAKER.sha, SPEND.sha))
    await state.aclose()


def test_two_prefixes_share_nothing(shared_redis: RedisServer, prefix: str) -> None:
    a = RedisState.from_url(shared_redis.url, prefix=prefix + "a")
    b = RedisState.from_url(shared_redis.url, prefix=prefix + "b")
    assert a.run(op("remember", "pow", "k", 60)) and b.run(op("remember", "pow", "k", 60))
    assert a.run(op("spend", "fallback", "c", 1, 86_400))
    assert b.run(op("spend", "fallback", "c", 1, 86_400))
    a.run(op("breaker_record", "p", 1, 60.0, a.run(op("breaker_acquire", "p", 1, 60.0)), False))
    assert a.run(op("breaker_state", "p", 1, 60.0)) is State.OPEN
    assert b.run(op("breaker_state", "p", 1, 60.0)) is State.CLOSED
    with redis.Redis(unix_socket_path=shared_redis.socket) as admin:
        keys = [k.decode() for k in admin.scan_iter(match=f"{{{prefix}*")]
    assert keys and all(k.startswith((f"{{{prefix}a:", f"{{{prefix}b:")) for k in keys)
    # Every key has a TTL, and no key holds the client's address or token as such.
    with redis.Redis(unix_socket_path=shared_redis.socket) as admin:
        assert all(admin.pttl(k) > 0 for k in keys)
    assert not any(k.endswith(":k}") or k.endswith(":c}") for k in keys)


def test_namespaces_share_nothing(shared_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix)
    assert state.run(op("remember", "pow", "k", 60))
    assert state.run(op("remember", "fallback", "k", 60))


def test_wrong_client_kind_is_a_type_error(shared_redis: RedisServer) -> None:
    sync = RedisState(redis.Redis(unix_socket_path=shared_redis.socket))
    asynchronous = RedisState(aredis.Redis(unix_socket_path=shared_redis.socket))
    with pytest.raises(TypeError, match="block the event loop"):
        sync.for_asgi()
    with pytest.raises(TypeError, match="WSGI needs a sync"):
        asynchronous.for_wsgi()
    with pytest.raises(TypeError):
        bind_state(sync, door="asgi")
    with pytest.raises(TypeError):
        bind_state(asynchronous, door="wsgi")
    with pytest.raises(TypeError):
        RedisState("redis://localhost")
    with pytest.raises(TypeError):
        asynchronous.run(op("remember", "pow", "k", 1))
    assert sync.for_wsgi() is sync and asynchronous.for_asgi() is asynchronous
    both = RedisState.from_url(shared_redis.url)
    assert both.for_asgi() is both.for_wsgi() is both
    assert isinstance(bind_state(both, door="asgi"), FailoverState)


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(ValueError):
        RedisState.from_url("http://localhost")
    with pytest.raises(ValueError):
        RedisState.from_url("redis://localhost", prefix="a:b")
    with pytest.raises(ValueError):
        RedisState.from_url("redis://localhost", timeout=0)


def test_user_built_clients_are_used_with_our_timeout(own_redis: RedisServer, prefix: str) -> None:
    # Built with redis-py's defaults (5 s socket timeouts, retries with back-off).
    state = RedisState(redis.Redis(unix_socket_path=own_redis.socket), prefix=prefix)
    assert state.run(op("remember", "pow", "k", 60))
    own_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StateUnavailable) as caught:
            state.run(op("remember", "pow", "k2", 60))
        assert time.monotonic() - started < 0.2 * 2 + 0.3
        assert caught.value.kind == "timeout"
    finally:
        own_redis.resume()
    assert not state.run(op("remember", "pow", "k", 60))


@pytest.mark.asyncio
async def test_user_built_async_client_bounded_by_timeout(
    own_redis: RedisServer, prefix: str
) -> None:
    state = RedisState(aredis.Redis(unix_socket_path=own_redis.socket), prefix=prefix)
    assert await state.arun(op("remember", "pow", "k", 60))
    own_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StateUnavailable):
            await state.arun(op("breaker_acquire", "p", 5, 30.0))
        assert time.monotonic() - started < 0.2 + 0.3
    finally:
        own_redis.resume()
    assert not await state.arun(op("remember", "pow", "k", 60))
    await state.aclose()


def test_out_of_memory_is_state_full_not_forgetting(own_redis: RedisServer, prefix: str) -> None:
    state = RedisState.from_url(own_redis.url, prefix=prefix)
    with redis.Redis(unix_socket_path=own_redis.socket) as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
        with pytest.raises(StateFull):
            state.run(op("remember", "pow", "k", 60))
        with pytest.raises(StateFull):
            state.run(op("spend", "fallback", "c", 5, 60))


# -- failover ---------------------------------------------------------------------------------


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "captcha_guard"]


def test_redis_killed_mid_run_then_restarted(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[StoreErrorEvent] = []
    primary = RedisState.from_url(own_redis.url, prefix=prefix, timeout=0.2)
    state = FailoverState(primary, MemoryState(), backoff=0.05, on_error=events.append)
    other_host = RedisState.from_url(own_redis.url, prefix=prefix)
    assert state.run(op("remember", "fallback", "before", 600))
    own_redis.kill()
    started = time.monotonic()
    with pytest.raises(StateUnavailable):  # refused, in time: never "first" from this memory
        state.run(op("remember", "fallback", "during", 600))
    assert time.monotonic() - started < 0.2 * 2 + 0.3
    assert state.outage
    for question in (op("remember", "fallback", "during", 600), op("spend", "b", "c", 9, 60)):
        for _ in range(10):
            with pytest.raises(StateUnavailable):
                state.run(question)
    assert state.run(op("breaker_acquire", "p", 5, 30.0)) is not None  # only the breaker
    assert len(errors_logged(caplog)) == 1  # once at the start of the outage
    assert events and all(e.error in ("connection", "timeout") for e in events)
    assert {e.store for e in events} <= {"replay", "fallback_budget", "breaker"}

    own_redis.start()  # back, and empty (no persistence)

    def shared() -> bool:
        try:
            return bool(state.run(op("remember", "fallback", f"p-{time.monotonic()}", 600)))
        except StateUnavailable:
            return False

    poll(lambda: shared() and not state.outage)
    # Sharing resumed: what this worker remembers now, the other host sees.
    assert state.run(op("remember", "fallback", "after", 600))
    assert not other_host.run(op("remember", "fallback", "after", 600))
    assert len(errors_logged(caplog)) == 1


def test_redis_killed_with_the_per_process_opt_in(own_redis: RedisServer, prefix: str) -> None:
    primary = RedisState.from_url(
        own_redis.url, prefix=prefix, timeout=0.2, in_outage="per_process"
    )
    state = FailoverState(primary, MemoryState(), backoff=0.05)
    own_redis.kill()
    assert state.run(op("remember", "fallback", "during", 600))  # answered in process
    for _ in range(5):
        assert not state.run(op("remember", "fallback", "during", 600))  # once per worker
    own_redis.start()  # back, and empty (no persistence)

    def shared() -> bool:
        return bool(state.run(op("remember", "fallback", f"p-{time.monotonic()}", 600)))

    poll(lambda: shared() and not state.outage)
    # Let through during the outage: refused here even though the new Redis never saw it.
    assert not state.run(op("remember", "fallback", "during", 600))
    with pytest.raises(ValueError):
        RedisState.from_url(own_redis.url, in_outage="allow")


@pytest.mark.asyncio
async def test_redis_down_from_the_start_async(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis.kill()
    state = bind_state(RedisState.from_url(own_redis.url, prefix=prefix), door="asgi")
    assert isinstance(state, FailoverState)
    started = time.monotonic()
    with pytest.raises(StateUnavailable):
        await state.arun(op("remember", "pow", "k", 60))
    assert time.monotonic() - started < 0.5
    with pytest.raises(StateUnavailable):
        await state.arun(op("spend", "fallback", "c", 1, 60))
    permit = await state.arun(op("breaker_acquire", "p", 1, 60.0))
    assert permit is not None
    transition = await state.arun(op("breaker_record", "p", 1, 60.0, permit, False))
    assert transition == Transition(State.CLOSED, State.OPEN)  # the local breaker
    assert await state.arun(op("breaker_acquire", "p", 1, 60.0)) is None
    assert len(errors_logged(caplog)) == 1
    own_redis.start()
    fresh = RedisState.from_url(own_redis.url, prefix=prefix)

    async def shared() -> bool:
        try:
            if not await state.arun(op("remember", "pow", f"x{time.monotonic()}", 60)):
                return False
        except StateUnavailable:
            return False
        return not state.outage

    deadline = time.monotonic() + 10
    while not await shared():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert await state.arun(op("remember", "pow", "shared", 60))
    assert not await fresh.arun(op("remember", "pow", "shared", 60))
    await fresh.aclose()
    await state.aclose()


@pytest.mark.parametrize("door", ["wsgi", "asgi"])
def test_paused_server_is_bounded_by_timeout(
    own_redis: RedisServer, prefix: str, door: str
) -> None:
    shared = RedisState.from_url(own_redis.url, prefix=prefix, timeout=0.2)
    state = bind_state(shared, door="wsgi" if door == "wsgi" else "asgi")
    assert isinstance(state, FailoverState)
    assert state.run(op("remember", "pow", "k", 60))
    own_redis.pause()
    try:
        for name, args in [
            ("remember", ("pow", "k2", 60)),
            ("breaker_state", ("p", 5, 30.0)),
        ]:
            started = time.monotonic()
            try:
                if door == "wsgi":
                    state.run(op(name, *args))
                else:
                    asyncio.run(state.arun(op(name, *args)))
            except StateUnavailable:
                assert name == "remember"  # a security question is refused, never answered
            assert time.monotonic() - started < 0.2 * 2 + 0.3
        assert state.outage
    finally:
        own_redis.resume()


@pytest.mark.asyncio
async def test_works_as_the_least_privileged_acl_user_the_readme_gives(
    shared_redis: RedisServer, prefix: str
) -> None:
    with redis.Redis(unix_socket_path=shared_redis.socket) as admin:
        rules = ["+set", "+get", "+incr", "+evalsha", "+eval", "+hmget", "+hset", "+hincrby"]
        rules += ["+time", "+pexpire", "+pexpireat", "+pttl", "+zadd", "+zscore", "+zcount"]
        rules += ["+zremrangebyscore"]
        admin.acl_setuser(
            "captcha",
            enabled=True,
            passwords=["+pw-for-tests"],
            keys=[f"{{{prefix}:*"],
            commands=["-@all", *rules],
            reset_channels=True,
        )
    url = f"unix://captcha:pw-for-tests@{shared_redis.socket}"
    state = RedisState.from_url(url, prefix=prefix, breaker_cache_permits=0)
    other = RedisState.from_url(url, prefix=prefix + "x")
    with pytest.raises(StateUnavailable):  # another prefix is out of this user's reach
        other.run(op("remember", "pow", "k", 60))
    assert state.run(op("remember", "pow", "k", 60))
    assert await state.arun(op("spend", "fallback", "c", 5, 60))
    assert state.run(op("bump_counter", "clearance", "generation"))
    args = ("p", 1, 30.0)
    permit = await state.arun(op("breaker_acquire", *args))
    assert state.run(op("breaker_record", *args, permit, False)) == Transition(
        State.CLOSED, State.OPEN
    )
    await state.aclose()


# -- Redis Cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with redis_cluster() as ports:
        yield ports


def test_every_operation_works_on_a_redis_cluster(cluster_ports: list[int], prefix: str) -> None:
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0], socket_timeout=0.2)
    state = RedisState(client, prefix=prefix, breaker_cache_permits=0)
    # Keys land on different slots (and nodes); each operation touches exactly one.
    for k in range(20):
        assert state.run(op("remember", "pow", f"k{k}", 60))
        assert not state.run(op("remember", "pow", f"k{k}", 60))
        assert state.run(op("spend", "fallback", f"c{k}", 1, 86_400))
        assert not state.run(op("spend", "fallback", f"c{k}", 1, 86_400))
    for name in ("geetest", "turnstile", "aliyun"):
        permit = state.run(op("breaker_acquire", name, 1, 30.0))
        assert state.run(op("breaker_record", name, 1, 30.0, permit, False)) == Transition(
            State.CLOSED, State.OPEN
        )
    slots = {client.keyslot(k) for k in client.scan_iter(match=f"{{{prefix}:*")}
    assert len(slots) > 3
    client.close()


@pytest.mark.asyncio
async def test_every_operation_works_on_a_redis_cluster_async(
    cluster_ports: list[int], prefix: str
) -> None:
    from redis.asyncio.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=cluster_ports[1])
    state = RedisState(client, prefix=prefix, breaker_cache_permits=0).for_asgi()
    answers = await asyncio.gather(
        *(state.arun(op("remember", "pow", f"k{k % 10}", 60)) for k in range(40))
    )
    assert sum(map(bool, answers)) == 10
    permit = await state.arun(op("breaker_acquire", "p", 1, 30.0))
    assert permit is not None
    assert await state.arun(op("breaker_record", "p", 1, 30.0, permit, False)) == Transition(
        State.CLOSED, State.OPEN
    )
    await client.aclose()


@pytest.mark.asyncio
async def test_exactly_one_opening_among_concurrent_failures_tasks_and_threads(
    shared_redis: RedisServer, prefix: str
) -> None:
    state = RedisState.from_url(shared_redis.url, prefix=prefix, timeout=2.0)
    args = ("tasks", 5, 60.0)
    permits = [await state.arun(op("breaker_acquire", *args)) for _ in range(30)]
    transitions = await asyncio.gather(
        *(state.arun(op("breaker_record", *args, p, False)) for p in permits)
    )
    assert [t for t in transitions if t] == [Transition(State.CLOSED, State.OPEN)]
    await state.aclose()

    sync = RedisState.from_url(shared_redis.url, prefix=prefix, timeout=2.0)
    args = ("threads", 5, 60.0)
    held = [sync.run(op("breaker_acquire", *args)) for _ in range(30)]
    seen: list[Any] = []
    barrier = threading.Barrier(6)

    def fail(mine: list[Permit]) -> None:
        barrier.wait()
        seen.extend(sync.run(op("breaker_record", *args, p, False)) for p in mine)

    threads = [threading.Thread(target=fail, args=(held[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [t for t in seen if t] == [Transition(State.CLOSED, State.OPEN)]
