"""The in-process state (MemoryState) and the failover wrapper's own logic, on fake clocks.

The failover's behaviour against a real Redis that dies, pauses and comes back is in
tests/state/test_redis.py; here a primary that fails on command checks the bookkeeping exactly:
log lines, back-off, the one retrier, events, where permits go back to.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from captcha_guard._breaker import CircuitBreaker, Permit, State
from captcha_guard._events import StoreErrorEvent
from captcha_guard._failover import FailoverState, bind_state
from captcha_guard._memory import MemoryState
from captcha_guard._state import (
    StateBusy,
    StateFull,
    StateOp,
    StateUnavailable,
    Stored,
    Transition,
)
from tests.helpers import FakeClock


def op(name: str, *args: Any) -> StateOp:
    return StateOp(name, args)


# -- MemoryState ------------------------------------------------------------------------------


def test_memory_breaker_is_the_circuit_breaker_with_transitions() -> None:
    clock = FakeClock()
    state = MemoryState(clock=clock)
    reference = CircuitBreaker(2, 30.0, clock=clock)
    args = ("geetest", 2, 30.0)
    first = state.run(op("breaker_acquire", *args))
    assert first == reference.acquire()
    assert state.run(op("breaker_record", *args, first, False)) is None
    second = state.run(op("breaker_acquire", *args))
    assert state.run(op("breaker_record", *args, second, False)) == Transition(
        State.CLOSED, State.OPEN
    )
    assert state.run(op("breaker_acquire", *args)) is None
    clock.advance(30)
    assert state.run(op("breaker_state", *args)) is State.HALF_OPEN
    probe = state.run(op("breaker_acquire", *args))
    assert probe.probe and state.run(op("breaker_acquire", *args)) is None
    state.run(op("breaker_release", "geetest", probe))
    probe = state.run(op("breaker_acquire", *args))
    assert state.run(op("breaker_record", *args, first, True)) is None  # an older generation
    assert state.run(op("breaker_record", *args, probe, True)) == Transition(
        State.HALF_OPEN, State.CLOSED
    )


def test_memory_breakers_are_per_name() -> None:
    state = MemoryState()
    permit = state.run(op("breaker_acquire", "a", 1, 30.0))
    state.run(op("breaker_record", "a", 1, 30.0, permit, False))
    assert state.run(op("breaker_state", "a", 1, 30.0)) is State.OPEN
    assert state.run(op("breaker_state", "b", 1, 30.0)) is State.CLOSED


def test_memory_state_can_use_a_providers_own_breaker() -> None:
    state = MemoryState()
    own = CircuitBreaker(1, 30.0)
    state.bind_breaker("geetest", own)
    permit = state.run(op("breaker_acquire", "geetest", 1, 30.0))
    state.run(op("breaker_record", "geetest", 1, 30.0, permit, False))
    assert own.state is State.OPEN  # the provider's object tells the truth
    with pytest.raises(TypeError):
        state.bind_breaker("x", object())  # type: ignore[arg-type]


def test_memory_remember_expires_and_refuses_rather_than_forgets() -> None:
    clock = FakeClock()
    state = MemoryState(max_entries=2, clock=clock)
    assert state.run(op("remember", "pow", "a", 10))
    assert not state.run(op("remember", "pow", "a", 10))
    assert state.run(op("remember", "pow", "b", 20))
    with pytest.raises(StateFull):
        state.run(op("remember", "pow", "c", 10))
    assert state.run(op("remember", "fallback", "c", 10))  # its own capacity
    clock.advance(10)
    assert not state.run(op("remember", "pow", "a", 10))  # still valid at the instant
    clock.advance(0.001)
    assert state.seen("pow", "b") and not state.seen("pow", "a")
    assert state.run(op("remember", "pow", "c", 10))
    assert state.remembered("pow") == 2


def test_memory_remember_says_how_full_the_namespace_is() -> None:
    state = MemoryState(max_entries=4, capacities={"pow:1": 2})
    assert state.run(op("remember", "pow", "a", 10)) == Stored(True, 0.25)
    assert state.run(op("remember", "pow", "a", 10)) == Stored(False, 0.25)
    assert state.run(op("remember", "pow:1", "a", 10)) == Stored(True, 0.5)
    with pytest.raises(ValueError):
        MemoryState(capacities={"pow": 0})


def test_memory_remember_bounded_as_keys_expire() -> None:
    clock = FakeClock()
    state = MemoryState(max_entries=10, clock=clock)
    for second in range(1000):
        assert state.run(op("remember", "pow", f"k{second}", 5))
        assert state.remembered("pow") <= 6
        clock.advance(1)


def test_memory_remember_threads_racing_on_one_key_get_one_first_use() -> None:
    state = MemoryState()
    start = threading.Barrier(8)
    results: list[bool] = []

    def race() -> None:
        start.wait()
        results.append(bool(state.run(op("remember", "pow", "same", 100))))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_memory_spend_fixed_windows_and_capacity() -> None:
    clock = FakeClock(start=600.0)
    state = MemoryState(max_buckets=2, clock=clock)
    assert [state.run(op("spend", "fallback", "x", 2, 60)) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert state.run(op("spend", "fallback", "y", 2, 60))
    with pytest.raises(StateFull):
        state.run(op("spend", "fallback", "z", 2, 60))
    clock.advance(60)
    assert state.run(op("spend", "fallback", "x", 2, 60))


def test_memory_spend_counts_exactly_from_the_first_use() -> None:
    clock = FakeClock()
    memory = MemoryState(clock=clock)
    assert [memory.spend("ns", "b", 2, 10) for _ in range(3)] == [True, True, False]
    clock.advance(9.9)
    assert memory.spend("ns", "b", 2, 10) is False
    clock.advance(0.1)
    assert memory.spend("ns", "b", 2, 10) is True  # the count lived `window` seconds


def test_memory_spend_refuses_rather_than_forgets() -> None:
    clock = FakeClock()
    memory = MemoryState(max_buckets=2, clock=clock)
    assert memory.spend("ns", "a", 1, 10) and memory.spend("ns", "b", 1, 10)
    with pytest.raises(StateFull):
        memory.spend("ns", "c", 1, 10)
    assert memory.spend("ns", "a", 1, 10) is False  # known buckets still answer
    clock.advance(10)
    assert memory.spend("ns", "c", 1, 10) is True  # room once the old ones expired
    assert memory.counted("ns") == 1


def test_memory_counters() -> None:
    memory = MemoryState()
    assert memory.run(op("read_counter", "clearance", "generation")) == 0
    assert memory.run(op("bump_counter", "clearance", "generation")) == 1
    assert asyncio.run(memory.arun(op("read_counter", "clearance", "generation"))) == 1


def test_memory_state_is_atomic_across_threads() -> None:
    state = MemoryState()
    answers: list[bool] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        mine = [bool(state.run(op("remember", "pow", str(k), 60))) for k in range(500)]
        mine += [state.run(op("spend", "fallback", "c", 100, 3600)) for _ in range(50)]
        answers.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(True) == 500 + 100


def test_memory_state_async_and_unknown_ops() -> None:
    state = MemoryState()
    assert asyncio.run(state.arun(op("remember", "pow", "k", 1)))
    with pytest.raises(ValueError):
        state.run(op("forget", "pow", "k"))
    for bad in (0, -1, True, 1.5, "10"):
        with pytest.raises(ValueError):
            MemoryState(max_entries=bad)  # type: ignore[arg-type]


# -- FailoverState ----------------------------------------------------------------------------
# The bookkeeping tests below use the opt-in per_process=True (every operation answered in
# process during an outage); the default policy has tests of its own after them.


class Primary:
    """A shared backend that answers like MemoryState until told to fail, then raises."""

    def __init__(self) -> None:
        self.inner = MemoryState()
        self.down = False
        self.calls = 0
        self.error: Exception = StateUnavailable("connection")
        self.forgotten: list[Permit] = []

    def forget_permit(self, name: str, permit: Permit) -> None:
        self.forgotten.append(permit)

    def for_asgi(self) -> Primary:
        return self

    def for_wsgi(self) -> Primary:
        return self

    def run(self, op: StateOp) -> Any:
        self.calls += 1
        if self.down:
            raise self.error
        return self.inner.run(op)

    async def arun(self, op: StateOp) -> Any:
        return self.run(op)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_failover_logs_once_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    primary = Primary()
    events: list[StoreErrorEvent] = []
    state = FailoverState(
        primary,
        per_process=True,
        backoff=1.0,
        log_interval=60.0,
        on_error=events.append,
        clock=clock,
    )
    primary.down = True
    assert state.run(op("remember", "pow", "a", 600))
    assert errors(caplog) and len(errors(caplog)) == 1
    assert events == [StoreErrorEvent(store="replay", error="connection")]
    for _ in range(10):  # within the back-off: the primary is not asked at all
        state.run(op("spend", "fallback", "c", 100, 60))
    assert primary.calls == 1
    clock.advance(1.0)
    state.run(op("breaker_state", "p", 5, 30.0))  # one retry, fails again
    assert primary.calls == 2 and len(errors(caplog)) == 1
    assert events[-1] == StoreErrorEvent(store="breaker", error="connection")
    clock.advance(59.0)
    state.run(op("remember", "pow", "b", 600))
    assert len(errors(caplog)) == 2
    assert "12 operations" in errors(caplog)[1]


def test_failover_resumes_and_local_memory_still_refuses(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    primary = Primary()
    state = FailoverState(primary, per_process=True, backoff=1.0, clock=clock)
    primary.down = True
    assert state.run(op("remember", "fallback", "token", 600))
    primary.down = False
    assert not state.run(op("remember", "fallback", "token", 600))  # still backing off
    clock.advance(1.0)
    # The primary never saw it, and says "first"; this worker let it through before.
    assert not state.run(op("remember", "fallback", "token", 600))
    assert not state.outage
    assert any("back" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert state.run(op("remember", "fallback", "new", 600))
    assert not primary.inner.run(op("remember", "fallback", "new", 600))  # it went to the primary


def test_failover_returns_local_permits_to_the_local_breaker() -> None:
    clock = FakeClock()
    primary = Primary()
    state = FailoverState(primary, backoff=1.0, clock=clock)
    primary.down = True
    permit = state.run(op("breaker_acquire", "p", 1, 30.0))
    assert isinstance(permit, Permit)
    primary.down = False
    clock.advance(1.0)
    calls = primary.calls
    assert state.run(op("breaker_record", "p", 1, 30.0, permit, False)) == Transition(
        State.CLOSED, State.OPEN
    )
    assert primary.calls == calls  # recorded where it was given
    assert state.local.run(op("breaker_state", "p", 1, 30.0)) is State.OPEN
    assert primary.inner.run(op("breaker_state", "p", 1, 30.0)) is State.CLOSED
    shared = state.run(op("breaker_acquire", "p", 1, 30.0))
    assert shared is not None and primary.calls == calls + 1


def test_failover_only_one_caller_retries_after_the_back_off() -> None:
    clock = FakeClock()
    primary = Primary()
    state = FailoverState(primary, per_process=True, backoff=1.0, clock=clock)
    primary.down = True
    state.run(op("remember", "pow", "a", 60))
    clock.advance(1.0)
    entered, release = threading.Event(), threading.Event()
    original = primary.run

    def slow(op: StateOp) -> Any:
        entered.set()
        release.wait(10)
        return original(op)

    primary.run = slow  # type: ignore[method-assign]
    retrier = threading.Thread(target=state.run, args=(op("remember", "pow", "b", 60),))
    retrier.start()
    assert entered.wait(10)
    calls = primary.calls
    for key in "cdef":  # the others answer locally meanwhile, at once
        assert state.run(op("remember", "pow", key, 60))
    assert primary.calls == calls
    release.set()
    retrier.join()


def test_failover_never_raises_what_the_primary_raised_except_full() -> None:
    primary = Primary()
    state = FailoverState(primary, per_process=True, clock=FakeClock())
    primary.down, primary.error = True, RuntimeError("a bug")
    assert state.run(op("remember", "pow", "a", 60))
    assert not asyncio.run(state.arun(op("remember", "pow", "a", 60)))
    primary.error = StateFull("noeviction")
    state2 = FailoverState(primary, per_process=True, clock=FakeClock())
    with pytest.raises(StateFull):
        state2.run(op("remember", "pow", "b", 60))


def test_failover_hook_that_raises_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    primary = Primary()

    def hook(event: StoreErrorEvent) -> None:
        raise RuntimeError("hook bug")

    state = FailoverState(primary, per_process=True, on_error=hook, clock=FakeClock())
    primary.down = True
    assert state.run(op("remember", "pow", "a", 60))
    assert any("store_error hook failed" in m for m in errors(caplog))


def test_bind_state() -> None:
    assert isinstance(bind_state(None, door="asgi"), MemoryState)
    memory = MemoryState()
    assert bind_state(memory, door="wsgi") is memory
    bound = bind_state(Primary(), door="asgi")
    assert isinstance(bound, FailoverState) and isinstance(bound.local, MemoryState)
    with pytest.raises(TypeError):
        bind_state(object(), door="asgi")
    with pytest.raises(ValueError):
        bind_state(None, door="rsgi")  # type: ignore[arg-type]


def test_failover_tells_the_primary_of_its_permits_recorded_locally_exactly_once() -> None:
    clock = FakeClock()
    primary = Primary()
    state = FailoverState(primary, backoff=1.0, clock=clock)
    shared = [state.run(op("breaker_acquire", "p", 5, 30.0)) for _ in range(2)]
    primary.down = True
    # Asked and failed: the primary saw the record (and counted it off) itself.
    state.run(op("breaker_record", "p", 5, 30.0, shared[0], False))
    assert primary.forgotten == []
    # Skipped during the back-off: the primary never sees it, so it is told.
    state.run(op("breaker_record", "p", 5, 30.0, shared[1], False))
    assert primary.forgotten == [shared[1]]
    local = state.run(op("breaker_acquire", "p", 5, 30.0))
    state.run(op("breaker_release", "p", local))
    assert primary.forgotten == [shared[1]]  # a local permit is none of its business


# -- the default policy: only the breaker falls back to the in-process state ---------------


SECURITY_OPS = [
    op("remember", "pow", "a", 60),
    op("spend", "budget", "10.0.0.0/24", 5, 60),
    op("read_counter", "clearance", "generation"),
    op("bump_counter", "clearance", "generation"),
]


@pytest.mark.parametrize("question", SECURITY_OPS, ids=lambda o: o.name)
def test_a_security_question_the_store_cannot_answer_is_refused(question: StateOp) -> None:
    clock = FakeClock()
    primary = Primary()
    state = FailoverState(primary, backoff=1.0, clock=clock)
    primary.down = True
    with pytest.raises(StateUnavailable):
        state.run(question)  # the attempt that fails
    assert state.outage
    with pytest.raises(StateUnavailable):
        asyncio.run(state.arun(question))  # skipped during the back-off: refused, not local
    assert state.local.remembered("pow") == 0 and state.local.counted("budget") == 0
    # The breaker still answers, from the in-process state.
    assert isinstance(state.run(op("breaker_acquire", "p", 5, 30.0)), Permit)


def test_a_full_store_refuses_security_questions_and_keeps_the_breaker_in_process() -> None:
    primary = Primary()
    state = FailoverState(primary)
    primary.down, primary.error = True, StateFull("OOM")
    with pytest.raises(StateFull):
        state.run(op("remember", "pow", "a", 60))
    permit = state.run(op("breaker_acquire", "p", 1, 30.0))  # never a 500 from a breaker write
    assert state.run(op("breaker_record", "p", 1, 30.0, permit, False)) == Transition(
        State.CLOSED, State.OPEN
    )
    assert not state.outage  # full is an answer, not an outage


def test_a_stalled_loop_is_never_an_outage(caplog: pytest.LogCaptureFixture) -> None:
    primary = Primary()
    state = FailoverState(primary, per_process=True)  # even with the opt-in
    primary.down, primary.error = True, StateBusy()
    with pytest.raises(StateBusy):
        state.run(op("remember", "pow", "a", 60))
    assert not state.outage and errors(caplog) == []
    assert state.local.remembered("pow") == 0  # nothing answered from this process's memory
    assert isinstance(state.run(op("breaker_acquire", "p", 5, 30.0)), Permit)
    primary.down = False
    assert state.run(op("remember", "pow", "a", 60))  # asked at once: no back-off began


def test_per_process_comes_from_the_primarys_in_outage() -> None:
    primary = Primary()
    assert not FailoverState(primary).per_process
    primary.in_outage = "per_process"  # type: ignore[attr-defined]
    assert FailoverState(primary).per_process
