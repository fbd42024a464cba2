"""Prometheus metrics kept by event hooks (the extra ``captcha-guard[prometheus]``).

    from captcha_guard.prometheus import event_hooks
    app = CaptchaGuard(app, rules=[...], provider=..., event_hooks=event_hooks())

The hooks are plain functions, so the same mapping serves both doors. Every label value comes
from configuration (provider names, rule patterns) or from a closed set of our own words;
anything else an event carries is folded into ``"other"``, so no request can grow the number
of series.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, one file per worker): the counters and the
histogram add up across workers as prometheus_client always does. The breaker gauge uses
``multiprocess_mode="mostrecent"``: for each ``{provider,state}`` the collector keeps the value
with the newest timestamp among all workers' files. One transition writes all three states of
its provider with one and the same timestamp, so for every provider a single write (the most
recent transition any worker saw; ties go to the same file for all three) supplies all three
values, and the exposed gauge is one-hot whatever the interleaving of workers. A ``max`` or
``sum`` mode would show a provider ``open`` in one worker and ``closed`` in another at once.
With a shared ``state=`` (Redis) there is one fleet-wide breaker and the newest transition is
its state; with per-process breakers it is the state the most recently changed worker is in.
A provider without a transition since start shows no series (read it as closed).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:  # pragma: no cover - the extra is what installs it
    raise ImportError(
        "captcha_guard.prometheus needs prometheus-client: pip install 'captcha-guard[prometheus]'"
    ) from exc

from ._breaker import State
from ._events import (
    CLEARANCE_RESULTS,
    FALLBACK_ALLOWED,
    FALLBACK_REFUSED_BUDGET,
    FALLBACK_REFUSED_CAPACITY,
    FALLBACK_REFUSED_REPLAY,
    FALLBACK_REFUSED_RULE,
    BreakerEvent,
    ClearanceEvent,
    PowLevelEvent,
    PrivateTokenEvent,
    StoreErrorEvent,
    VerdictEvent,
)

#: Seconds; provider calls time out at 5 s by default (the vendors' advice).
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_DECISIONS = frozenset(
    {
        FALLBACK_ALLOWED,
        FALLBACK_REFUSED_REPLAY,
        FALLBACK_REFUSED_BUDGET,
        FALLBACK_REFUSED_CAPACITY,
        FALLBACK_REFUSED_RULE,
    }
)
_REPLAY_KINDS = frozenset({"fallback", "proof_of_work"})
_STORES = frozenset({"breaker", "replay", "fallback_budget", "clearance"})
_POW_SCOPES = frozenset({"fleet", "network"})
_OUTCOMES = frozenset({"passed", "rejected", "fallback"})
_STATES = tuple(state.value for state in State)
_TOKEN_ACTIONS = frozenset({"challenge", "redeem", "directory"})
_TOKEN_CODES = frozenset(
    {
        "sent", "greased", "off", "ok", "failed", "valid", "replayed", "invalid",
        "unknown_challenge", "unknown_key", "malformed", "unavailable",
    }
)  # fmt: skip
_CLEARANCE_RESULTS = frozenset(CLEARANCE_RESULTS)
OTHER = "other"

#: Where breaker transitions get their stamps (a module attribute, so a test can move it).
clock: Callable[[], float] = time.time

Hook = Callable[[Any], None]


def _closed_set(value: object, allowed: frozenset[str]) -> str:
    text = getattr(value, "value", value)
    return text if isinstance(text, str) and text in allowed else OTHER


def _label(value: object) -> str:
    """A configured name as a label value (a compiled rule pattern gives its source)."""
    pattern = getattr(value, "pattern", None)
    if isinstance(pattern, str):
        return pattern
    return value if isinstance(value, str) else OTHER


class _Metrics:
    """The metrics of one registry. Made once per registry: two doors in one process
    (or ``from_file`` called twice) share them instead of registering them twice."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.verifications = Counter(
            "captcha_guard_verifications",
            "Protected requests judged, by provider, rule and outcome.",
            ("provider", "rule", "outcome"),
            registry=registry,
        )
        self.duration = Histogram(
            "captcha_guard_provider_request_duration_seconds",
            "Time the provider's verification call took (calls actually made).",
            ("provider",),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.breaker = Gauge(
            "captcha_guard_breaker_state",
            "Circuit breaker state per provider, one-hot over closed, open and half_open.",
            ("provider", "state"),
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.fallbacks = Counter(
            "captcha_guard_fallbacks",
            "Requests that met an unavailable provider, by what was decided.",
            ("provider", "decision"),
            registry=registry,
        )
        self.replays = Counter(
            "captcha_guard_replays_refused",
            "One-time captchas refused because they were used before, by kind.",
            ("kind",),
            registry=registry,
        )
        self.store_errors = Counter(
            "captcha_guard_store_errors",
            "Shared-state operations that failed (the in-process state stood in), by store.",
            ("store",),
            registry=registry,
        )
        self.private_tokens = Counter(
            "captcha_guard_private_tokens",
            "Private Access Tokens: challenges served, tokens redeemed and issuer key fetches, "
            "by action and result.",
            ("action", "code"),
            registry=registry,
        )
        self.pow_level = Gauge(
            "captcha_guard_pow_level",
            "Proof-of-work level served to everyone under pressure (0: the first), per provider.",
            ("provider",),
            registry=registry,
            multiprocess_mode="max",
        )
        self.pow_raises = Counter(
            "captcha_guard_pow_level_changes",
            "Proof-of-work level changes under pressure, by scope (fleet, network) and way.",
            ("provider", "scope", "way"),
            registry=registry,
        )
        self.clearances = Counter(
            "captcha_guard_clearances",
            "Clearance cookies: issued, cleared a request, or refused (by why), by result.",
            ("result",),
            registry=registry,
        )
        self._lock = threading.Lock()
        self._last_stamp = 0.0

    def on_verdict(self, event: VerdictEvent) -> None:
        provider = _label(event.provider)
        outcome = _closed_set(event.outcome, _OUTCOMES)
        self.verifications.labels(provider, _label(event.rule), outcome).inc()
        if event.duration is not None and event.duration >= 0:
            self.duration.labels(provider).observe(event.duration)
        if event.fallback is not None:
            self.fallbacks.labels(provider, _closed_set(event.fallback, _DECISIONS)).inc()
        if event.replay is not None:
            self.replays.labels(_closed_set(event.replay, _REPLAY_KINDS)).inc()

    def on_breaker(self, event: BreakerEvent) -> None:
        provider = _label(event.provider)
        new = _closed_set(event.new, frozenset(_STATES))
        with self._lock:
            # Strictly increasing within this process, so a clock stepped back by NTP cannot
            # make this transition lose to the one before it.
            stamp = max(clock(), self._last_stamp + 1e-6)
            self._last_stamp = stamp
            for state in _STATES:
                _set_at(self.breaker.labels(provider, state), 1.0 if state == new else 0.0, stamp)

    def on_store_error(self, event: StoreErrorEvent) -> None:
        self.store_errors.labels(_closed_set(event.store, _STORES)).inc()

    def on_private_token(self, event: PrivateTokenEvent) -> None:
        action = _closed_set(event.action, _TOKEN_ACTIONS)
        self.private_tokens.labels(action, _closed_set(event.code, _TOKEN_CODES)).inc()

    def on_clearance(self, event: ClearanceEvent) -> None:
        self.clearances.labels(_closed_set(event.result, _CLEARANCE_RESULTS)).inc()

    def on_pow_level(self, event: PowLevelEvent) -> None:
        provider = _label(event.provider)
        scope = _closed_set(event.scope, _POW_SCOPES)
        self.pow_raises.labels(provider, scope, "up" if event.new > event.old else "down").inc()
        if scope == "fleet":
            self.pow_level.labels(provider).set(event.new)


def _set_at(child: Gauge, value: float, stamp: float) -> None:
    """Set a ``mostrecent`` gauge with a timestamp we choose. ``Gauge.set`` stamps each call
    with its own ``time.time()``; the three states of one transition must share one stamp for
    the one-hot argument above, and the value classes take it (``set(value, timestamp)``)."""
    setter = getattr(getattr(child, "_value", None), "set", None)
    if setter is None:  # pragma: no cover - a prometheus_client without the value classes
        child.set(value)
    else:
        setter(value, timestamp=stamp)


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, _Metrics] = weakref.WeakKeyDictionary()
_BY_REGISTRY_LOCK = threading.Lock()


def _metrics(registry: CollectorRegistry) -> _Metrics:
    with _BY_REGISTRY_LOCK:
        metrics = _BY_REGISTRY.get(registry)
        if metrics is None:
            metrics = _BY_REGISTRY[registry] = _Metrics(registry)
        return metrics


def event_hooks(registry: CollectorRegistry | None = None) -> dict[str, list[Hook]]:
    """Hooks for a door's ``event_hooks=`` that keep the ``captcha_guard_*`` metrics in
    ``registry`` (prometheus_client's default registry when None)."""
    metrics = _metrics(REGISTRY if registry is None else registry)
    return {
        "verdict": [metrics.on_verdict],
        "breaker": [metrics.on_breaker],
        "store_error": [metrics.on_store_error],
        "private_token": [metrics.on_private_token],
        "pow_level": [metrics.on_pow_level],
        "clearance": [metrics.on_clearance],
    }


__all__ = ["DURATION_BUCKETS", "event_hooks"]
