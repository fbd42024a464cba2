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

Order of a protected request, the steps of ``Gate._judge``: content-length → body → fields →
local shape check (``_calling.shape``) → breaker and provider call (``_calling.ask``) → the
fallback guard when the provider could not judge (``_fallback.fallback_flow``) → a
``Judgement`` (``_judgement``), which gives the answer and the event.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._breaker import Permit
from ._calling import ask, shape
from ._check import int_arg, seconds_arg
from ._clearance import Clearance
from ._effects import (
    ABANDON,
    REDEEM,
    BodyProblem,
    Deny,
    Effect,
    Emit,
    EventHook,
    Flow,
    Pass,
    ReadBody,
    Redeem,
)
from ._events import ClearanceEvent
from ._fallback import FallbackLimitOption, as_limit, fallback_flow
from ._fields import BodyError, Fields, ParseLimits, collect
from ._head import check_head
from ._judgement import Judgement, judged
from ._logs import OutageLog, SuspectLog, note_verdict
from ._request import ClientRequest
from ._responses import (
    Denial,
    Reply,
    busy,
    json_reply,
    length_denial,
    render,
)
from ._route import Route, bind, challenge_paths, check_hooks, claim_scopes, opt_in, token_gate
from ._routing import BAD_PATH, BadPath, RuleTable, route_path
from ._rules import Rule
from ._verdict import Code, Outcome, ProviderFailure, Verdict
from .providers._base import Claim, Provider
from .providers._pow_v2 import IssueBusy

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
        # A wrong type has always been a TypeError here, and stays one.
        int_arg(max_body_size, "max_body_size (bytes)", minimum=0, wrong_type=TypeError)
        seconds_arg(body_timeout, "body_timeout", wrong_type=TypeError)
        named = dict(providers or {})
        for name, candidate in [("provider", provider), *named.items()]:
            if candidate is not None and not isinstance(candidate, Provider):
                raise TypeError(f"{name}: expected a captcha_guard provider, got {candidate!r}")
        routes: list[Route] = []
        for rule in rules:
            if not isinstance(rule, Rule):
                raise TypeError(f"rules must be Rule objects, got {rule!r}")
            routes.append(bind(rule, provider, named, clearance is not None))
        self.routes = tuple(routes)
        claim_scopes(routes)  # one scope name, one provider: refused now, not at a request
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
            self.tokens = token_gate(private_tokens, clearance, event_hooks)
            routes = [opt_in(route) for route in routes]
            self.routes = tuple(routes)
        self.providers = tuple({id(r.provider): r.provider for r in routes}.values())
        self.hooks = check_hooks(event_hooks)
        self._verdict_hooks = self.hooks.get("verdict", ())
        self._breaker_hooks = self.hooks.get("breaker", ())
        self._clock = clock
        self._outages = OutageLog(clock)
        self._suspects = SuspectLog(clock)
        # Most requests are GETs to unprotected pages: one set lookup turns them away.
        self._table = table = RuleTable(((r.rule, r) for r in routes), prefixes=prefixes)
        self._spelled = table.spelled if table.exhaustive else None
        self._challenges = challenge_paths([provider, *named.values()])
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

    def route(
        self, method: str, path: str, root_path: str = "", raw_path: bytes | None = None
    ) -> Route | Denial | None:
        """The routing decision, the same for every driver (doors, adapters, ``explain``):
        the ``Route`` that protects the request, a ``Denial`` (400 ``bad_path``: a
        protected-method path no rule can be trusted to judge), or None (no rule covers it:
        call the app, read nothing).

        ``method`` as sent (any letter case); ``path`` percent-decoded, as the server gives
        it to the app (ASGI ``scope["path"]``, or WSGI ``PATH_INFO``); ``root_path`` the ASGI
        mount point (``scope["root_path"]``; "" under WSGI, whose ``PATH_INFO`` is below
        ``SCRIPT_NAME`` already); ``raw_path`` the path as sent (``scope["raw_path"]``), which
        some routers route on. What is matched, and why, is ``_routing``'s docstring.
        """
        spelled = self._spelled
        if spelled is not None and method not in spelled and method.isascii():
            return None  # RuleTable.match's own first test, inlined: the hot path
        found = self._table.match(method, path, root_path, raw_path)
        if found.__class__ is BadPath:
            return BAD_PATH_DENIAL if found is BAD_PATH else NO_SLASH_DENIAL
        return found  # type: ignore[return-value]

    #: The name branches written before ``route`` call (with no root_path nor raw_path).
    match = route

    def challenge(
        self, method: str, path: str, request: ClientRequest | None = None
    ) -> Reply | Redeem | None:
        """A fresh challenge when ``path`` (below ``root_path``) is a provider's challenge
        path, ``REDEEM`` on the private-token path (the door runs ``redeem``), else None.
        ``request`` (the GET, where the door has built it) lets the provider price the
        challenge for its sender (ProofOfWork's pressure signals and networks)."""
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

    def challenger(self, method: str, path: str, root_path: str = "") -> Provider | None:
        """The provider whose challenge endpoint ``method path`` is, else None."""
        if method != "GET":
            return None
        return self._challenges.get(route_path(path, root_path) if root_path else path)

    def check_length(self, declared: str | None) -> Denial | None:
        """The answer to a declared content-length before any byte is read: 400 if it is not
        a plain decimal number, 413 if it is over ``max_body_size``, None to go on."""
        return length_denial(declared, self.max_body_size)

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
            ctx = clearance.context_of(request)
            check = yield from clearance.check_flow(
                request.headers.get("cookie"), ctx, route.clearance_scope
            )
            yield from self._note_clearance(route, route.provider_name, check.status.value)
            if check.cleared:
                # Cleared by an earlier verified pass: no captcha, and no need for the body.
                verdict = Verdict(
                    Outcome.PASSED, "clearance", route.provider_name, {"clearance": "valid"}
                )
                yield from self._emit(route, Judgement(verdict, Code.CLEARANCE), None)
                return Pass(verdict, None)
            if route.private_tokens and self.tokens is not None:
                cleared = yield from self.tokens.clear(request, ctx)
                if cleared is not None:
                    code = Code.CLEARANCE if cleared[0].details.get("clearance") else Code.OK
                    if code is Code.CLEARANCE:
                        yield from self._note_clearance(route, cleared[0].provider, "valid")
                    yield from self._emit(route, Judgement(cleared[0], code), None)
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
                yield from self._note_clearance(route, route.provider_name, "issued")
                decision = Pass(decision.verdict, decision.body, (("set-cookie", cookie),))
        return decision

    def _judge(self, route: Route, request: ClientRequest) -> Flow:
        """Body, fields, shape, breaker, call, verdict: the captcha itself, in named steps."""
        body: bytes | None = None
        if request.read_fields is None:
            body = yield ReadBody(self.max_body_size, self.body_timeout)
            if isinstance(body, BodyProblem):
                denial = body.denial(self.max_body_size)
                return ABANDON if denial is None else Deny(denial)
            request.body = body
        fields = self._fields(request, body)
        if isinstance(fields, Denial):
            return Deny(fields)
        claim = yield from shape(route, request, fields, self.hooks.get("pow_level", ()))
        duration = None
        if isinstance(claim, Verdict):  # judged locally: no call
            judgement = judged(self._named(route, claim))
        else:
            asked = yield from ask(route, claim, self._clock, self._breaker_hooks, self.abandon)
            if asked is None:
                return Deny(busy())
            said, duration = asked
            if isinstance(said, ProviderFailure):
                judgement = yield from self._fallback(route, claim, said)
            else:
                judgement = judged(self._named(route, said))
        yield from self._emit(route, judgement, duration)
        return judgement.decision(body)

    # The steps.

    def _fields(self, request: ClientRequest, body: bytes | None) -> Fields | Denial:
        """The captcha fields: as the framework parsed them for the view (an adapter), or
        out of the body, the query string and the header (a door)."""
        try:
            if request.read_fields is not None:
                return request.read_fields()
            return collect(
                content_type=request.content_type,
                body=body,  # type: ignore[arg-type]
                query_string=request.query,
                header_value=request.captcha_header,
                limits=self.parse_limits,
            )
        except BodyError as exc:
            return Denial(exc.status, exc.code, str(exc))

    def _fallback(
        self, route: Route, claim: Claim, failure: ProviderFailure
    ) -> Generator[Effect, Any, Judgement]:
        limit, key, client = self.fallback_limit, claim.replay_key, claim.request.client_host
        return (
            yield from fallback_flow(
                route.provider_name, route.fail_open, failure, limit, key, client, self._outages
            )
        )

    def _named(self, route: Route, verdict: Verdict) -> Verdict:
        """``verdict`` under the rule's provider name (it may be another than the provider's
        own), its hint logged."""
        if verdict.provider != route.provider_name:
            verdict = dataclasses.replace(verdict, provider=route.provider_name)
        note_verdict(route.provider_name, verdict, self._suspects)
        return verdict

    def _note_clearance(
        self, route: Route, provider: str, result: str
    ) -> Generator[Effect, Any, None]:
        # No cookie at all is every first visit: nothing to report.
        hooks = self.hooks.get("clearance", ())
        if hooks and result != "absent":
            shown = "cleared" if result == "valid" else result
            yield Emit(hooks, ClearanceEvent(provider, route.label, shown))

    def _emit(
        self, route: Route, judgement: Judgement, duration: float | None
    ) -> Generator[Effect, Any, None]:
        # Yielded only when someone listens, so an event costs nothing otherwise.
        if self._verdict_hooks:
            yield Emit(self._verdict_hooks, judgement.event(route.label, duration))


__all__ = ["DEFAULT_BODY_TIMEOUT", "DEFAULT_MAX_BODY_SIZE", "Gate"]
