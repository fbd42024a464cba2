"""State that outlives a request, behind one interface: breakers, replay memory, budgets.

Theory of operation. The gate's decision flow never touches state directly: it names an
operation (``StateOp``) and the front door performs it, ``state.run(op)`` under WSGI or
``await state.arun(op)`` under ASGI, so one flow serves both doors and a backend with I/O
(Redis) plugs in without the flow knowing. Every operation is atomic in its backend; none is
a read-modify-write by the caller. Keys are chosen by the caller and namespaced by use
(``"pow"``, ``"fallback"``, ...), so one backend serves every use without one starving
another: each namespace has its own capacity.

The operations:

- ``breaker_acquire(name, threshold, reset_timeout) -> Permit | None``
- ``breaker_record(name, permit, ok) -> Transition | None`` (the state change it caused)
- ``breaker_release(name, permit) -> None`` (a call abandoned before its answer)
- ``breaker_state(name, threshold, reset_timeout) -> State``
- ``remember(namespace, key, ttl) -> bool``: True the first time ``key`` is seen within
  ``ttl`` seconds, False for a replay; raises ``StateFull`` rather than forget.
- ``spend(namespace, bucket, limit, window) -> bool``: count one in ``bucket`` for the
  current fixed window of ``window`` seconds; True while within ``limit``.

A backend that cannot answer raises ``StateUnavailable``; a failover wrapper turns that into
the in-process backend's answer, never into "allow".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .breaker import State


class StateFull(Exception):
    """The backend cannot record one more key or bucket before some expire."""


class StateUnavailable(Exception):
    """The backend did not answer (down, slow, refused): the kind is in ``kind``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Transition:
    """A breaker moved from ``old`` to ``new``."""

    old: State
    new: State


@dataclass(frozen=True, slots=True)
class StateOp:
    """One operation on shared state: the name of a backend method and its arguments."""

    name: str
    args: tuple[Any, ...]


@runtime_checkable
class SharedState(Protocol):
    """A state backend: each operation in a sync and an async form."""

    def run(self, op: StateOp) -> Any: ...

    async def arun(self, op: StateOp) -> Any: ...


__all__ = ["SharedState", "StateFull", "StateOp", "StateUnavailable", "Transition"]
