"""What RedisState sends for each operation and makes of the reply: keys, scripts, and the
per-process breaker snapshots that keep the passing path at one round trip (redis.py has the
theory of operation). No I/O here.

One round trip per passing request. Each process keeps, per breaker, the last state a reply
showed (a snapshot) and counts the permits it holds that are not yet recorded or released.
While the snapshot shows closed, is younger than ``breaker_cache_ttl`` seconds, and fewer
than ``breaker_cache_permits`` permits are outstanding, ``acquire`` is answered locally; the
``record`` that follows is the one round trip, and its reply refreshes the snapshot. While
the snapshot shows open, ``acquire`` answers None locally until the server's reopening time
(converted to a local deadline that can only end early). Anything else asks the server.

The race this allows, and why it is small. When the fleet's circuit opens at time T, every
reply the server computes after T says open, and a process that receives one stops at once.
Until then a process grants locally only while fewer than ``breaker_cache_permits`` of its
permits are outstanding, and only within ``breaker_cache_ttl`` of its last reply; the calls
it had in flight at T free slots as they finish. So after T a process starts at most
``breaker_cache_permits + (its calls in flight at T)`` calls, and a failing provider is called
at most ``failure_threshold + 2 x (calls in flight fleet-wide at T) + processes x
breaker_cache_permits`` times in all, the in-flight part being there in one process too. A
process that calls one at a time (outstanding <= 1) adds nothing beyond its one call in
flight: the reply to that call says open. ``breaker_cache_permits=0`` makes every
``acquire`` a round trip (two per request).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._breaker import Permit, State
from ._redis_lua import BREAKER, COUNTER, REMEMBER, SPEND, Script
from ._state import DEFAULT_PROBE_LEASE, StateFull, StateOp, Stored, Transition

#: ":" too: ProofOfWork's levels above the first are "pow:1", "pow:2". Unambiguous, as the
#: digest that follows a namespace in a key is hex, never holding a ":".
_NAMESPACE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: A breaker key lives this long past its last write: long enough that a circuit's state
#: (and its failure count) is never forgotten while it matters.
_BREAKER_TTL_MS = 86_400_000
_STATES = {"c": State.CLOSED, "o": State.OPEN, "h": State.HALF_OPEN}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class _Snapshot:
    """The last breaker state a reply showed this process (see the module docstring)."""

    __slots__ = ("generation", "open_until", "state", "valid_until")

    def __init__(self, state: str, generation: int, valid_until: float, open_until: float):
        self.state = state
        self.generation = generation
        self.valid_until = valid_until
        self.open_until = open_until


class _Call:
    """One Redis command an operation needs, and what to make of its reply."""

    __slots__ = ("args", "parse", "script", "sent")

    def __init__(self, script: Script | None, args: tuple[Any, ...], parse: Any) -> None:
        self.script = script
        self.args = args
        self.parse = parse
        self.sent = 0.0


class _Answered:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class RedisPlans:
    """The planning half of ``RedisState`` (which sets these attributes)."""

    prefix: str
    breaker_cache_ttl: float
    breaker_cache_permits: int
    max_entries: int
    capacities: Mapping[str, int]
    clock_skew: float
    _lock: threading.Lock
    _snapshots: dict[str, _Snapshot]
    _outstanding: dict[str, int]
    _planners: dict[str, Any]

    def _plan(self, op: StateOp) -> _Call | _Answered:
        try:
            planner = self._planners[op.name]
        except KeyError:
            raise ValueError(f"unknown state operation {op.name!r}") from None
        result: _Call | _Answered = planner(*op.args)
        return result

    # -- keys -------------------------------------------------------------------------------

    def _key(self, kind: str, *parts: str) -> str:
        return "{" + self.prefix + ":" + kind + ":" + ":".join(parts) + "}"

    @staticmethod
    def _namespace(namespace: str) -> str:
        if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
            raise ValueError("a state namespace is 1 to 64 of A-Z a-z 0-9 _ . : -")
        return namespace

    # -- the breaker ------------------------------------------------------------------------

    def _breaker_args(
        self, name: str, op: str, threshold: int, reset_timeout: float, lease: float
    ) -> list[Any]:
        reset_ms = int(reset_timeout * 1000)
        lease_ms = _ms(lease)
        ttl = max(_BREAKER_TTL_MS, 2 * reset_ms + lease_ms)
        return [self._key("breaker", name), op, threshold, reset_ms, lease_ms, ttl]

    def _plan_breaker_acquire(
        self, name: str, threshold: int, reset_timeout: float, lease: float | None = None
    ) -> _Call | _Answered:
        now = time.monotonic()
        with self._lock:
            snap = self._snapshots.get(name)
            if snap is not None:
                if snap.state == "c":
                    held = self._outstanding.get(name, 0)
                    if now < snap.valid_until and held < self.breaker_cache_permits:
                        self._outstanding[name] = held + 1
                        return _Answered(Permit(probe=False, generation=snap.generation))
                elif snap.state == "o" and now < snap.open_until:
                    return _Answered(None)
        args = self._breaker_args(
            name,
            "acquire",
            threshold,
            reset_timeout,
            DEFAULT_PROBE_LEASE if lease is None else lease,
        )
        return _Call(BREAKER, (*args, 0, 0, 0), self._parse_acquire(name))

    def _parse_acquire(self, name: str) -> Any:
        def parse(reply: list[Any], call: _Call) -> Permit | None:
            state, generation = _text(reply[0]), int(reply[1])
            self._remember_snapshot(name, state, generation, int(reply[4]), call.sent)
            if not int(reply[2]):
                return None
            probe = bool(int(reply[3]))
            if not probe:
                with self._lock:
                    self._outstanding[name] = self._outstanding.get(name, 0) + 1
            cooled = len(reply) > 5 and bool(int(reply[5]))
            return Permit(probe=probe, generation=generation, cooled=cooled)

        return parse

    def _plan_breaker_record(
        self, name: str, threshold: int, reset_timeout: float, permit: Permit, ok: bool
    ) -> _Call:
        self.forget_permit(name, permit)
        args = self._breaker_args(name, "record", threshold, reset_timeout, DEFAULT_PROBE_LEASE)
        flags = (permit.generation, int(permit.probe), int(bool(ok)))
        return _Call(BREAKER, (*args, *flags), self._parse_record(name))

    def _parse_record(self, name: str) -> Any:
        def parse(reply: list[Any], call: _Call) -> Transition | None:
            old, new, generation = _text(reply[0]), _text(reply[1]), int(reply[2])
            self._remember_snapshot(name, new, generation, int(reply[3]), call.sent)
            return None if old == new else Transition(_STATES[old], _STATES[new])

        return parse

    def _plan_breaker_release(self, name: str, permit: Permit) -> _Call | _Answered:
        if not permit.probe:
            self.forget_permit(name, permit)
            return _Answered(None)  # only a probe holds anything on the server
        args = self._breaker_args(name, "release", 1, 0.0, DEFAULT_PROBE_LEASE)
        return _Call(BREAKER, (*args, permit.generation, 1, 0), lambda reply, call: None)

    def _plan_breaker_state(self, name: str, threshold: int, reset_timeout: float) -> _Call:
        args = self._breaker_args(name, "state", threshold, reset_timeout, DEFAULT_PROBE_LEASE)
        return _Call(BREAKER, (*args, 0, 0, 0), self._parse_state(name))

    def _parse_state(self, name: str) -> Any:
        def parse(reply: list[Any], call: _Call) -> State:
            # A state reply is as fresh as any other: an acquire that follows one saying
            # half-open must ask the server, not an older snapshot that still says open.
            state, generation = _text(reply[0]), int(reply[1])
            if generation:  # 0: no breaker key on the server, nothing to remember
                self._remember_snapshot(name, state, generation, int(reply[2]), call.sent)
            return _STATES[state]

        return parse

    def forget_permit(self, name: str, permit: Permit) -> None:
        """``permit`` is handed back (recorded or released, here or elsewhere): no I/O.

        ``FailoverState`` calls it when it records one of our permits in-process during an
        outage, so the count of outstanding permits does not leak."""
        if permit.probe:
            return
        with self._lock:
            held = self._outstanding.get(name, 0)
            if held > 1:
                self._outstanding[name] = held - 1
            else:
                self._outstanding.pop(name, None)

    def _remember_snapshot(
        self, name: str, state: str, generation: int, open_ms_left: int, sent: float
    ) -> None:
        # ``sent`` precedes the server's clock reading, and the script reads that clock in
        # whole milliseconds (the time left may be up to 1 ms less than it says), so a
        # deadline of ``sent`` plus one millisecond less than the time left can only end
        # early, never late.
        with self._lock:
            snap = self._snapshots.get(name)
            if snap is not None and snap.generation > generation:
                return  # a reply that left the server before the one we already hold
            if state == "h":
                self._snapshots.pop(name, None)
                return
            self._snapshots[name] = _Snapshot(
                state,
                generation,
                sent + self.breaker_cache_ttl,
                sent + max(0, open_ms_left - 1) / 1000,
            )

    # -- replay memory and budgets ----------------------------------------------------------

    def _plan_remember(self, namespace: str, key: str, ttl: float) -> _Call:
        # One sorted set per namespace: its capacity counted exactly, expiry on the server's
        # clock, plus the skew hosts' clocks may have (a host whose clock lags still finds a
        # key the others remembered until the challenge's expiry by their clocks).
        capacity = self.capacities.get(namespace, self.max_entries)
        redis_key = self._key("replay", self._namespace(namespace))
        args = (redis_key, _digest(key), _ms(ttl + self.clock_skew), capacity)

        def parse(reply: list[Any], call: _Call) -> Stored:
            first, held = int(reply[0]), int(reply[1])
            if first < 0:
                raise StateFull(f"{capacity} unexpired entries in {namespace!r}")
            return Stored(bool(first), held / capacity)

        return _Call(REMEMBER, args, parse)

    def _plan_spend(self, namespace: str, bucket: str, limit: int, window: float) -> _Call:
        redis_key = self._key("budget", self._namespace(namespace), _digest(bucket))
        return _Call(
            SPEND, (redis_key, int(limit), _ms(window)), lambda reply, call: bool(int(reply))
        )

    # -- counters (clearance revocation) ---------------------------------------------------

    def _plan_read_counter(self, namespace: str, key: str) -> _Call:
        redis_key = self._key("counter", self._namespace(namespace), _digest(key))
        return _Call(COUNTER, (redis_key, "read"), lambda reply, call: int(reply))

    def _plan_bump_counter(self, namespace: str, key: str) -> _Call:
        # No TTL, on purpose: a revocation generation must outlive every cookie it revoked.
        redis_key = self._key("counter", self._namespace(namespace), _digest(key))
        return _Call(COUNTER, (redis_key, "bump"), lambda reply, call: int(reply))


__all__ = ["RedisPlans"]
