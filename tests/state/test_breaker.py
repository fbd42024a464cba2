from __future__ import annotations

import math
import threading

import pytest

from captcha_guard import CircuitBreaker
from captcha_guard._breaker import TRANSITIONS, Event, Permit, State
from tests.helpers import FakeClock


def _breaker(threshold: int = 3, reset: float = 30.0) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker(threshold, reset, clock=clock), clock


def _fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit is not None
        breaker.record(permit, ok=False)


def _open(breaker: CircuitBreaker) -> None:
    _fail(breaker, breaker.failure_threshold)
    assert breaker.state is State.OPEN


def test_the_table_is_what_the_design_says() -> None:
    assert {
        (State.CLOSED, Event.THRESHOLD): State.OPEN,
        (State.OPEN, Event.COOLED): State.HALF_OPEN,
        (State.HALF_OPEN, Event.SUCCESS): State.CLOSED,
        (State.HALF_OPEN, Event.FAILURE): State.OPEN,
        (State.HALF_OPEN, Event.THRESHOLD): State.OPEN,
    } == TRANSITIONS


def test_defaults() -> None:
    breaker = CircuitBreaker()
    assert breaker.failure_threshold == 5
    assert breaker.reset_timeout == 30.0
    assert breaker.state is State.CLOSED
    assert "state='closed'" in repr(breaker)


@pytest.mark.parametrize(
    ("threshold", "reset"),
    [(0, 1.0), (-1, 1.0), (1.5, 1.0), ("5", 1.0), (1, -0.1), (1, math.nan)],
)
def test_bad_settings_raise(threshold: object, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, reset)  # type: ignore[arg-type]


# ---------------------------------------------------------------- CLOSED


def test_closed_gives_plain_permits_to_everyone() -> None:
    breaker, _ = _breaker()
    permits = [breaker.acquire() for _ in range(10)]
    assert all(p is not None and not p.probe for p in permits)


def test_closed_success_stays_closed() -> None:
    breaker, _ = _breaker()
    permit = breaker.acquire()
    assert permit is not None
    breaker.record(permit, ok=True)
    assert breaker.state is State.CLOSED


def test_closed_failures_below_threshold_stay_closed() -> None:
    breaker, _ = _breaker(threshold=3)
    _fail(breaker, 2)
    assert breaker.state is State.CLOSED


def test_closed_opens_at_threshold_consecutive_failures() -> None:
    breaker, _ = _breaker(threshold=3)
    _fail(breaker, 3)
    assert breaker.state is State.OPEN
    assert breaker.acquire() is None


def test_a_success_resets_the_consecutive_count() -> None:
    breaker, _ = _breaker(threshold=3)
    _fail(breaker, 2)
    permit = breaker.acquire()
    assert permit is not None
    breaker.record(permit, ok=True)
    _fail(breaker, 2)
    assert breaker.state is State.CLOSED
    _fail(breaker, 1)
    assert breaker.state is State.OPEN


def test_threshold_one_opens_on_the_first_failure() -> None:
    breaker, _ = _breaker(threshold=1)
    _fail(breaker)
    assert breaker.state is State.OPEN


# ---------------------------------------------------------------- OPEN and the reset timeout


def test_open_refuses_until_reset_timeout_exactly() -> None:
    breaker, clock = _breaker(reset=30.0)
    _open(breaker)
    clock.advance(29.999)
    assert breaker.state is State.OPEN
    assert breaker.acquire() is None
    clock.advance(0.001)  # exactly reset_timeout after opening
    assert breaker.state is State.HALF_OPEN
    permit = breaker.acquire()
    assert permit is not None and permit.probe


def test_reset_timeout_counts_from_the_opening_not_from_the_last_refusal() -> None:
    breaker, clock = _breaker(reset=10.0)
    _open(breaker)
    for _ in range(9):
        clock.advance(1.0)
        assert breaker.acquire() is None
    clock.advance(1.0)
    assert breaker.acquire() is not None


def test_zero_reset_timeout_probes_at_once() -> None:
    breaker, _ = _breaker(reset=0.0)
    _fail(breaker, breaker.failure_threshold)
    assert breaker.state is State.HALF_OPEN
    permit = breaker.acquire()
    assert permit is not None and permit.probe


# ---------------------------------------------------------------- HALF_OPEN


def test_half_open_gives_exactly_one_probe() -> None:
    breaker, clock = _breaker()
    _open(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None and probe.probe
    assert all(breaker.acquire() is None for _ in range(50))
    assert breaker.state is State.HALF_OPEN


def test_a_good_probe_closes() -> None:
    breaker, clock = _breaker(threshold=3)
    _open(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, ok=True)
    assert breaker.state is State.CLOSED
    # and the failure count starts again from zero
    _fail(breaker, 2)
    assert breaker.state is State.CLOSED


def test_a_bad_probe_opens_again_for_a_full_reset_timeout() -> None:
    breaker, clock = _breaker(reset=30.0)
    _open(breaker)
    clock.advance(45)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, ok=False)
    assert breaker.state is State.OPEN
    clock.advance(29.5)
    assert breaker.acquire() is None
    clock.advance(0.5)
    again = breaker.acquire()
    assert again is not None and again.probe


def test_a_released_probe_lets_the_next_request_probe() -> None:
    breaker, clock = _breaker()
    _open(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None
    assert breaker.acquire() is None
    breaker.release(probe)  # cancelled: nothing counted
    assert breaker.state is State.HALF_OPEN
    nxt = breaker.acquire()
    assert nxt is not None and nxt.probe


def test_releasing_a_plain_permit_changes_nothing() -> None:
    breaker, _ = _breaker(threshold=2)
    _fail(breaker, 1)
    permit = breaker.acquire()
    assert permit is not None
    breaker.release(permit)
    _fail(breaker, 1)  # the earlier failure still counts
    assert breaker.state is State.OPEN


# ---------------------------------------------------------------- stale permits


def test_a_permit_from_before_the_opening_is_ignored() -> None:
    breaker, _ = _breaker(threshold=2)
    slow = breaker.acquire()
    assert slow is not None
    _open(breaker)
    breaker.record(slow, ok=True)  # a slow success says nothing about the open circuit
    assert breaker.state is State.OPEN
    breaker.record(slow, ok=False)
    assert breaker.state is State.OPEN


def test_a_closed_permit_recorded_while_half_open_does_not_close_or_steal_the_probe() -> None:
    breaker, clock = _breaker(threshold=1)
    slow = breaker.acquire()
    assert slow is not None
    _open(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None and probe.probe
    breaker.record(slow, ok=True)
    assert breaker.state is State.HALF_OPEN
    assert breaker.acquire() is None  # the probe is still out
    breaker.release(slow)  # a stale release must not free the probe either
    assert breaker.acquire() is None
    breaker.record(probe, ok=False)
    assert breaker.state is State.OPEN


def test_a_stale_probe_release_after_the_circuit_moved_on_is_ignored() -> None:
    breaker, clock = _breaker(threshold=1)
    _open(breaker)
    clock.advance(30)
    old_probe = breaker.acquire()
    assert old_probe is not None
    breaker.reset()
    _open(breaker)
    clock.advance(30)
    probe = breaker.acquire()
    assert probe is not None and probe.probe
    breaker.release(old_probe)
    assert breaker.acquire() is None
    breaker.record(old_probe, ok=True)
    assert breaker.state is State.HALF_OPEN


def test_reset_closes_and_forgets() -> None:
    breaker, _ = _breaker(threshold=2)
    _open(breaker)
    breaker.reset()
    assert breaker.state is State.CLOSED
    _fail(breaker, 1)
    assert breaker.state is State.CLOSED


def test_a_permit_cannot_be_forged_from_a_new_generation() -> None:
    breaker, _ = _breaker(threshold=1)
    _open(breaker)
    breaker.record(Permit(probe=False, generation=0), ok=True)
    assert breaker.state is State.OPEN


# ---------------------------------------------------------------- threads


def test_100_threads_in_half_open_get_exactly_one_probe() -> None:
    breaker, clock = _breaker(threshold=1)
    _open(breaker)
    clock.advance(30)
    start = threading.Barrier(100)
    permits: list[Permit | None] = []
    lock = threading.Lock()

    def worker() -> None:
        start.wait(10)
        permit = breaker.acquire()
        with lock:
            permits.append(permit)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(permits) == 100
    granted = [p for p in permits if p is not None]
    assert len(granted) == 1
    assert granted[0].probe


def test_threads_counting_failures_open_at_the_threshold() -> None:
    breaker, _ = _breaker(threshold=50)
    permits = [breaker.acquire() for _ in range(49)]
    start = threading.Barrier(49)

    def worker(permit: Permit | None) -> None:
        assert permit is not None
        start.wait(10)
        breaker.record(permit, ok=False)

    threads = [threading.Thread(target=worker, args=(p,)) for p in permits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert breaker.state is State.CLOSED  # 49 failures, no update lost, none counted twice
    _fail(breaker, 1)
    assert breaker.state is State.OPEN
