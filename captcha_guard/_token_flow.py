"""Private Access Tokens in the decision flow: the part of the gate that yields I/O for them.

Theory of operation. A valid token never passes a rule by itself: it *mints a clearance*,
the same signed cookie a verified captcha earns, in a scope of its own (``TOKEN_SCOPE``,
"private token"), and only a rule that opts in (``Rule(..., clearance=True,
private_tokens=True)``) honours that scope. A rule without it, or without clearance at all,
still asks for its captcha.

Two ways in, both driven by the doors like any flow (they yield ``ProviderCall``,
``StateOp`` and ``Emit`` and are sent the results):

- ``serve(request)``, the token path (GET ``PrivateTokens.path``): without credentials it
  answers 401 with the ``WWW-Authenticate: PrivateToken`` challenge (or, with probability
  ``grease``, no challenge at all); with ``Authorization: PrivateToken token=...`` it checks
  the token, remembers its nonce, and answers with the clearance cookie. A page loads it
  before showing its captcha; a device that holds a token skips the puzzle.
- ``clear(request, ctx)``, on a protected request of an opted-in rule: a private-token
  clearance cookie, or a token in the request's own Authorization header, lets it through
  with a verdict whose provider is ``"private_token"``.

Issuer directories are fetched here too, as ``ProviderCall`` effects the door sends with its
own client, only when one is due (its cache expired) and one at a time per process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator, Sequence
from typing import Any

from ._calling import with_agent
from ._clearance import Clearance, ClearanceContext
from ._effects import BUSY, Effect, Emit, EventHook, ProviderCall
from ._events import PrivateTokenEvent
from ._privacy_pass import PrivateTokens, TokenCheck, TokenStatus
from ._request import ClientRequest
from ._responses import Reply
from ._verdict import Outcome, Verdict
from .providers._wire import ProviderResponse

logger = logging.getLogger("captcha_guard")

#: The verdict's provider, the events' label and the clearance identity of a token.
PROVIDER = "private_token"
#: The clearance scope tokens mint into (rule scopes are "rule:..." or "name:...").
TOKEN_SCOPE = "token:private"
FETCH_LABEL = "private_token_issuer"

Cleared = tuple[Verdict, tuple[tuple[str, str], ...]]


class TokenGate:
    """Private tokens bound to one door's clearance, state and hooks."""

    def __init__(
        self,
        tokens: PrivateTokens,
        clearance: Clearance,
        *,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.tokens = tokens
        self.clearance = clearance
        self.hooks = tuple(hooks)

    # -- the flows ------------------------------------------------------------------------

    def serve(self, request: ClientRequest) -> Generator[Effect, Any, Reply]:
        """The answer of the token path."""
        ctx = self._context(request)
        if self.clearance.cookie_name_for(ctx, TOKEN_SCOPE) is None:
            # Plain HTTP to a public host: no clearance could be set, so asking the device
            # for a token (or taking one) would only spend it.
            yield from self._event("challenge", "off")
            return _reply(200, {"cleared": False})
        yield from self._refresh()
        authorization = request.headers.get("authorization")
        check = yield from self._redeem(authorization)
        if check.status is TokenStatus.ABSENT or check.status is TokenStatus.OFF:
            if check.status is TokenStatus.OFF or not self.tokens.active():
                yield from self._event("challenge", "off")
                return _reply(200, {"cleared": False})
            if self.tokens.skip_challenge():
                yield from self._event("challenge", "greased")
                return _reply(200, {"cleared": False})
            header = self.tokens.challenge_header()
            if header is None:  # pragma: no cover - active() said a key exists
                return _reply(200, {"cleared": False})
            yield from self._event("challenge", "sent")
            return _reply(401, {"cleared": False}, (("www-authenticate", header),))
        if check.status is not TokenStatus.VALID:
            status = 200 if check.status is TokenStatus.UNAVAILABLE else 403
            return _reply(status, {"cleared": False, "error": f"private_token_{check.status}"})
        cookie = yield from self.clearance.issue_flow(ctx, TOKEN_SCOPE)
        if cookie is None:
            return _reply(200, {"cleared": False})
        return _reply(200, {"cleared": True}, (("set-cookie", cookie),))

    def clear(
        self, request: ClientRequest, ctx: ClearanceContext
    ) -> Generator[Effect, Any, Cleared | None]:
        """A protected request of an opted-in rule: cleared by a token, or None (captcha)."""
        check = yield from self.clearance.check_flow(
            request.headers.get("cookie"), ctx, TOKEN_SCOPE
        )
        if check.cleared:
            details = {"clearance": "valid", "private_token": True}
            return Verdict(Outcome.PASSED, "private token clearance", PROVIDER, details), ()
        authorization = request.headers.get("authorization")
        if authorization is None or "privatetoken" not in authorization.lower():
            return None  # the app's own credentials (Bearer, Basic): none of our business
        yield from self._refresh()
        token = yield from self._redeem(authorization)
        if token.status is not TokenStatus.VALID:
            return None
        cookie = yield from self.clearance.issue_flow(ctx, TOKEN_SCOPE)
        details = {"private_token": True, "issuer": token.issuer}
        verdict = Verdict(Outcome.PASSED, "private token", PROVIDER, details)
        return verdict, ((("set-cookie", cookie),) if cookie is not None else ())

    # -- steps ----------------------------------------------------------------------------

    def _redeem(self, authorization: str | None) -> Generator[Effect, Any, TokenCheck]:
        check = self.tokens.check(authorization)
        if check.op is not None:
            try:
                first = yield check.op
            except Exception as exc:  # the door threw the backend's failure in
                first = exc
            check = self.tokens.settle(check, first)
        if check.status is not TokenStatus.ABSENT:
            yield from self._event("redeem", str(check.status), check.issuer)
        return check

    def _refresh(self) -> Generator[Effect, Any, None]:
        tokens = self.tokens
        for issuer in tokens.due():
            request = with_agent(issuer.fetch_request(tokens.clock(), tokens.timeout))
            answer = yield ProviderCall(request, tokens.timeout, FETCH_LABEL)
            now = tokens.clock()
            if isinstance(answer, ProviderResponse):
                why = issuer.accept(answer, now)
            else:
                why = issuer.failed(now, "busy" if answer is BUSY else str(answer))
            if why is not None:
                # At most once per issuer per ``retry`` seconds: a fetch is made only when due.
                logger.warning(
                    "private token issuer %s: key directory not usable (%s); %d key(s) kept",
                    issuer.name,
                    why,
                    len(issuer.trusted()),
                )
            yield from self._event("directory", "ok" if why is None else "failed", issuer.name)

    def _context(self, request: ClientRequest) -> ClearanceContext:
        return self.clearance.context(
            request.client_host,
            request.headers.get("user-agent"),
            request.scheme == "https",
            request.headers.get("host"),
        )

    def _event(
        self, action: str, code: str, issuer: str | None = None
    ) -> Generator[Effect, Any, None]:
        if self.hooks:
            yield Emit(self.hooks, PrivateTokenEvent(action, code, issuer))


def _reply(
    status: int, document: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    body = json.dumps(document).encode()
    return Reply(
        status,
        [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("cache-control", "no-store"),  # a challenge or a cookie is for one client
            *headers,
        ],
        body,
    )


__all__ = ["FETCH_LABEL", "PROVIDER", "TOKEN_SCOPE", "Cleared", "TokenGate"]
