"""Clearance after a pass: a signed cookie that spares a client the next captchas for a while.

Theory of operation. After a *verified* pass (a provider said yes; never a fallback, never a
request that was itself let through by a clearance) the gate may answer with a cookie that
lets the same client call the rules of the same scope without a new captcha until it expires.
The module is sans-I/O, like the rest of the gate: it parses, signs and checks, and it names
the shared-state operations it needs (``StateOp``) for the caller to perform:
``check = yield from clearance.check_flow(...)`` and ``set_cookie = yield from
clearance.issue_flow(...)`` yield ``StateOp`` values and expect each one's result to be sent
back (or its exception thrown in).

The operations run on the state of the door the clearance was given to (in memory unless
the door has ``state=``): one path whatever the backend.

The token (its format, keys and rotation) is ``_clearance_token.py``; this module is what a
token is worth. ``binding`` ties it to the client's network prefix (IPv4 /24, IPv6 /64 by
default) and its User-Agent; ``scope`` to a hash of the rule's scope name, which the cookie's
*name* carries too, so one client holds one clearance per scope and a clearance earned on one
scope does not clear another; ``generation`` is the revocation generation it was issued under
(``revoke_all`` advances it); its random ``id`` keys the use counter when ``max_uses`` is set.

State. Two uses, three operations, all in the ``"clearance"`` namespace:

- ``spend("clearance", "uses:<id>", max_uses, ttl)`` counts one use of one clearance (the
  operation ``_state`` defines). A backend with aligned fixed windows may restart the count at
  one window boundary inside the clearance's life: at most ``2 * max_uses`` uses, never more;
  the in-memory state counts exactly (its window starts at the first use).
- ``read_counter("clearance", "generation") -> int`` and ``bump_counter("clearance",
  "generation") -> int`` (one key that never expires) keep the revocation generation. Reading
  it is cached for ``recheck`` seconds per process, so the passing path costs at most the one
  ``spend`` round trip; a revocation takes effect everywhere within ``recheck`` seconds. A
  generation lower than one a process has seen (a flushed store, a failover answering from an
  empty one) honours no clearance: it could revive revoked ones.

A state operation that fails makes the clearance UNAVAILABLE: the request goes to the captcha
as if it had no cookie. Nothing a client sends raises out of this module.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

from ._check import int_arg, seconds_arg
from ._clearance_request import (
    COOKIE_NAME,
    RANK,
    ClearanceCheck,
    ClearanceContext,
    ClearanceStatus,
    check_rule_clearance,
    cookie_values,
    is_loopback_host,
    rule_scope,
)
from ._clearance_token import (
    MAX_U32,
    Broken,
    KeyRing,
    TokenKey,
    b64,
    binding,
    scope_name,
    scope_tag,
)
from ._net import network_bytes as network_of
from ._state import SharedState, StateFull, StateOp, StateUnavailable

NAMESPACE = "clearance"
GENERATION_KEY = "generation"
OP_SPEND = "spend"
OP_READ_COUNTER = "read_counter"
OP_BUMP_COUNTER = "bump_counter"

DEFAULT_TTL = 900.0
MAX_TTL = 7 * 24 * 3600.0  # Anubis's default lifetime; longer is a session, not a clearance
DEFAULT_COOKIE_NAME = "cg_clearance"
HOST_PREFIX = "__Host-"
CLOCK_SKEW = 30  # seconds a host's clock may lag the issuer's before fresh cookies look long


def _unavailable(kind: str) -> ClearanceCheck:
    return ClearanceCheck(ClearanceStatus.UNAVAILABLE, store_error=kind)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, StateUnavailable):
        return str(exc.kind)
    if isinstance(exc, StateFull):
        return "full"
    return type(exc).__name__.lower()


class Clearance:
    """Signed clearance cookies: ``Clearance(secret, ttl=900)`` as a door's ``clearance=``.

    ``secret`` is one secret or a sequence of them, newest first: the first signs, every one
    verifies. ``ttl`` is the lifetime in seconds. ``max_uses`` caps the protected requests one
    clearance may make (counted in the state of the door it is given to). ``ipv4_prefix`` /
    ``ipv6_prefix`` are the network a clearance is bound to (0 binds to no network; 32 / 128
    to the one address); ``bind_user_agent`` binds it to the User-Agent too. ``secure`` is
    decided from the request's scheme (as the server reports it, after any proxy headers it
    trusts) and this setting, never from the Host header, which a proxy rewrites: None, an
    HTTPS request gets a ``Secure`` ``__Host-`` cookie and plain HTTP none at all; True
    always sets a ``Secure`` ``__Host-`` cookie (for sites behind a TLS proxy that reaches the
    app over plain HTTP); False also lets plain HTTP to a loopback host have a plain cookie,
    for local development only (HTTPS requests still get the ``__Host-`` one).
    ``recheck`` is how long, in seconds, a process trusts the revocation generation it last
    read from shared state.
    """

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes],
        ttl: float = DEFAULT_TTL,
        *,
        max_uses: int | None = None,
        ipv4_prefix: int = 24,
        ipv6_prefix: int = 64,
        bind_user_agent: bool = True,
        cookie_name: str = DEFAULT_COOKIE_NAME,
        secure: bool | None = None,
        recheck: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = KeyRing([secret] if isinstance(secret, (str, bytes)) else list(secret))
        ttl = seconds_arg(ttl, "ttl", minimum=1, maximum=MAX_TTL)
        if max_uses is not None:
            int_arg(max_uses, "max_uses (or None)")
        int_arg(ipv4_prefix, "ipv4_prefix", minimum=0, maximum=32)
        int_arg(ipv6_prefix, "ipv6_prefix", minimum=0, maximum=128)
        if not isinstance(cookie_name, str) or not COOKIE_NAME.match(cookie_name):
            raise ValueError(f"cookie_name must be a cookie token: {cookie_name!r}")
        if cookie_name.lower().startswith(("__host-", "__secure-")):
            raise ValueError("cookie_name without a prefix: __Host- is added when it applies")
        if secure is not None and not isinstance(secure, bool):
            raise TypeError("secure must be None (decide per request), True or False")
        seconds_arg(recheck, "recheck", inclusive=True)
        self.ttl = float(ttl)
        self.max_uses = max_uses
        self.ipv4_prefix = ipv4_prefix
        self.ipv6_prefix = ipv6_prefix
        self.bind_user_agent = bind_user_agent
        self.cookie_name = cookie_name
        self.secure = secure
        self.recheck = float(recheck)
        self.clock = clock
        # The states of the doors this clearance was given to: revoke_all() revokes there.
        self._bound: list[SharedState] = []
        self._keys = keys
        # (generation, when read): the shared generation as this process last saw it.
        self._generation: tuple[int, float] | None = None
        # The highest shared generation this process has seen. A lower one later means the
        # state lost it (a flush, or a failover standing in with an empty store): honouring
        # clearances then could revive revoked ones, so none are, until it is caught up.
        self._highest = -1

    def __repr__(self) -> str:  # never the secrets
        return f"Clearance(ttl={self.ttl:g}, max_uses={self.max_uses}, keys={len(self._keys)})"

    # -- the request's view ---------------------------------------------------------------

    def context(
        self,
        client: str | None,
        user_agent: str | bytes | None,
        https: bool,
        host: str | None,
    ) -> ClearanceContext:
        """A ``ClearanceContext`` stamped with this clearance's clock."""
        return ClearanceContext(client, user_agent, https, host, self.clock())

    def context_of(self, request: Any) -> ClearanceContext:
        """The context of a door's ``ClientRequest`` (its client, User-Agent, scheme, host)."""
        headers = request.headers
        https = request.scheme == "https"
        return self.context(
            request.client_host, headers.get("user-agent"), https, headers.get("host")
        )

    def cookie_name_for(self, ctx: ClearanceContext, scope: str) -> str | None:
        """The cookie this request may carry for ``scope``; None where no cookie is safe.

        ``__Host-`` and ``Secure`` follow the scheme or ``secure=True``, never the Host:
        behind nginx's defaults (or Apache without ``ProxyPreserveHost``) an HTTPS site's
        request reaches the app as plain HTTP to ``127.0.0.1``. The Host may only withhold
        the plain cookie that ``secure=False`` allows (loopback hosts only)."""
        base = f"{self.cookie_name}-{scope_name(scope)}"
        if self.secure or ctx.https:
            return HOST_PREFIX + base
        if self.secure is False and is_loopback_host(ctx.host):
            return base
        return None

    def _binding(self, key: TokenKey, ctx: ClearanceContext) -> bytes:
        network = network_of(ctx.client, self.ipv4_prefix, self.ipv6_prefix)
        agent = ctx.user_agent if self.bind_user_agent else None
        if isinstance(agent, str):
            agent = agent.encode("utf-8", "surrogateescape")
        return binding(key, network, (agent or b"") if self.bind_user_agent else None)

    # -- reading --------------------------------------------------------------------------

    def _read(
        self,
        cookie_header: str | bytes | Iterable[str | bytes] | None,
        ctx: ClearanceContext,
        scope: str,
    ) -> ClearanceCheck:
        """The best of the request's cookies for ``scope``, before state confirms it (a
        VALID result carries its token). Never raises on input."""
        name = self.cookie_name_for(ctx, scope)
        if name is None:
            return ClearanceCheck(ClearanceStatus.ABSENT)
        try:
            values = cookie_values(cookie_header, name)
        except Exception:  # a header of a type nobody should send: not worth a 500
            return ClearanceCheck(ClearanceStatus.MALFORMED)
        if not values:
            return ClearanceCheck(ClearanceStatus.ABSENT)
        # Several cookies of one name (a stale one and a new one, or one planted by a
        # sibling domain over plain HTTP): the best verdict wins; a forged one cannot win.
        best = ClearanceCheck(ClearanceStatus.MALFORMED)
        for value in values:
            check = self._read_one(value, ctx, scope)
            if RANK[check.status] < RANK[best.status]:
                best = check
            if best.status is ClearanceStatus.VALID:
                break
        return best

    def _read_one(self, value: str, ctx: ClearanceContext, scope: str) -> ClearanceCheck:
        token = self._keys.open(value)
        if token is Broken.MALFORMED:
            return ClearanceCheck(ClearanceStatus.MALFORMED)
        if isinstance(token, Broken):
            return ClearanceCheck(ClearanceStatus.INVALID)
        # Expired also when it promises more than today's ttl (beyond what clocks of two hosts
        # may disagree by): lowering ttl shortens the cookies already out.
        if token.expires <= ctx.now or token.expires > ctx.now + self.ttl + CLOCK_SKEW:
            return ClearanceCheck(ClearanceStatus.EXPIRED)
        if not hmac.compare_digest(token.scope, scope_tag(scope)):
            return ClearanceCheck(ClearanceStatus.WRONG_SCOPE)
        if not hmac.compare_digest(token.binding, self._binding(token.key, ctx)):
            return ClearanceCheck(ClearanceStatus.WRONG_BINDING)
        return ClearanceCheck(ClearanceStatus.VALID, _token=token)

    def _fresh_generation(self, now: float) -> int | None:
        cached = self._generation
        if cached is not None and 0 <= now - cached[1] < self.recheck:
            return cached[0]
        return None

    def check_flow(
        self,
        cookie_header: str | bytes | Iterable[str | bytes] | None,
        ctx: ClearanceContext,
        scope: str,
    ) -> Generator[StateOp, Any, ClearanceCheck]:
        """``check = yield from clearance.check_flow(...)``: read the cookie, then confirm it
        in the door's state (the revocation generation unless cached, a use if counted)."""
        check = self._read(cookie_header, ctx, scope)
        token = check._token
        if token is None:
            return check
        # The generation is checked before a use is spent, so a revoked cookie spends none.
        generation = self._fresh_generation(ctx.now)
        if generation is None:
            try:
                generation = yield StateOp(OP_READ_COUNTER, (NAMESPACE, GENERATION_KEY))
            except Exception as exc:  # the door threw the backend's failure in
                return _unavailable(_error_kind(exc))
            if isinstance(generation, bool) or not isinstance(generation, int):
                return _unavailable("protocol")
            if not self._accept_generation(generation, ctx.now):
                return _unavailable("regressed")
        # "!=" and not "<": a generation from the future means the state was reset, and a
        # reset must not quietly revive clearances revoked before it.
        if token.generation != generation:
            return ClearanceCheck(ClearanceStatus.REVOKED)
        if self.max_uses is not None:
            bucket = "uses:" + b64(token.token_id)
            try:
                spent = yield StateOp(OP_SPEND, (NAMESPACE, bucket, self.max_uses, self.ttl))
            except Exception as exc:
                return _unavailable(_error_kind(exc))
            if spent is not True:
                return ClearanceCheck(ClearanceStatus.EXHAUSTED)
        return ClearanceCheck(ClearanceStatus.VALID)

    # -- issuing --------------------------------------------------------------------------

    def issue_flow(self, ctx: ClearanceContext, scope: str) -> Generator[StateOp, Any, str | None]:
        """``header = yield from clearance.issue_flow(...)``: the ``Set-Cookie`` value for a
        clearance in ``scope``, or None when none may be set (plain HTTP to a host that is not
        loopback, or the generation cannot be read: no clearance rather than a stale one).

        Only after a verified pass: never after a fallback, never for a request that a
        clearance let through (that would make a clearance last forever).
        """
        name = self.cookie_name_for(ctx, scope)
        if name is None:
            return None
        generation = self._fresh_generation(ctx.now)
        if generation is None:
            try:
                generation = yield StateOp(OP_READ_COUNTER, (NAMESPACE, GENERATION_KEY))
            except Exception:
                return None
            if isinstance(generation, bool) or not isinstance(generation, int):
                return None
            if not self._accept_generation(generation, ctx.now):
                return None
        expires = math.ceil(ctx.now + self.ttl)
        if not 0 <= generation <= MAX_U32 or not 0 < expires <= MAX_U32:
            return None
        signer = self._keys.signer
        token = self._keys.sign(expires, generation, scope_tag(scope), self._binding(signer, ctx))
        max_age = max(1, int(expires - ctx.now))
        attributes = f"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        if name.startswith(HOST_PREFIX):
            attributes += "; Secure"
        return f"{name}={token}{attributes}"

    def clear_cookie(self, ctx: ClearanceContext, scope: str) -> str | None:
        """A ``Set-Cookie`` value that deletes this scope's cookie (for one found unusable)."""
        name = self.cookie_name_for(ctx, scope)
        if name is None:
            return None
        secure = "; Secure" if name.startswith(HOST_PREFIX) else ""
        return f"{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"

    # -- revoking -------------------------------------------------------------------------

    def revoke_op(self) -> StateOp:
        """The operation that revokes every clearance issued so far, in shared state."""
        return StateOp(OP_BUMP_COUNTER, (NAMESPACE, GENERATION_KEY))

    def bind_state(self, state: SharedState) -> None:
        """Called by each door this clearance is given to, with the door's state."""
        if not any(bound is state for bound in self._bound):
            self._bound.append(state)

    def _targets(self, state: SharedState | None) -> list[SharedState]:
        # In-process states are revoked at once; a shared one only when named (it may need
        # I/O of the other kind, or be revoked from a worker of its own).
        local = [s for s in self._bound if not getattr(s, "shared", False)]
        if state is None or any(s is state for s in local):
            return local
        return [*local, state]

    def revoke_all(self, state: SharedState | None = None) -> None:
        """Revoke every clearance issued so far: in the in-process state of every door it was
        given to at once, and with ``state`` (a shared one) everywhere within ``recheck``
        seconds. May raise the state's error."""
        self._generation = None
        for target in self._targets(state):
            self._note_generation(target.run(self.revoke_op()))

    async def arevoke_all(self, state: SharedState | None = None) -> None:
        """``revoke_all`` for async code: awaits ``state.arun``."""
        self._generation = None
        for target in self._targets(state):
            self._note_generation(await target.arun(self.revoke_op()))

    def _note_generation(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            self._accept_generation(value, self.clock())

    def _accept_generation(self, value: int, at: float) -> bool:
        if value < self._highest:
            self._generation = None
            return False
        self._highest = value
        self._generation = (value, at)
        return True


__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_TTL",
    "GENERATION_KEY",
    "NAMESPACE",
    "OP_BUMP_COUNTER",
    "OP_READ_COUNTER",
    "OP_SPEND",
    "Clearance",
    "ClearanceCheck",
    "ClearanceContext",
    "ClearanceStatus",
    "check_rule_clearance",
    "cookie_values",
    "is_loopback_host",
    "network_of",
    "rule_scope",
]
