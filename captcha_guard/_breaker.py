"""CircuitBreaker: stop asking a provider that keeps failing, probe it now and then.

No I/O, and nothing of ours is imported but the argument checks (a leaf). A lock guards the
state only, never a call, so the same breaker is correct for asyncio tasks (which never block
inside it) and for threads.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ._check import int_arg, seconds_arg


class State(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Event(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    THRESHOLD = "threshold"  # a failure that brings the consecutive count to the threshold
    COOLED = "cooled"  # reset_timeout has passed since the circuit opened


# (state, event) -> next state. A pair that is missing changes nothing.
TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.CLOSED, Event.THRESHOLD): State.OPEN,
    (State.OPEN, Event.COOLED): State.HALF_OPEN,
    (State.HALF_OPEN, Event.SUCCESS): State.CLOSED,
    (State.HALF_OPEN, Event.FAILURE): State.OPEN,
    (State.HALF_OPEN, Event.THRESHOLD): State.OPEN,
}


@dataclass(frozen=True)
class Permit:
    """Leave to make one provider call. Hand it back with ``record`` or ``release``.

    ``generation`` ties the permit to the state it was given in: the result of a call that
    started before the circuit changed state says nothing about the state that followed.
    """

    probe: bool
    generation: int
    #: This acquire moved the circuit from open to half-open (its cool-down ended): the
    #: caller reports that transition, since no ``record`` will.
    cooled: bool = field(default=False, compare=False)


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``reset_timeout`` seconds
    lets exactly one probe through; a good probe closes it, a bad one opens it again."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = int_arg(failure_threshold, "failure_threshold")
        # A wrong type was always a TypeError here (the comparison's own); it stays one.
        self.reset_timeout = seconds_arg(
            reset_timeout, "reset_timeout", inclusive=True, wrong_type=TypeError
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(failure_threshold={self.failure_threshold}, "
            f"reset_timeout={self.reset_timeout}, state={self.state.value!r})"
        )

    @property
    def state(self) -> State:
        with self._lock:
            if self._state is State.OPEN and self._cooled():
                return State.HALF_OPEN
            return self._state

    def acquire(self) -> Permit | None:
        """A permit to call the provider, or None: fall back now, do not call, do not wait."""
        with self._lock:
            cooled = self._state is State.OPEN and self._cooled()
            if cooled:
                self._move(Event.COOLED)
            if self._state is State.CLOSED:
                return Permit(probe=False, generation=self._generation)
            if self._state is State.HALF_OPEN and not self._probing:
                self._probing = True
                return Permit(probe=True, generation=self._generation, cooled=cooled)
            return None

    def record(self, permit: Permit, *, ok: bool) -> None:
        """The call made under ``permit`` ended: ``ok`` if the provider answered sanely."""
        with self._lock:
            if permit.generation != self._generation:
                return
            if ok:
                self._failures = 0
                self._move(Event.SUCCESS)
                return
            self._failures += 1
            at_threshold = self._failures >= self.failure_threshold
            self._move(Event.THRESHOLD if at_threshold else Event.FAILURE)

    def release(self, permit: Permit) -> None:
        """The call was abandoned (cancelled) before an answer: count nothing, free the probe."""
        with self._lock:
            if permit.probe and permit.generation == self._generation:
                self._probing = False

    def reset(self) -> None:
        with self._lock:
            self._state = State.CLOSED
            self._generation += 1
            self._failures = 0
            self._probing = False

    def _cooled(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_timeout

    def _move(self, event: Event) -> None:
        target = TRANSITIONS.get((self._state, event))
        if target is None:
            return
        self._state = target
        self._generation += 1
        self._probing = False
        if target is State.OPEN:
            self._opened_at = self._clock()
        elif target is State.CLOSED:
            self._failures = 0
