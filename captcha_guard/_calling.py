"""The provider's steps of the flow: its local check, then asking it (the breaker's permit,
the call, reading the answer, the breaker's record).

Generators like the flow (``_flow.py``). ``shape`` returns a claim to send or a verdict made
without a call. ``ask`` yields the breaker's state operations, the ``ProviderCall`` and the
breaker's events, and returns what the provider said (a verdict, or a failure the fallback
decides on), how long the call took, or ``None`` when no connection (or no event-loop time)
came free: our capacity, a 503 the breaker never counts. Breaker operations never end a
request with a 500: a backend that fails one (the failover keeps breakers in process, so only
a bug can) is the circuit's "open".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from ._breaker import Permit, State
from ._effects import BUSY, CallProblem, Effect, Emit, EventHook, ProviderCall
from ._events import BreakerEvent, PowLevelEvent
from ._fields import FieldError, Fields
from ._request import ClientRequest
from ._state import StateOp, Transition
from ._verdict import Code, Fault, Outcome, ProviderFailure, Verdict
from ._version import __version__
from .providers._base import Claim
from .providers._pow_pressure import count as pressure_count
from .providers._wire import ProviderRequest, ProviderResponse

if TYPE_CHECKING:
    from ._route import Route

logger = logging.getLogger("captcha_guard")

#: A shared breaker's probe is a lease this much longer than the provider's timeout: if its
#: holder dies, another worker probes after that.
PROBE_LEASE_MARGIN = 1.0

#: Sent with every provider call: some vendors' edge firewalls refuse a request naming no agent.
USER_AGENT = f"captcha-guard/{__version__}"

#: What a call problem is called in the events' closed set (others: ``PROVIDER_ERROR``).
_CAUSES = {"timeout": Code.PROVIDER_TIMEOUT, "connect_error": Code.PROVIDER_UNREACHABLE}

Asked = tuple[Verdict | ProviderFailure, float | None]


def shape(
    route: Route, request: ClientRequest, fields: Fields, pow_hooks: Sequence[EventHook]
) -> Generator[Effect, Any, Claim | Verdict]:
    """The provider's local check: a claim to send, or a verdict without a call (a shape
    refused, or a provider that judges locally, as proof of work)."""
    provider = route.provider
    try:
        if route.remembers:
            # Judged here, but for its replay memory: an operation on the door's state.
            checked = yield from provider.check_flow(fields)  # type: ignore[attr-defined]
        else:
            checked = provider.check(fields, request)
    except FieldError as exc:
        return provider.rejected(str(exc))
    passed = isinstance(checked, Verdict) and checked.outcome is Outcome.PASSED
    if passed and getattr(provider, "hints", None):
        yield from _pow_pressure(route, request, checked, pow_hooks)
    return checked  # type: ignore[no-any-return]


def _pow_pressure(
    route: Route, request: ClientRequest, verdict: Verdict, hooks: Sequence[EventHook]
) -> Generator[Effect, Any, None]:
    """Count a passing proof-of-work solution toward the pressure that raises levels
    (providers/_pow_pressure.py): ``spend`` operations on the door's state. Never changes
    the verdict."""
    provider: Any = route.provider
    level = verdict.details.get("level", 0)
    args = (route.provider_name, provider.pressure, provider.hints, level, request.client_host)
    changes = yield from pressure_count(*args)  # a failed spend: count() decides
    for change in changes if hooks else ():
        event = PowLevelEvent(route.provider_name, change.scope, change.old, change.new)
        yield Emit(hooks, event)


def ask(
    route: Route,
    claim: Claim,
    clock: Callable[[], float],
    hooks: Sequence[EventHook],
    abandon: Callable[[str, Permit], None] | None,
) -> Generator[Effect, Any, Asked | None]:
    """What ``route``'s provider said of ``claim`` and the call's duration (None: no call
    made), or None when the call found no capacity of ours. ``hooks``: the breaker's."""
    name, provider = route.provider_name, route.provider
    permit = yield from _acquire(route)
    if permit is not None and permit.cooled and hooks:
        # The cool-down ended with this caller's acquire: no record reports that move.
        yield Emit(hooks, BreakerEvent(name, State.OPEN, State.HALF_OPEN))
    if permit is None:
        return ProviderFailure("circuit open", cause=Code.CIRCUIT_OPEN), None
    settled = False
    try:
        try:
            outgoing = with_agent(provider.build_request(claim))
        except Exception:
            logger.exception("captcha provider %s could not build its request", name)
            settled = True
            yield from _release(route, permit)
            return ProviderFailure("request could not be built", Fault.OPERATOR), None
        started = clock()
        answer = yield ProviderCall(outgoing, provider.timeout, name)
        duration = clock() - started
        if answer is BUSY:
            settled = True
            yield from _release(route, permit)
            logger.warning(
                "captcha provider %s: no free connection or event-loop time within %ss",
                name,
                provider.timeout,
            )
            return None
        result = _read(route, claim, answer)
        settled = True
        transition = yield from _record(route, permit, not isinstance(result, ProviderFailure))
    finally:
        if not settled and abandon is not None:
            # Cancelled while the call was out: count nothing, free a probe. (A shared
            # breaker's probe is a lease on the server, and expires on its own.)
            abandon(name, permit)
    if transition is not None and hooks:
        yield Emit(hooks, BreakerEvent(name, transition.old, transition.new))
    return result, duration


def _read(
    route: Route, claim: Claim, answer: ProviderResponse | CallProblem
) -> Verdict | ProviderFailure:
    if isinstance(answer, CallProblem):
        cause = _CAUSES.get(answer, Code.PROVIDER_ERROR)
        return ProviderFailure(str(answer).replace("_", " "), cause=cause)
    try:
        return route.provider.read_response(claim, answer)
    except Exception:
        logger.exception("captcha provider %s: unreadable answer", route.provider_name)
        return ProviderFailure("answer could not be read")


def _acquire(route: Route) -> Generator[Effect, Any, Permit | None]:
    breaker = route.provider.breaker
    lease = route.provider.timeout + PROBE_LEASE_MARGIN
    args = (route.provider_name, breaker.failure_threshold, breaker.reset_timeout, lease)
    try:
        permit: Permit | None = yield StateOp("breaker_acquire", args)
    except Exception as exc:
        _failed("acquire", route, exc)
        return None
    return permit


def _record(route: Route, permit: Permit, ok: bool) -> Generator[Effect, Any, Transition | None]:
    breaker = route.provider.breaker
    args = (route.provider_name, breaker.failure_threshold, breaker.reset_timeout, permit, ok)
    try:
        transition: Transition | None = yield StateOp("breaker_record", args)
    except Exception as exc:
        _failed("record", route, exc)
        return None
    return transition


def _release(route: Route, permit: Permit) -> Generator[Effect, Any, None]:
    try:
        yield StateOp("breaker_release", (route.provider_name, permit))
    except Exception as exc:
        _failed("release", route, exc)


def _failed(step: str, route: Route, exc: Exception) -> None:
    logger.warning(
        "captcha breaker %s of %s failed (%s)", step, route.provider_name, type(exc).__name__
    )


def with_agent(request: ProviderRequest) -> ProviderRequest:
    """``request`` naming us as its User-Agent, unless it names one already."""
    for name, _ in request.headers:
        if name.lower() == "user-agent":
            return request
    return ProviderRequest(
        request.method, request.url, (*request.headers, ("User-Agent", USER_AGENT)), request.body
    )


__all__ = ["PROBE_LEASE_MARGIN", "USER_AGENT", "Asked", "ask", "shape", "with_agent"]
