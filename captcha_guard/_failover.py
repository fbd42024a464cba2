"""FailoverState: what a door does when its shared state backend cannot answer.

Wraps a shared backend (``RedisState``) with an in-process ``MemoryState`` and decides, per
use, what an operation the shared backend could not answer means (docs/shared-state.md):

- the breaker protects availability, and only it falls back to the in-process state;
- a security question (a replay guard, a budget, a clearance's uses or revocation) is never
  answered from a memory that never saw the fleet's history: ``StateUnavailable`` is raised
  to the flow, which refuses (503 ``captcha_unavailable``; a clearance is ignored). A backend
  built with ``in_outage="per_process"`` opts in to this process's answers instead, during a
  real outage only ("a solution may then pass once per worker");
- our own event loop too stalled to read the answer in time (``StateBusy``) is never an
  outage: nothing is marked down, nothing is answered locally, the question is refused;
- a full store (``StateFull``) is an answer for a security question (the caller refuses) and,
  for a breaker write, one more reason to keep the breaker in process: never a 500.

``bind_state`` chooses a door's backend once at construction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._breaker import Permit
from ._events import StoreErrorEvent
from ._memory import MemoryState
from ._state import Door, SharedState, StateBusy, StateFull, StateOp, StateUnavailable, Stored

logger = logging.getLogger("captcha_guard")


@dataclass(frozen=True)
class _LocalPermit(Permit):
    """A permit the in-process state gave during an outage: recorded there, not shared."""


_BREAKER_OPS = frozenset({"breaker_acquire", "breaker_record", "breaker_release", "breaker_state"})
_STORE_OF_OP = {
    "breaker_acquire": "breaker",
    "breaker_record": "breaker",
    "breaker_release": "breaker",
    "breaker_state": "breaker",
    "remember": "replay",
    "spend": "fallback_budget",
    "read_counter": "clearance",
    "bump_counter": "clearance",
}


def store_of(op: StateOp) -> str:
    """The store a failed operation served, for ``StoreErrorEvent.store``: a ``spend`` in the
    clearance namespace counts a clearance's uses, not a fallback budget."""
    if op.args and op.args[0] == "clearance":
        return "clearance"
    return _STORE_OF_OP.get(op.name, op.name)


class FailoverState:
    """A shared backend, and what its failures mean (the module's docstring).

    ``primary`` raises ``StateUnavailable`` within its own timeout when it is down or slow;
    the outage starts, and the primary is skipped for ``backoff`` seconds, after which one
    caller tries it again while the others do without (so a dead server costs one timeout
    per back-off, not one per request). Meanwhile breaker operations are answered by
    ``local`` and every other operation raises ``StateUnavailable("outage")``, unless
    ``per_process`` (the primary's ``in_outage="per_process"``): then ``local`` answers them
    too. A key remembered locally during an outage stays a replay here until it expires,
    whatever the primary says once back.

    Breaker permits given locally are recorded and released locally.

    Logging: ERROR when an outage starts, then at most once per ``log_interval`` with the
    count of operations refused or answered in-process; WARNING when the primary answers
    again. Each failed attempt calls ``on_error`` with a ``StoreErrorEvent`` (kind only,
    never a key). A stalled loop logs nothing here (the flow's refusal is the sign).
    """

    shared = True

    def __init__(
        self,
        primary: Any,
        local: MemoryState | None = None,
        *,
        backoff: float = 1.0,
        log_interval: float = 60.0,
        on_error: Callable[[StoreErrorEvent], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        per_process: bool | None = None,
    ) -> None:
        if not backoff >= 0 or not log_interval > 0:
            raise ValueError("backoff must be >= 0 and log_interval > 0 seconds")
        if per_process is None:
            per_process = getattr(primary, "in_outage", "refuse") == "per_process"
        #: Security questions answered in process during a real outage (an opt-in).
        self.per_process = per_process
        self.primary = primary
        self.local = local if local is not None else MemoryState()
        self.backoff = float(backoff)
        self.log_interval = float(log_interval)
        self.on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._skip_until = 0.0
        self._trying = False
        self._logged_at = 0.0
        self._local_answers = 0  # since the last log line

    def __repr__(self) -> str:
        return f"FailoverState({self.primary!r}, {self.local!r})"

    @property
    def outage(self) -> bool:
        """Whether the primary is considered down right now."""
        return self._down_since is not None

    def for_asgi(self) -> FailoverState:
        self.primary.for_asgi()
        return self

    def for_wsgi(self) -> FailoverState:
        self.primary.for_wsgi()
        return self

    def close(self) -> None:
        close = getattr(self.primary, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        aclose = getattr(self.primary, "aclose", None)
        if aclose is not None:
            await aclose()

    def run(self, op: StateOp) -> Any:
        attempt = None if self._is_local(op) else self._attempt()
        if attempt is None:
            return self._without_primary(op, skipped=True)
        try:
            result = self.primary.run(op)
        except Exception as exc:
            return self._failed_with(op, exc)
        finally:
            if attempt:
                self._tried()
        self._answered()
        return self._merge(op, result)

    async def arun(self, op: StateOp) -> Any:
        attempt = None if self._is_local(op) else self._attempt()
        if attempt is None:
            return self._without_primary(op, skipped=True)
        try:
            result = await self.primary.arun(op)
        except Exception as exc:
            return self._failed_with(op, exc)
        finally:
            if attempt:
                self._tried()
        self._answered()
        return self._merge(op, result)

    def _failed_with(self, op: StateOp, exc: Exception) -> Any:
        breaker = op.name in _BREAKER_OPS
        if isinstance(exc, StateFull):
            # An answer, not an outage. The breaker keeps working in process: never a 500.
            if breaker:
                return self._local(op)
            raise exc
        if isinstance(exc, StateBusy):
            # Our own loop, not the store: no outage, no local answer to a security question.
            if breaker:
                return self._local(op)
            raise exc
        # Whatever else went wrong is an outage: never a 500, never "allow".
        self._failed(op, exc.kind if isinstance(exc, StateUnavailable) else "error")
        return self._without_primary(op)

    def _without_primary(self, op: StateOp, *, skipped: bool = False) -> Any:
        if op.name in _BREAKER_OPS or self.per_process:
            return self._local(op, skipped=skipped)
        if op.name not in _STORE_OF_OP:
            raise ValueError(f"unknown state operation {op.name!r}")
        raise StateUnavailable("outage")

    def abandon(self, name: str, permit: Permit) -> None:
        """A call made under ``permit`` was cancelled while out, and the flow is closing: no
        I/O is possible. A permit from the in-process state frees its probe there (else that
        breaker, half-open, never probes again); the primary's stops being counted (its probe
        lease, on the server, expires on its own)."""
        if isinstance(permit, _LocalPermit):
            self.local.breaker_release(name, permit)
            return
        forget = getattr(self.primary, "forget_permit", None)
        if forget is not None:
            forget(name, permit)

    @staticmethod
    def _is_local(op: StateOp) -> bool:
        # A permit from the in-process state goes back where it came from.
        if op.name == "breaker_record":
            return isinstance(op.args[3], _LocalPermit)
        if op.name == "breaker_release":
            return isinstance(op.args[1], _LocalPermit)
        return False

    def _local(self, op: StateOp, *, skipped: bool = False) -> Any:
        if op.name not in _STORE_OF_OP:
            raise ValueError(f"unknown state operation {op.name!r}")
        if skipped and op.name in ("breaker_record", "breaker_release"):
            permit = op.args[3] if op.name == "breaker_record" else op.args[1]
            forget = getattr(self.primary, "forget_permit", None)
            if forget is not None and not isinstance(permit, _LocalPermit):
                # The primary's permit, handed back here without asking the primary (which
                # counts it off by itself when it is asked): it stops counting it.
                forget(op.args[0], permit)
        result = self.local.run(op)
        if op.name == "breaker_acquire" and result is not None:
            return _LocalPermit(result.probe, result.generation, result.cooled)
        return result

    def _merge(self, op: StateOp, result: Any) -> Any:
        if self.per_process and op.name == "remember" and result:
            namespace, key = op.args[0], op.args[1]
            # Let through here during an outage: still a replay here, whatever Redis says.
            if self.local.seen(namespace, key):
                return Stored(False, getattr(result, "fill", None))
        return result

    def _attempt(self) -> bool | None:
        """None: answer locally. False: ask the primary. True: ask it as the one caller
        that tries it again after a back-off (the others stay local meanwhile)."""
        if self._down_since is None:
            return False
        with self._lock:
            if self._down_since is None:
                return False
            now = self._clock()
            if self._trying or now < self._skip_until:
                self._local_answers += 1
                self._maybe_log(now)
                return None
            self._trying = True
            return True

    def _tried(self) -> None:
        # On every exit of the retrying attempt, whatever was raised, so one attempt never
        # strands the others on the local state.
        with self._lock:
            self._trying = False

    def _failed(self, op: StateOp, kind: str) -> None:
        with self._lock:
            now = self._clock()
            self._skip_until = now + self.backoff
            self._local_answers += 1
            if self._down_since is None:
                self._down_since = now
                self._logged_at = now
                self._local_answers = 0
                logger.error(
                    "captcha_guard shared state unavailable (%s): %s, retrying every %.1fs",
                    kind,
                    "answering from the in-process state"
                    if self.per_process
                    else "breakers in process, replay guards and budgets refused",
                    self.backoff,
                )
            else:
                self._maybe_log(now)
        if self.on_error is not None:
            try:
                self.on_error(StoreErrorEvent(store=store_of(op), error=kind))
            except Exception:
                logger.exception("captcha_guard store_error hook failed")

    def _maybe_log(self, now: float) -> None:
        if now - self._logged_at >= self.log_interval:
            logger.error(
                "captcha_guard shared state still unavailable after %.0fs: "
                "%d operations refused or answered in process in the last %.0fs",
                now - (self._down_since or now),
                self._local_answers,
                now - self._logged_at,
            )
            self._logged_at = now
            self._local_answers = 0

    def _answered(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            now = self._clock()
            logger.warning(
                "captcha_guard shared state is back after %.1fs; sharing resumed",
                now - self._down_since,
            )
            self._down_since = None
            self._local_answers = 0


def bind_state(
    state: Any,
    *,
    door: Door,
    on_error: Callable[[StoreErrorEvent], object] | None = None,
) -> MemoryState | FailoverState:
    """The backend a door performs its operations on, chosen once at construction.

    ``None``: a fresh in-process ``MemoryState``. A shared backend (``RedisState``): checked
    for this door (``TypeError`` for a client of the wrong kind) and wrapped in a
    ``FailoverState`` with its own in-process state (for breakers, and for the answers of
    ``in_outage="per_process"``), reporting errors to ``on_error``.
    """
    if door not in ("asgi", "wsgi"):
        raise ValueError("door must be 'asgi' or 'wsgi'")
    if state is None:
        return MemoryState()
    if isinstance(state, MemoryState | FailoverState):
        return state.for_asgi() if door == "asgi" else state.for_wsgi()
    check = getattr(state, "for_asgi" if door == "asgi" else "for_wsgi", None)
    if check is None or not isinstance(state, SharedState):
        raise TypeError(
            f"state must be a captcha_guard.redis.RedisState or None, not {type(state).__name__}"
        )
    return FailoverState(check(), MemoryState(), on_error=on_error)


__all__ = ["FailoverState", "bind_state"]
