"""The gate: every decision about a protected request, with no I/O.

Theory of operation. ``Gate`` holds the configuration (rules bound to providers, limits, the
fallback guard) and makes every decision; the two front doors only read, perform and send.
For each protected request a door runs one flow, ``gate.decide(route, request)``, a generator
in the manner of h11 and of httpx's ``auth_flow``: it yields the I/O it needs and is sent the
result, and its return value is the answer.

    flow = gate.decide(route, request)
    result = None
    while True:
        effect = flow.send(result)        # StopIteration.value: Pass | Deny | Abandon
        result = perform(effect)          # the door's only job

The effects, and what the door sends back:

    ReadBody(limit, timeout)  ->  bytes, or a BodyProblem (too large, timed out, gone, short)
    ProviderCall(request, timeout, provider)
                              ->  ProviderResponse, or a CallProblem (the provider had its time
                                  and failed), or BUSY (no connection free, or our own loop too
                                  slow to give the provider its time: never the provider's fault)
    Emit(hooks, event)        ->  None (the door calls the hooks; a hook that raises is logged)
    StateOp(name, args)       ->  the operation's result on the door's state backend (every
                                  door has one, in memory by default), or its exception
                                  thrown into the flow

A framework adapter (Django, Flask, FastAPI) drives the same flow with ``request.read_fields``
set: the fields come from the request the framework parsed for the view, so no ``ReadBody`` is
yielded and a ``Pass`` carries no body (the framework has it).

If the door is cancelled while an effect is out, it closes the flow (``flow.close()``): the
flow's ``finally`` hands a breaker permit back without counting anything (``abandon``: no I/O).

Order of a protected request: content-length → body → fields → local shape check → breaker →
provider call → reading the answer into a verdict or a provider failure → breaker record →
fallback guard (replay, budget) → the answer.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ._breaker import Permit, State
from ._clearance import Clearance, rule_scope
from ._events import (
    FALLBACK_ALLOWED,
    FALLBACK_REFUSED_BUDGET,
    FALLBACK_REFUSED_CAPACITY,
    FALLBACK_REFUSED_REPLAY,
    FALLBACK_REFUSED_RULE,
    BreakerEvent,
    PowLevelEvent,
    VerdictEvent,
)
from ._fallback import OVER_BUDGET, REPLAYED, FallbackLimitOption, as_limit, refusal_flow
from ._fields import BodyError, FieldError, ParseLimits, collect
from ._head import check_head
from ._logs import OutageLog, SuspectLog, note_verdict
from ._request import ClientRequest
from ._responses import (
    Denial,
    Reply,
    bad_request,
    busy,
    json_reply,
    rejected,
    render,
    too_large,
    too_slow,
    unavailable,
)
from ._rules import BAD_PATH, BadPath, Rule, RuleTable
from ._state import StateOp, Transition
from ._verdict import REFUSED, Fault, Outcome, ProviderFailure, Verdict
from ._version import __version__
from .providers._base import Claim, Provider
from .providers._pow_pressure import count as pressure_count
from .providers._pow_v2 import IssueBusy
from .providers._wire import ProviderRequest, ProviderResponse

if TYPE_CHECKING:
    from ._privacy_pass import PrivateTokens
    from ._token_flow import TokenGate

logger = logging.getLogger("captcha_guard")

DEFAULT_MAX_BODY_SIZE = 1_048_576
#: Seconds a protected request's whole body may take to arrive: a client trickling bytes
#: holds a connection and memory, so it is cut off. Generous for a login form on a bad link.
DEFAULT_BODY_TIMEOUT = 10.0

#: A protected-method request whose path holds a control character (see _rules.py).
BAD_PATH_DENIAL = Denial(400, "bad_path", "control character in the request path")
#: One whose path (below the mount point) does not begin with "/", as ``POST login`` (_rules.py).
NO_SLASH_DENIAL = Denial(400, "bad_path", "the request path does not begin with '/'")

#: A shared breaker's probe is a lease this much longer than the provider's timeout: if its
#: holder dies, another worker probes after that.
PROBE_LEASE_MARGIN = 1.0

#: Sent with every provider call: some vendors' edge firewalls refuse a request naming no agent.
USER_AGENT = f"captcha-guard/{__version__}"

# A content-length with more digits than this is over any max_body_size (and int() refuses
# strings of thousands of digits outright).
_MAX_LENGTH_DIGITS = 18

EventHook = Callable[[Any], Any]


# The effects a flow yields.


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Read the whole body: at most ``limit`` bytes, within ``timeout`` seconds."""

    limit: int
    timeout: float


class BodyProblem(str):
    """Why the body could not be read (sent back instead of the bytes)."""


TOO_LARGE: Final = BodyProblem("too_large")
TIMED_OUT: Final = BodyProblem("timed_out")
DISCONNECTED: Final = BodyProblem("disconnected")
INCOMPLETE: Final = BodyProblem("incomplete")  # shorter than its content-length
UNREADABLE: Final = BodyProblem("unreadable")


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """Send ``request``. ``timeout`` bounds the time the provider has, not our own waits."""

    request: ProviderRequest
    timeout: float
    provider: str


class CallProblem(str):
    """The provider had its time and gave no usable answer: the kind only (never a text
    that may carry a URL or a body). Sent back instead of a ProviderResponse."""


#: No connection came free in time, or our own event loop could not give the provider its
#: time: our capacity, never the provider's failure.
BUSY: Final = CallProblem("busy")


@dataclass(frozen=True, slots=True)
class Emit:
    hooks: Sequence[EventHook]
    event: object


Effect = ReadBody | ProviderCall | Emit | StateOp


# What a flow returns.


@dataclass(frozen=True, slots=True)
class Pass:
    """Call the app with exactly ``body`` (None: the body is unread, hand the app the
    request as it came) and ``verdict`` where the app finds it; add ``headers`` (a
    clearance cookie) to the app's answer."""

    verdict: Verdict
    body: bytes | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Deny:
    denial: Denial


@dataclass(frozen=True, slots=True)
class Abandon:
    """The client left before its body arrived: no one to answer, no reason to call the app."""


ABANDON: Final = Abandon()

Decision = Pass | Deny | Abandon


@dataclass(frozen=True, slots=True)
class Redeem:
    """``Gate.challenge``'s answer on the private-token path: run ``Gate.redeem``."""


REDEEM: Final = Redeem()
Flow = Generator[Effect, Any, Decision]


@dataclass(frozen=True)
class Route:
    """A rule bound to the provider it names and its effective fail-open setting."""

    rule: Rule
    provider_name: str
    provider: Provider
    fail_open: bool
    #: The rule as events and metrics label it: its pattern as configured.
    label: str
    #: A provider that judges locally with a replay memory in the door's state (proof of
    #: work: ``check_flow`` yields its one ``remember``).
    remembers: bool = False
    #: The clearance scope this rule honours and grants (None: a captcha every time).
    clearance_scope: str | None = None
    #: A private-token clearance also clears this rule (the rule opted in, the door has both).
    private_tokens: bool = False


class Gate:
    """The configuration and every decision, shared by both front doors."""

    def __init__(
        self,
        rules: Iterable[Rule],
        provider: Provider | None = None,
        providers: Mapping[str, Provider] | None = None,
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        fallback_limit: FallbackLimitOption = None,
        event_hooks: Mapping[str, Iterable[EventHook]] | None = None,
        prefixes: Iterable[str] = (),
        parse_limits: ParseLimits | None = None,
        clearance: Clearance | None = None,
        clock: Callable[[], float] = time.monotonic,
        private_tokens: PrivateTokens | None = None,
    ) -> None:
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int):
            raise TypeError("max_body_size must be an int (bytes)")
        if max_body_size < 0:
            raise ValueError("max_body_size must be >= 0")
        if isinstance(body_timeout, bool) or not isinstance(body_timeout, (int, float)):
            raise TypeError("body_timeout must be a number of seconds")
        if not body_timeout > 0:
            raise ValueError("body_timeout must be > 0 seconds")
        named = dict(providers or {})
        for name, candidate in [("provider", provider), *named.items()]:
            if candidate is not None and not isinstance(candidate, Provider):
                raise TypeError(f"{name}: expected a captcha_guard provider, got {candidate!r}")
        routes: list[Route] = []
        for rule in rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"rules must be Rule objects, got {rule!r}")
            routes.append(_bind(rule, provider, named, clearance is not None))
        self.routes = tuple(routes)
        #: As configured, for routes bound later (an adapter's decorated views).
        self.default_provider = provider
        self.named_providers = named
        self.max_body_size = max_body_size
        self.body_timeout = float(body_timeout)
        if parse_limits is not None and not isinstance(parse_limits, ParseLimits):
            raise TypeError("parse_limits must be a ParseLimits")
        self.parse_limits = parse_limits
        if clearance is not None and not isinstance(clearance, Clearance):
            raise TypeError("clearance must be a captcha_guard.Clearance")
        self.clearance = clearance
        self.fallback_limit = as_limit(fallback_limit)
        #: Hands back, without I/O, a permit whose call was cancelled while out (the door
        #: sets it to its state's ``abandon``).
        self.abandon: Callable[[str, Permit], None] | None = None
        self.tokens: TokenGate | None = None
        if private_tokens is not None:
            self.tokens = _token_gate(private_tokens, clearance, event_hooks)
            routes = [_opt_in(route) for route in routes]
            self.routes = tuple(routes)
        self.providers = tuple({id(r.provider): r.provider for r in routes}.values())
        self.hooks = _check_hooks(event_hooks)
        self._verdict_hooks = self.hooks.get("verdict", ())
        self._breaker_hooks = self.hooks.get("breaker", ())
        self._clock = clock
        self._outages = OutageLog(clock)
        self._suspects = SuspectLog(clock)
        # Most requests are GETs to unprotected pages: one set lookup turns them away.
        self._table = table = RuleTable(((r.rule, r) for r in routes), prefixes=prefixes)
        self._spelled = table.spelled if table.exhaustive else None
        self._challenges = _challenge_paths([provider, *named.values()])
        if self.tokens is not None and self.tokens.tokens.path in self._challenges:
            raise ValueError("the private-token path is a provider's challenge path too")
        #: The paths the doors answer with a challenge (a GET there is never the app's).
        self.challenge_paths = frozenset(
            [*self._challenges, *([self.tokens.tokens.path] if self.tokens is not None else [])]
        )

    def forget_outages(self) -> None:
        """Start the outage log (and the suspect-answer log) afresh: the next line of each
        is written at once."""
        self._outages = OutageLog(self._clock)
        self._suspects = SuspectLog(self._clock)

    # Before any byte is read.

    def match(self, method: str, path: str) -> Route | Denial | None:
        """The route protecting ``method path`` (the path below ``root_path``), None, or a
        400 ``bad_path`` for a protected-method path the rules cannot judge (_rules.py)."""
        spelled = self._spelled
        if spelled is not None and method not in spelled and method.isascii():
            return None  # RuleTable.match's own first test, inlined: the hot path
        found = self._table.match(method, path)
        if found.__class__ is BadPath:
            return BAD_PATH_DENIAL if found is BAD_PATH else NO_SLASH_DENIAL
        return found  # type: ignore[return-value]

    def challenge(
        self, method: str, path: str, request: ClientRequest | None = None
    ) -> Reply | Redeem | None:
        """A fresh challenge when ``path`` is a provider's challenge path, ``REDEEM`` on the
        private-token path (the door runs ``redeem``), else None. ``request`` (the GET, where
        the door has built it) lets the provider price the challenge for its sender
        (ProofOfWork's pressure signals and networks)."""
        if method != "GET":
            return None
        if self.tokens is not None and path == self.tokens.tokens.path:
            return REDEEM
        provider = self._challenges.get(path)
        if provider is None:
            return None
        try:
            document = provider.new_challenge(request)
        except IssueBusy as spent:
            # Issuing a v2 challenge runs a KDF; past its budget, say so rather than queue.
            headers, body = render(busy(), as_json=True)
            return Reply(503, [*headers, ("retry-after", str(spent.retry_after))], body)
        return json_reply(document)

    def check_length(self, declared: str | None) -> Denial | None:
        """The answer to a declared content-length before any byte is read: 400 if it is not
        a plain decimal number, 413 if it is over ``max_body_size``, None to go on."""
        if declared is None:
            return None
        if not (declared.isascii() and declared.isdigit()):  # '²'.isdigit() is True
            return bad_request("bad content-length")
        digits = declared.lstrip("0")
        if len(digits) > _MAX_LENGTH_DIGITS or int(digits or "0") > self.max_body_size:
            return too_large(self.max_body_size)
        return None

    def redeem(self, request: ClientRequest) -> Generator[Effect, Any, Reply]:
        """The flow of the private-token path (``challenge`` said ``REDEEM``)."""
        assert self.tokens is not None
        return self.tokens.serve(request)

    # The flow.

    def decide(self, route: Route, request: ClientRequest) -> Flow:
        """The whole judgement of one protected request (see the module's docstring)."""
        refused = check_head(request, self.parse_limits)
        if refused is not None:
            return Deny(Denial(refused.status, refused.code, str(refused)))
        early = self.check_length(request.content_length)
        if early is not None:
            return Deny(early)
        clearance, ctx = self.clearance, None
        if clearance is not None and route.clearance_scope is not None:
            ctx = clearance.context(
                request.client_host,
                request.headers.get("user-agent"),
                request.scheme == "https",
                request.headers.get("host"),
            )
            check = yield from clearance.check_flow(
                request.headers.get("cookie"), ctx, route.clearance_scope
            )
            if check.cleared:
                # Cleared by an earlier verified pass: no captcha, and no need for the body.
                verdict = Verdict(
                    Outcome.PASSED, "clearance", route.provider_name, {"clearance": "valid"}
                )
                yield from self._verdict_event(route, verdict, None)
                return Pass(verdict, None)
            if route.private_tokens and self.tokens is not None:
                cleared = yield from self.tokens.clear(request, ctx)
                if cleared is not None:
                    yield from self._verdict_event(route, cleared[0], None)
                    return Pass(cleared[0], None, cleared[1])
        decision = yield from self._judge(route, request)
        if (
            ctx is not None
            and clearance is not None
            and type(decision) is Pass
            and decision.verdict.outcome is Outcome.PASSED  # verified: never a fallback
        ):
            cookie = yield from clearance.issue_flow(ctx, route.clearance_scope)  # type: ignore[arg-type]
            if cookie is not None:
                decision = Pass(decision.verdict, decision.body, (("set-cookie", cookie),))
        return decision

    def _judge(self, route: Route, request: ClientRequest) -> Flow:
        """Body, fields, shape, breaker, call, verdict: the captcha itself."""
        read_fields = request.read_fields
        body: bytes | None = None
        if read_fields is None:
            body = yield ReadBody(self.max_body_size, self.body_timeout)
            if isinstance(body, BodyProblem):
                denial = _body_denial(body, self.max_body_size)
                return ABANDON if denial is None else Deny(denial)
            request.body = body
        try:
            if read_fields is not None:
                # An adapter: the fields as the framework parsed them for the view.
                fields = read_fields()
            else:
                fields = collect(
                    content_type=request.content_type,
                    body=body,  # type: ignore[arg-type]
                    query_string=request.query,
                    header_value=request.captcha_header,
                    limits=self.parse_limits,
                )
        except BodyError as exc:
            return Deny(Denial(exc.status, exc.code, str(exc)))
        provider = route.provider
        try:
            if route.remembers:
                # Judged here, but for its replay memory: an operation on the door's state.
                checked = yield from provider.check_flow(fields)  # type: ignore[attr-defined]
            else:
                checked = provider.check(fields, request)
        except FieldError as exc:
            checked = provider.rejected(str(exc))
        if isinstance(checked, Verdict):
            if checked.outcome is Outcome.PASSED and getattr(provider, "hints", None):
                yield from self._pow_pressure(route, request, checked)
            verdict = self._named(route, checked)
            yield from self._verdict_event(route, verdict, None)
            return self._answer(route, verdict, body)

        permit = yield from self._acquire(route)
        if permit is not None and permit.cooled and self._breaker_hooks:
            # The cool-down ended with this caller's acquire: no record reports that move.
            event = BreakerEvent(route.provider_name, State.OPEN, State.HALF_OPEN)
            yield Emit(self._breaker_hooks, event)
        if permit is None:
            failure = ProviderFailure("circuit open")
            verdict, refusal = yield from self._fallback(route, checked, failure)
            yield from self._verdict_event(route, verdict, None, refusal)
            return self._answer(route, verdict, body, refusal)
        settled = False
        try:
            try:
                outgoing = _with_agent(provider.build_request(checked))
            except Exception:
                logger.exception(
                    "captcha provider %s could not build its request", route.provider_name
                )
                settled = True
                yield from self._release(route, permit)
                failure = ProviderFailure("request could not be built", Fault.OPERATOR)
                verdict, refusal = yield from self._fallback(route, checked, failure)
                yield from self._verdict_event(route, verdict, None, refusal)
                return self._answer(route, verdict, body, refusal)
            started = self._clock()
            answer = yield ProviderCall(outgoing, provider.timeout, route.provider_name)
            duration = self._clock() - started
            if answer is BUSY:
                settled = True
                yield from self._release(route, permit)
                logger.warning(
                    "captcha provider %s: no free connection or event-loop time within %ss",
                    route.provider_name,
                    provider.timeout,
                )
                return Deny(busy())
            result = self._read(route, checked, answer)
            settled = True
            ok = not isinstance(result, ProviderFailure)
            transition = yield from self._record(route, permit, ok)
        finally:
            if not settled and self.abandon is not None:
                # Cancelled while the call was out: count nothing, free a probe. (A shared
                # breaker's probe is a lease on the server, and expires on its own.)
                self.abandon(route.provider_name, permit)
        if transition is not None and self._breaker_hooks:
            event = BreakerEvent(route.provider_name, transition.old, transition.new)
            yield Emit(self._breaker_hooks, event)
        if isinstance(result, ProviderFailure):
            verdict, refusal = yield from self._fallback(route, checked, result)
        else:
            verdict, refusal = self._named(route, result), None
        yield from self._verdict_event(route, verdict, duration, refusal)
        return self._answer(route, verdict, body, refusal)

    # State: operations the door performs on its backend.

    # Breaker operations never end a request with a 500: a backend that fails one (the
    # failover keeps breakers in process, so only a bug can) is the circuit's "open".

    def _acquire(self, route: Route) -> Generator[Effect, Any, Permit | None]:
        breaker = route.provider.breaker
        lease = route.provider.timeout + PROBE_LEASE_MARGIN
        args = (route.provider_name, breaker.failure_threshold, breaker.reset_timeout, lease)
        try:
            permit: Permit | None = yield StateOp("breaker_acquire", args)
        except Exception as exc:
            _breaker_failed("acquire", route, exc)
            return None
        return permit

    def _record(
        self, route: Route, permit: Permit, ok: bool
    ) -> Generator[Effect, Any, Transition | None]:
        breaker = route.provider.breaker
        args = (route.provider_name, breaker.failure_threshold, breaker.reset_timeout, permit, ok)
        try:
            transition: Transition | None = yield StateOp("breaker_record", args)
        except Exception as exc:
            _breaker_failed("record", route, exc)
            return None
        return transition

    def _release(self, route: Route, permit: Permit) -> Generator[Effect, Any, None]:
        try:
            yield StateOp("breaker_release", (route.provider_name, permit))
        except Exception as exc:
            _breaker_failed("release", route, exc)

    def _pow_pressure(
        self, route: Route, request: ClientRequest, verdict: Verdict
    ) -> Generator[Effect, Any, None]:
        """Count a passing proof-of-work solution toward the pressure that raises levels
        (providers/_pow_pressure.py): ``spend`` operations on the door's state. Never changes
        the verdict."""
        provider: Any = route.provider
        level = verdict.details.get("level", 0)
        args = (route.provider_name, provider.pressure, provider.hints, level, request.client_host)
        counting = pressure_count(*args)
        try:
            name, op_args = next(counting)
            while True:
                try:
                    within = yield StateOp(name, op_args)
                except Exception as exc:  # count() decides what a failed spend means
                    name, op_args = counting.throw(exc)
                else:
                    name, op_args = counting.send(within)
        except StopIteration as stop:
            changes = stop.value
        hooks = self.hooks.get("pow_level", ())
        for change in changes if hooks else ():
            event = PowLevelEvent(route.provider_name, change.scope, change.old, change.new)
            yield Emit(hooks, event)

    # The decisions the flow is made of.

    def _read(
        self, route: Route, claim: Claim, answer: ProviderResponse | CallProblem
    ) -> Verdict | ProviderFailure:
        if isinstance(answer, CallProblem):
            return ProviderFailure(str(answer).replace("_", " "))
        try:
            return route.provider.read_response(claim, answer)
        except Exception:
            logger.exception("captcha provider %s: unreadable answer", route.provider_name)
            return ProviderFailure("answer could not be read")

    def _answer(
        self, route: Route, verdict: Verdict, body: bytes | None, refusal: str | None = None
    ) -> Decision:
        if verdict.outcome is Outcome.PASSED:
            return Pass(verdict, body)
        if verdict.outcome is Outcome.REJECTED:
            return Deny(rejected(verdict))
        if refusal is None and REFUSED not in verdict.details:
            return Pass(verdict, body)
        return Deny(unavailable(verdict))  # fail_open=False, or a refused fallback

    def _named(self, route: Route, verdict: Verdict) -> Verdict:
        if verdict.provider != route.provider_name:
            verdict = Verdict(verdict.outcome, verdict.reason, route.provider_name, verdict.details)
        note_verdict(route.provider_name, verdict, self._suspects)
        return verdict

    def _fallback(
        self, route: Route, claim: Claim, failure: ProviderFailure
    ) -> Generator[Effect, Any, tuple[Verdict, str | None]]:
        """The verdict of a request whose provider could not judge it, and why a fallback
        was refused (one of the FALLBACK_REFUSED_* codes; None: let through)."""
        name = route.provider_name
        if failure.fault is Fault.OPERATOR:
            logger.error(
                "captcha provider %s is misconfigured (code %s): %s",
                name,
                failure.code or "-",
                failure.reason,
            )
        details: dict[str, object] = {"fault": failure.fault.value, "code": failure.code}
        if not route.fail_open:
            return Verdict(Outcome.FALLBACK, failure.reason, name, details), FALLBACK_REFUSED_RULE
        client = claim.request.client_host
        refusal = yield from refusal_flow(self.fallback_limit, claim.replay_key, client)
        if refusal is None:
            if failure.fault is not Fault.OPERATOR:
                self._outages.note(name, failure.reason)
            return Verdict(Outcome.FALLBACK, failure.reason, name, details), None
        outcome, why = refusal
        self._outages.note(name, failure.reason, why)
        details[REFUSED] = why  # a 503, or a 403 that reads generic (responses.rejected)
        if outcome is Outcome.FALLBACK:
            verdict = Verdict(outcome, f"{failure.reason}; {why}", name, details)
            return verdict, FALLBACK_REFUSED_CAPACITY
        code = {REPLAYED: FALLBACK_REFUSED_REPLAY, OVER_BUDGET: FALLBACK_REFUSED_BUDGET}
        return Verdict(outcome, why, name, details), code.get(why, FALLBACK_REFUSED_CAPACITY)

    # Events: yielded only when someone listens, so they cost nothing otherwise.

    def _verdict_event(
        self,
        route: Route,
        verdict: Verdict,
        duration: float | None,
        refusal: str | None = None,
    ) -> Generator[Effect, Any, None]:
        if not self._verdict_hooks:
            return
        fallback = None
        replay = None
        if verdict.details.get("fault") is not None:  # the provider could not judge
            fallback = refusal or FALLBACK_ALLOWED
            if refusal == FALLBACK_REFUSED_REPLAY:
                replay = "fallback"
        elif verdict.outcome is Outcome.REJECTED and verdict.details.get("replayed"):
            replay = "proof_of_work"
        event = VerdictEvent(
            provider=verdict.provider,  # the rule's provider, or "private_token"
            rule=route.label,
            outcome=verdict.outcome,
            code=_code(verdict, refusal),
            duration=duration,
            fallback=fallback,
            replay=replay,
        )
        yield Emit(self._verdict_hooks, event)


def _code(verdict: Verdict, refusal: str | None) -> str:
    if refusal is not None:
        return refusal
    if verdict.outcome is Outcome.PASSED:
        return "ok"
    code = verdict.details.get("error")
    if isinstance(code, str) and code:
        return code
    if verdict.outcome is Outcome.FALLBACK:
        # Why the provider could not judge, in a closed set (labels, dashboards).
        if verdict.details.get("fault") == Fault.OPERATOR.value:
            return "misconfigured"
        return _FALLBACK_CODES.get(verdict.reason, "provider_error")
    return "rejected"


_FALLBACK_CODES = {
    "circuit open": "circuit_open",
    "timeout": "provider_timeout",
    "connect error": "provider_unreachable",
}


def _breaker_failed(step: str, route: Route, exc: Exception) -> None:
    logger.warning(
        "captcha breaker %s of %s failed (%s)", step, route.provider_name, type(exc).__name__
    )


def _with_agent(request: ProviderRequest) -> ProviderRequest:
    for name, _ in request.headers:
        if name.lower() == "user-agent":
            return request
    return ProviderRequest(
        request.method, request.url, (*request.headers, ("User-Agent", USER_AGENT)), request.body
    )


def _body_denial(problem: BodyProblem, limit: int) -> Denial | None:
    if problem is TOO_LARGE:
        return too_large(limit)
    if problem is TIMED_OUT:
        return too_slow()
    if problem is INCOMPLETE:
        return bad_request("body shorter than content-length")
    if problem is UNREADABLE:
        return bad_request("body could not be read")
    return None  # DISCONNECTED


def _bind(
    rule: Rule,
    default: Provider | None,
    named: Mapping[str, Provider],
    clearance: bool,
) -> Route:
    if rule.provider is None:
        if default is None:
            raise ValueError(f"{rule!r} uses the default provider, but provider= is not set")
        chosen, name = default, default.name
    else:
        if rule.provider not in named:
            known = ", ".join(sorted(named)) or "none"
            raise ValueError(f"{rule!r} names unknown provider {rule.provider!r} ({known})")
        chosen, name = named[rule.provider], rule.provider
    fail_open = True if rule.fail_open is None else rule.fail_open
    pattern = rule.pattern
    label = pattern if isinstance(pattern, str) else pattern.pattern
    remembers = callable(getattr(chosen, "check_flow", None))
    scope = rule_scope(rule) if clearance else None
    return Route(rule, name, chosen, fail_open, label, remembers, scope)


def _token_gate(
    tokens: PrivateTokens,
    clearance: Clearance | None,
    hooks: Mapping[str, Iterable[EventHook]] | None,
) -> TokenGate:
    from ._privacy_pass import PrivateTokens
    from ._token_flow import TokenGate

    if not isinstance(tokens, PrivateTokens):
        raise TypeError("private_tokens must be a captcha_guard.PrivateTokens")
    if clearance is None:
        raise ValueError("private_tokens= needs clearance=: a valid token mints a clearance")
    listeners = _check_hooks(hooks).get("private_token", ())
    return TokenGate(tokens, clearance, hooks=listeners)


def _opt_in(route: Route) -> Route:
    if not route.rule.private_tokens or route.clearance_scope is None:
        return route
    return dataclasses.replace(route, private_tokens=True)


def _challenge_paths(configured: Iterable[Provider | None]) -> dict[str, Provider]:
    paths: dict[str, Provider] = {}
    for candidate in configured:
        if candidate is None or candidate.challenge_path is None:
            continue
        path = candidate.challenge_path
        if paths.get(path, candidate) is not candidate:
            raise ValueError(f"two providers serve challenges at {path!r}")
        paths[path] = candidate
    return paths


def _check_hooks(
    hooks: Mapping[str, Iterable[EventHook]] | None,
) -> dict[str, tuple[EventHook, ...]]:
    from ._events import EVENT_NAMES

    checked: dict[str, tuple[EventHook, ...]] = {}
    for name, listed in (hooks or {}).items():
        if name not in EVENT_NAMES:
            raise ValueError(
                f"event_hooks: unknown event {name!r} (known: {', '.join(EVENT_NAMES)})"
            )
        if callable(listed):
            raise TypeError(f"event_hooks[{name!r}] must be a list of callables")
        functions = tuple(listed)
        for function in functions:
            if not callable(function):
                raise TypeError(f"event_hooks[{name!r}]: {function!r} is not callable")
        if functions:
            checked[name] = functions
    return checked


__all__ = [
    "ABANDON",
    "BUSY",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DISCONNECTED",
    "INCOMPLETE",
    "REDEEM",
    "TIMED_OUT",
    "TOO_LARGE",
    "UNREADABLE",
    "USER_AGENT",
    "Abandon",
    "BodyProblem",
    "CallProblem",
    "Decision",
    "Deny",
    "Effect",
    "Emit",
    "Flow",
    "Gate",
    "Pass",
    "ProviderCall",
    "ReadBody",
    "Redeem",
    "Route",
]
