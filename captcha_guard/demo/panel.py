"""The demo's live panel: what the gate's event hooks told it, kept for the page to poll.

``Panel.hooks()`` is the ``event_hooks=`` mapping the demo gives its ``CaptchaGuard``; every
verdict, breaker change and store error lands here, and ``snapshot()`` is what the page's
``GET /demo/panel`` reads. The panel knows nothing the hooks did not say, except each
provider's configured ``reset_timeout``: an open circuit whose timeout has run is half open
(the breaker's own ``state`` reads so too), waiting for the next request to be its probe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._breaker import CircuitBreaker, State
from .._events import BreakerEvent, StoreErrorEvent, VerdictEvent
from .._verdict import Outcome

#: How many verdicts and breaker changes the panel keeps (newest first on the page).
RECENT = 8


@dataclass
class _Circuit:
    breaker: CircuitBreaker
    state: State = State.CLOSED
    changed_at: float | None = None  # monotonic time of the last reported change


class Panel:
    """Counts and recent events per provider, from the hooks only. Thread-safe: the hooks
    run on the server's event loop, the snapshot may be read from anywhere."""

    def __init__(
        self,
        breakers: Mapping[str, CircuitBreaker],
        *,
        local: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._circuits = {name: _Circuit(breaker) for name, breaker in breakers.items()}
        self._local = local  # providers that answer locally: no call, so no circuit
        self._verdicts: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._changes: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._counts = dict.fromkeys(
            ("passed", "rejected", "fallback", "fallback_refused", "replay_refused"), 0
        )
        self._store_errors = 0
        self._serial = 0

    def hooks(self) -> dict[str, list[Callable[[Any], None]]]:
        return {
            "verdict": [self.on_verdict],
            "breaker": [self.on_breaker],
            "store_error": [self.on_store_error],
        }

    def on_verdict(self, event: VerdictEvent) -> None:
        with self._lock:
            self._serial += 1
            refused = event.fallback is not None and event.fallback.startswith("refused")
            if event.replay is not None:
                self._counts["replay_refused"] += 1
            if refused:
                self._counts["fallback_refused"] += 1
            elif event.outcome is Outcome.FALLBACK:
                self._counts["fallback"] += 1
            elif event.outcome is Outcome.PASSED:
                self._counts["passed"] += 1
            else:
                self._counts["rejected"] += 1
            self._verdicts.appendleft(
                {
                    "id": self._serial,
                    "at": self._wall(),
                    "provider": event.provider,
                    "rule": event.rule,
                    "outcome": event.outcome.value,
                    "code": event.code,
                    "duration": event.duration,
                    "fallback": event.fallback,
                    "replay": event.replay,
                }
            )

    def on_breaker(self, event: BreakerEvent) -> None:
        with self._lock:
            circuit = self._circuits.get(event.provider)
            if circuit is not None:
                circuit.state = event.new
                circuit.changed_at = self._clock()
            self._changes.appendleft(
                {
                    "at": self._wall(),
                    "provider": event.provider,
                    "old": event.old.value,
                    "new": event.new.value,
                }
            )

    def on_store_error(self, event: StoreErrorEvent) -> None:
        with self._lock:
            self._store_errors += 1

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            circuits = []
            for name, circuit in self._circuits.items():
                state, probe_in = circuit.state, None
                if state is State.OPEN and circuit.changed_at is not None:
                    left = circuit.changed_at + circuit.breaker.reset_timeout - now
                    if left > 0:
                        probe_in = round(left, 1)
                    else:
                        state = State.HALF_OPEN  # cooled: the next request is the probe
                circuits.append(
                    {
                        "provider": name,
                        "state": state.value,
                        "probe_in": probe_in,
                        "failure_threshold": circuit.breaker.failure_threshold,
                        "reset_timeout": circuit.breaker.reset_timeout,
                    }
                )
            circuits += [
                {"provider": name, "state": "local", "probe_in": None} for name in self._local
            ]
            return {
                "breakers": circuits,
                "counts": dict(self._counts),
                "store_errors": self._store_errors,
                "verdicts": list(self._verdicts),
                "changes": list(self._changes),
            }


__all__ = ["RECENT", "Panel"]
