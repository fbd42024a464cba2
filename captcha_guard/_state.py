"""State that outlives a request, behind one interface: breakers, replay memory, budgets.

Theory of operation. The gate's decision flow never touches state directly: it names an
operation (``StateOp``) and the front door performs it, ``state.run(op)`` under WSGI or
``await state.arun(op)`` under ASGI, so one flow serves both doors and a backend with I/O
(Redis) plugs in without the flow knowing. Every operation is atomic in its backend; none is
a read-modify-write by the caller. Keys are chosen by the caller and namespaced by use
(``"pow"``, ``"fallback"``, ...), so one backend serves every use without one starving
another: each namespace has its own capacity.

The operations (``StateOp(name, args)``, args positional in this order):

- ``breaker_acquire(name, threshold, reset_timeout, lease=None) -> Permit | None``: leave to
  call the provider, or None (fall back now). A ``Permit`` with ``probe=True`` means the
  circuit is half-open and this caller is the one probe; ``lease`` (seconds, default
  ``DEFAULT_PROBE_LEASE``) is how long a shared backend holds the probe for a caller that
  never comes back (pass the provider's timeout plus a margin).
- ``breaker_record(name, threshold, reset_timeout, permit, ok) -> Transition | None``: the
  call made under ``permit`` ended; returns the state change it caused, if any. A permit
  from an older generation (a call begun before a transition) changes nothing.
- ``breaker_release(name, permit) -> None``: a call abandoned before its answer; frees the
  probe, counts nothing.
- ``breaker_state(name, threshold, reset_timeout) -> State``: read only.
- ``remember(namespace, key, ttl) -> Stored``: ``Stored.first`` (and ``bool()``) True the
  first time ``key`` is seen within ``ttl`` seconds, False for a replay; ``Stored.fill`` how
  full the namespace is (0..1, None where the backend cannot tell). Raises ``StateFull``
  rather than forget.
- ``spend(namespace, bucket, limit, window) -> bool``: count one in ``bucket``; True while
  within ``limit`` for the bucket's window of ``window`` seconds. Raises ``StateFull`` rather
  than let a bucket through uncounted.
- ``read_counter(namespace, key) -> int`` and ``bump_counter(namespace, key) -> int``: a
  counter that never expires (the clearance revocation generation).

Every door has a backend: ``MemoryState`` (``_memory.py``) unless ``state=`` names a shared
one, so the flow has one path. A shared backend that cannot answer raises
``StateUnavailable``; what that means for each use is the failover policy's
(``_failover.py``), and never "allow". ``StateFull`` is an answer, not an outage: the caller
refuses.

Choosing a backend per door: each door calls ``bind_state(state, door="asgi"|"wsgi",
on_error=...)`` (``_failover.py``) once at construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ._breaker import State

#: Seconds a shared backend holds the half-open probe for a caller that never reports back.
DEFAULT_PROBE_LEASE = 10.0
Door = Literal["asgi", "wsgi"]


class StateFull(Exception):
    """The backend cannot record one more key or bucket before some expire."""


class StateUnavailable(Exception):
    """The backend did not answer (down, slow, refused): the kind is in ``kind``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class StateBusy(StateUnavailable):
    """The answer may have come, but our own event loop was too stalled to read it within
    the credit a stall is given: our capacity, never the store's outage."""

    def __init__(self) -> None:
        super().__init__("loop")


@dataclass(frozen=True, slots=True)
class Transition:
    """A breaker moved from ``old`` to ``new``."""

    old: State
    new: State


@dataclass(frozen=True, slots=True)
class Stored:
    """What ``remember`` answers: ``first`` (False: a replay), and how full the namespace is
    now (0..1; None where the backend cannot tell). Truthy when first."""

    first: bool
    fill: float | None = None

    def __bool__(self) -> bool:
        return self.first


@dataclass(frozen=True, slots=True)
class StateOp:
    """One operation on shared state: the name of a backend method and its arguments."""

    name: str
    args: tuple[Any, ...]


OP_NAMES = frozenset(
    {
        "breaker_acquire",
        "breaker_record",
        "breaker_release",
        "breaker_state",
        "remember",
        "spend",
        "read_counter",
        "bump_counter",
    }
)


@runtime_checkable
class SharedState(Protocol):
    """A state backend: each operation in a sync and an async form."""

    def run(self, op: StateOp) -> Any: ...

    async def arun(self, op: StateOp) -> Any: ...


__all__ = [
    "DEFAULT_PROBE_LEASE",
    "OP_NAMES",
    "Door",
    "SharedState",
    "StateBusy",
    "StateFull",
    "StateOp",
    "StateUnavailable",
    "Stored",
    "Transition",
]
