"""The shared decision: rule, fields, shape check, breaker, verdict, answer.

Both front doors drive a Gate the same way and differ only in reading the body and sending
the provider's request:

    route = gate.match(method, path)           # None: gate.challenge(method, path), a Reply
                                               #   to send or None: call the app, touch nothing
    step = gate.begin(route, ...)              # Denial (400/403), Verdict (local or fallback)
    if isinstance(step, Call):                 #   or a Call to send
        verdict = gate.finish(step, response=... | error=...)   (or gate.abandon(step),
                                               #   or gate.busy(step): no connection free)
    denial = gate.judge(route, verdict)        # None: call the app with the verdict
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from ._version import __version__
from .breaker import Permit
from .fallback import FallbackBudget, FallbackGuard
from .fields import BodyError, FieldError, ParseLimits, collect
from .providers.base import Claim, Provider, RequestInfo
from .replay import ReplayStore
from .responses import (
    Denial,
    Reply,
    bad_request,
    busy,
    json_reply,
    rejected,
    too_large,
    unavailable,
)
from .rules import Rule
from .verdict import Fault, Outcome, ProviderFailure, Verdict

logger = logging.getLogger("captcha_guard")

DEFAULT_MAX_BODY_SIZE = 1_048_576

#: In a fallback verdict's details: the fallback was refused for want of capacity (a 503,
#: as if the rule said fail_open=False), with the reason.
REFUSED = "fallback_refused"

#: The pool of the WSGI door's HTTP client (the ASGI door's is in asgi.py). Every connection
#: is kept alive: with fewer kept than allowed, a steady load above the keep-alive count
#: closes and reopens connections to the provider on every burst.
CLIENT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)

#: Sent with every provider call. Requests are sent as built, without the client's default
#: headers, and some vendors' edge firewalls refuse a request that names no agent at all.
USER_AGENT = f"captcha-guard/{__version__}"

# A content-length with more digits than this is over any max_body_size (and int() refuses
# strings of thousands of digits outright).
_MAX_LENGTH_DIGITS = 18


def describe_error(exc: BaseException) -> str:
    """A provider call's error, by kind only: exception texts may carry URLs and bodies."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect error"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol error"
    return f"transport error ({type(exc).__name__})"


@dataclass(frozen=True)
class Route:
    """A rule bound to the provider it names and its effective fail-open setting."""

    rule: Rule
    provider_name: str
    provider: Provider
    fail_open: bool


@dataclass(frozen=True)
class Call:
    """A provider request to send, under a breaker permit that must be handed back."""

    route: Route
    claim: Claim
    request: httpx.Request
    permit: Permit

    @property
    def timeout(self) -> float:
        return self.route.provider.timeout


class Gate:
    def __init__(
        self,
        rules: Iterable[Rule],
        provider: Provider | None = None,
        providers: Mapping[str, Provider] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        *,
        replay_store: ReplayStore | None = None,
        fallback_limit: int | FallbackBudget | None = None,
        parse_limits: ParseLimits | None = None,
    ) -> None:
        if parse_limits is not None and not isinstance(parse_limits, ParseLimits):
            raise TypeError("parse_limits must be a ParseLimits")
        self.parse_limits = parse_limits
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int):
            raise TypeError("max_body_size must be an int (bytes)")
        if max_body_size < 0:
            raise ValueError("max_body_size must be >= 0")
        named = dict(providers or {})
        for name, candidate in [("provider", provider), *named.items()]:
            if candidate is not None and not isinstance(candidate, Provider):
                raise TypeError(f"{name}: expected a captcha_guard provider, got {candidate!r}")
        routes: list[Route] = []
        for rule in rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"rules must be Rule objects, got {rule!r}")
            routes.append(self._bind(rule, provider, named))
        self.routes = tuple(routes)
        self.max_body_size = max_body_size
        self.fallback = FallbackGuard(replay_store, fallback_limit)
        self.providers = tuple({id(r.provider): r.provider for r in routes}.values())
        # Most requests are GETs to unprotected pages: one set lookup turns them away.
        self._methods = frozenset(m for r in routes for m in r.rule.methods)
        self._challenges = self._challenge_paths([provider, *named.values()])

    @staticmethod
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

    @staticmethod
    def _bind(rule: Rule, default: Provider | None, named: Mapping[str, Provider]) -> Route:
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
        return Route(rule, name, chosen, fail_open)

    def match(self, method: str, path: str) -> Route | None:
        if method not in self._methods:
            return None
        for route in self.routes:
            if route.rule.matches(method, path):
                return route
        return None

    def challenge(self, method: str, path: str) -> Reply | None:
        """A fresh challenge when ``path`` is a provider's challenge path, else None."""
        if method != "GET":
            return None
        provider = self._challenges.get(path)
        if provider is None:
            return None
        return json_reply(provider.new_challenge())

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

    def begin(
        self,
        route: Route,
        *,
        request: RequestInfo,
        content_type: str,
        body: bytes,
        query_string: bytes,
        header_value: str | None,
    ) -> Denial | Verdict | Call:
        try:
            fields = collect(
                content_type=content_type,
                body=body,
                query_string=query_string,
                header_value=header_value,
                limits=self.parse_limits,
            )
        except BodyError as exc:
            return Denial(exc.status, exc.code, str(exc))
        provider = route.provider
        try:
            checked = provider.check(fields, request)
        except FieldError as exc:
            return self._named(route, provider.rejected(str(exc)))
        if isinstance(checked, Verdict):
            return self._named(route, checked)
        permit = provider.breaker.acquire()
        if permit is None:
            return self._fallback(route, checked, ProviderFailure("circuit open"))
        try:
            http_request = provider.build_request(checked)
        except Exception:
            provider.breaker.release(permit)
            logger.exception("captcha provider %s could not build its request", route.provider_name)
            failure = ProviderFailure("request could not be built", Fault.OPERATOR)
            return self._fallback(route, checked, failure)
        # Each phase (connect, write, read, pool) gets the provider's timeout. The async door
        # also bounds the whole call; the sync door cannot without a thread, so under WSGI a
        # provider that trickles its answer may take longer.
        http_request.extensions["timeout"] = httpx.Timeout(provider.timeout).as_dict()
        if "user-agent" not in http_request.headers:
            http_request.headers["user-agent"] = USER_AGENT
        return Call(route, checked, http_request, permit)

    def finish(
        self,
        call: Call,
        *,
        response: httpx.Response | None = None,
        error: str | None = None,
    ) -> Verdict:
        """Turn the provider's answer (or the error that stood in for one) into a verdict."""
        route, breaker = call.route, call.route.provider.breaker
        result: Verdict | ProviderFailure
        if response is None:
            result = ProviderFailure(error or "no answer")
        else:
            try:
                result = route.provider.read_response(call.claim, response)
            except Exception:
                logger.exception("captcha provider %s: unreadable answer", route.provider_name)
                result = ProviderFailure("answer could not be read")
        if isinstance(result, ProviderFailure):
            breaker.record(call.permit, ok=False)
            return self._fallback(route, call.claim, result)
        breaker.record(call.permit, ok=True)
        return self._named(route, result)

    def abandon(self, call: Call) -> None:
        """The call was cancelled: count nothing, free the breaker's probe if it held it."""
        call.route.provider.breaker.release(call.permit)

    def busy(self, call: Call) -> Denial:
        """No connection to the provider came free in time: our capacity, not its health.

        The breaker is not charged and the request does not fall back: otherwise a flood of
        well-formed requests could fill the pool, open the circuit and have forged fields let
        through in fallback. The client gets a 503 it may retry.
        """
        self.abandon(call)
        logger.warning(
            "captcha provider %s: no free connection within %ss (too many checks in flight)",
            call.route.provider_name,
            call.timeout,
        )
        return busy()

    def judge(self, route: Route, verdict: Verdict) -> Denial | None:
        """The gate's own answer for ``verdict``, or None when the app should be called."""
        if verdict.outcome is Outcome.REJECTED:
            return rejected(verdict)
        if verdict.outcome is Outcome.FALLBACK and (
            not route.fail_open or REFUSED in verdict.details
        ):
            return unavailable(verdict)
        return None

    def _named(self, route: Route, verdict: Verdict) -> Verdict:
        if verdict.provider != route.provider_name:
            verdict = Verdict(verdict.outcome, verdict.reason, route.provider_name, verdict.details)
        hint = verdict.details.get("misconfiguration")
        if hint:
            logger.error("captcha provider %s: %s", route.provider_name, hint)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("captcha %s (%s): %s", verdict.outcome, verdict.provider, verdict.reason)
        return verdict

    def _fallback(self, route: Route, claim: Claim, failure: ProviderFailure) -> Verdict:
        name = route.provider_name
        if failure.fault is Fault.OPERATOR:
            logger.error(
                "captcha provider %s is misconfigured (code %s): %s",
                name,
                failure.code or "-",
                failure.reason,
            )
        details: dict[str, object] = {"fault": failure.fault.value, "code": failure.code}
        refusal = None
        if route.fail_open:
            refusal = self.fallback.refusal(claim.replay_key, claim.request.client_host)
        if refusal is None:
            if failure.fault is not Fault.OPERATOR:
                logger.warning("captcha provider %s unavailable: %s", name, failure.reason)
            return Verdict(Outcome.FALLBACK, failure.reason, name, details)
        outcome, why = refusal
        logger.warning(
            "captcha provider %s unavailable (%s); fallback refused: %s", name, failure.reason, why
        )
        if outcome is Outcome.FALLBACK:
            details[REFUSED] = why
            return Verdict(outcome, f"{failure.reason}; {why}", name, details)
        return Verdict(outcome, why, name, details)
