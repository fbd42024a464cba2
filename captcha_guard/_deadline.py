"""A provider call's deadline on asyncio: the provider is charged only for time it had.

Two of our own waits are kept out of a provider's ``timeout``: waiting for a free connection
(bounded by the same ``timeout``, then ``BUSY``: a 503 the breaker never counts), and time our
own event loop spent unable to run anything (a burst of heavy requests that blocks the loop
must not make in-flight calls look timed out, or a client could open the circuit with its own
load and then pass in fallback). The second is measured by ``LoopLag``: while calls are out, a
tick every ``TICK`` seconds notes how late it ran, and a call's deadline is pushed back by the
lag that fell inside it, up to ``MAX_CREDIT`` times its timeout; past that the loop is
overloaded and the call is ``BUSY``. The senders that use it are in ``_aio.py``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from ._effects import BUSY, CallProblem

TICK = 0.025
#: Lateness below this is a healthy loop's jitter, not lag.
TOLERANCE = 0.005
#: At most this many times a call's timeout is added for loop lag before the call is BUSY.
MAX_CREDIT = 10.0

TIMEOUT: CallProblem = CallProblem("timeout")


class LoopLag:
    """The time one event loop spent stalled while provider calls were out, summed."""

    __slots__ = ("_active", "_expected", "_handle", "_loop", "total")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._active = 0
        self._handle: asyncio.TimerHandle | None = None
        self._expected = 0.0
        self.total = 0.0

    def enter(self) -> float:
        """A call starts: make sure the ticks run; the lag so far, to subtract later."""
        self._active += 1
        if self._handle is None:
            self._expected = self._loop.time() + TICK
            self._handle = self._loop.call_at(self._expected, self._tick)
        return self.total

    def leave(self) -> None:
        self._active -= 1
        if self._active == 0 and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = self._loop.time()
        late = now - self._expected
        if late > TOLERANCE:
            self.total += late
        if self._active:
            self._expected = now + TICK
            self._handle = self._loop.call_at(self._expected, self._tick)
        else:
            self._handle = None


class Deadline:
    """Cancels the current task when the provider has had ``timeout`` seconds of a working
    loop since ``start()``, or when ``start()`` has not come within ``timeout`` (no
    connection). ``expired`` then says which: TIMEOUT (the provider's fault) or BUSY (ours)."""

    __slots__ = (
        "_cancelling",
        "_credit",
        "_handle",
        "_lag",
        "_loop",
        "_mark",
        "_task",
        "_timeout",
        "expired",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, lag: LoopLag, timeout: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._loop = loop
        self._task = task
        self._cancelling = cancelling(task)
        self._lag = lag
        self._timeout = timeout
        self._credit = 0.0
        self._mark = lag.enter()
        self._handle: asyncio.TimerHandle | None = loop.call_at(
            loop.time() + timeout, self._no_connection
        )
        self.expired: CallProblem | None = None

    def start(self) -> None:
        """The request is about to be written: the provider's time starts now."""
        if self.expired is not None:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._mark = self._lag.total
        self._credit = 0.0
        self._handle = self._loop.call_at(self._loop.time() + self._timeout, self._check)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._lag.leave()

    def _no_connection(self) -> None:
        self._expire(BUSY)

    def _check(self) -> None:
        lagged = self._lag.total - self._mark
        extra = lagged - self._credit
        if extra <= TOLERANCE:
            self._expire(TIMEOUT)
            return
        self._credit = lagged
        if self._credit > MAX_CREDIT * self._timeout:
            self._expire(BUSY)
            return
        # Answers that came in during the stall are read in the next loop turns: give them
        # at least a couple of ticks even when the stall outlasted the deadline.
        when = max(self._loop.time() + 2 * TICK, self._loop.time() + extra)
        self._handle = self._loop.call_at(when, self._check)

    def _expire(self, problem: CallProblem) -> None:
        self._handle = None
        self.expired = problem
        self._task.cancel()

    def swallow(self) -> CallProblem | None:
        """After a CancelledError: the problem if the cancellation was ours alone (then the
        task carries on), None if someone else cancelled too (re-raise)."""
        if self.expired is None:
            return None
        if not ours_alone(self._task, self._cancelling):
            return None
        return self.expired


def cancelling(task: asyncio.Task[Any]) -> int:
    """The task's pending cancellation requests now (0 where tasks do not count them)."""
    count = getattr(task, "cancelling", None)
    return count() if count is not None else 0


def ours_alone(task: asyncio.Task[Any], before: int) -> bool:
    """After a CancelledError from our one ``task.cancel()``: withdraw that request, and say
    whether it was the only one made since ``before`` (``cancelling(task)`` when we started;
    a request someone swallowed earlier without withdrawing it is not held against us).

    Only from Python 3.11, where asyncio counts requests and anyio withdraws its own, as we do.
    Before that, anyio leaves its requests standing even on a task that counts them (as
    pytest-asyncio's backport does), so the count cannot tell ours from another's, and the
    cancellation is taken to be ours, as it must be on a plain 3.10 task, which has no count."""
    if sys.version_info < (3, 11):
        return True
    uncancel = getattr(task, "uncancel", None)
    return uncancel is None or uncancel() <= before


__all__ = [
    "MAX_CREDIT",
    "TICK",
    "TIMEOUT",
    "TOLERANCE",
    "Deadline",
    "LoopLag",
    "cancelling",
    "ours_alone",
]
