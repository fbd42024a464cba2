"""Clearance after a pass: a signed cookie that spares a client the next captchas for a while.

Theory of operation. After a *verified* pass (a provider said yes; never a fallback, never a
request that was itself let through by a clearance) the gate may answer with a cookie that
lets the same client call the rules of the same scope without a new captcha until it expires.
The module is sans-I/O, like the rest of the gate: it parses, signs and checks, and it names
the shared-state operations it needs (``StateOp``) for the caller to perform. Two shapes of
the same API:

- generators for the decision flow, ``result = yield from clearance.check_flow(...)`` and
  ``set_cookie = yield from clearance.issue_flow(...)``: they yield ``StateOp`` values and
  expect each one's result to be sent back (or its exception thrown in);
- the pure steps underneath, ``read`` / ``settle`` and ``issue_ops`` / ``set_cookie``, for a
  caller that batches operations itself.

The operations run on the state of the door the clearance was given to (in memory unless
the door has ``state=``): one path whatever the backend.

The token. One base64url string of 55 bytes (74 characters), no JSON, no dots::

    version 1 | key id 4 | expires 4 | generation 4 | scope 6 | binding 8 | id 12 | mac 16

- ``mac`` is HMAC-SHA256 over everything before it, truncated to 128 bits, with a key derived
  from the secret whose id is in the token. Several secrets may be configured: the first
  signs, all verify, so a secret is rotated by putting a new one in front and dropping the old
  one after ``ttl`` seconds (dropping a secret revokes every clearance it signed).
- ``binding`` is a keyed hash of the client's network prefix (IPv4 /24, IPv6 /64 by default)
  and of its User-Agent, so a cookie carried to another network or another browser is worth
  nothing, and the cookie does not reveal either to whoever reads it.
- ``scope`` is a hash of the rule's scope name; the cookie's *name* carries the same tag, so
  one client holds one clearance per scope and a clearance earned on one scope does not clear
  another.
- ``generation`` is the revocation generation it was issued under; ``revoke_all`` advances it.
- ``id`` is random: the key of the use counter when ``max_uses`` is set.

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

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import ipaddress
import math
import os
import re
import socket
import string
import struct
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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
MIN_SECRET_BYTES = 16
CLOCK_SKEW = 30  # seconds a host's clock may lag the issuer's before fresh cookies look long

_VERSION = 1
_HEAD = struct.Struct(">B4sII6s8s12s")  # version, key id, expires, generation, scope, bind, id
_MAC_BYTES = 16
_TOKEN_BYTES = _HEAD.size + _MAC_BYTES
_TOKEN_CHARS = math.ceil(_TOKEN_BYTES * 4 / 3)  # base64url without padding
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\Z")
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_COOKIE_SEPARATORS = re.compile("[;,]")
_MAX_CANDIDATES = 8  # same-name cookies tried; more is someone stuffing the jar


class ClearanceStatus(str, enum.Enum):
    """What a clearance cookie is worth for this request. Only VALID clears."""

    VALID = "valid"
    ABSENT = "absent"  # no cookie for this scope (or none this request may carry)
    MALFORMED = "malformed"  # not one of our tokens at all
    INVALID = "invalid"  # signature wrong, or signed by a key we no longer hold
    EXPIRED = "expired"
    WRONG_SCOPE = "wrong_scope"  # a genuine clearance, for another scope
    WRONG_BINDING = "wrong_binding"  # a genuine clearance, from another network or browser
    REVOKED = "revoked"  # issued before the last revoke_all()
    EXHAUSTED = "exhausted"  # max_uses reached
    UNAVAILABLE = "unavailable"  # the state that must confirm it did not answer

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ClearanceContext:
    """What the clearance needs to know about one request; built once by the flow.

    ``client`` is the client address as the door knows it (after any trusted proxy headers),
    ``host`` the Host header (a port is allowed), ``https`` whether the request came over TLS,
    ``now`` a Unix time.
    """

    client: str | None
    user_agent: str | bytes | None
    https: bool
    host: str | None
    now: float


@dataclass(frozen=True, slots=True)
class ClearanceCheck:
    """The result of reading a clearance cookie.

    When ``ops`` is not empty the cookie is genuine but not yet confirmed: run each operation,
    in order, and give the results to ``Clearance.settle``. ``store_error`` is the kind of the
    state failure behind UNAVAILABLE (for a ``StoreErrorEvent``), never a message.
    """

    status: ClearanceStatus
    ops: tuple[StateOp, ...] = ()
    store_error: str | None = None
    _token: _Token | None = None

    @property
    def cleared(self) -> bool:
        return self.status is ClearanceStatus.VALID and not self.ops


@dataclass(frozen=True, slots=True)
class _Token:
    kid: bytes
    expires: int
    generation: int
    scope: bytes
    binding: bytes
    token_id: bytes


@dataclass(frozen=True, slots=True)
class _Key:
    kid: bytes
    mac: bytes
    bind: bytes


def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.digest(secret, b"captcha-guard/clearance/" + label, "sha256")


def _make_key(secret: str | bytes) -> _Key:
    if isinstance(secret, str):
        raw = secret.encode("utf-8")
    elif isinstance(secret, bytes):
        raw = secret
    else:
        raise TypeError("a clearance secret must be a str or bytes")
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(
            f"a clearance secret must be at least {MIN_SECRET_BYTES} bytes "
            "(32 random bytes recommended: secrets.token_urlsafe(32))"
        )
    return _Key(kid=_derive(raw, b"kid")[:4], mac=_derive(raw, b"mac"), bind=_derive(raw, b"bind"))


@functools.lru_cache(maxsize=1024)  # scopes come from configuration: a handful
def _scope_tag(scope: str) -> bytes:
    # Unkeyed, so cookie names survive a key rotation; a rule's scope is not a secret.
    return hashlib.sha256(b"captcha-guard/clearance/scope\0" + scope.encode("utf-8")).digest()[:6]


@functools.lru_cache(maxsize=1024)
def _scope_name(scope: str) -> str:
    return _b64(_scope_tag(scope))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64_VALUE = {
    c: i
    for i, c in enumerate(string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_")
}


def _unb64(text: str) -> bytes | None:
    """Decode unpadded base64url, in its canonical spelling only (one token, one string: the
    unused low bits of the last character must be zero)."""
    unused = len(text) * 6 % 8
    if not text or len(text) % 4 == 1 or _B64_VALUE.get(text[-1], 1) & ((1 << unused) - 1):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def is_loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine (``localhost``, ``*.localhost``, 127/8, ::1)."""
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, _ = host[1:].partition("]")
        if not bracket:
            return False
    elif host.count(":") == 1:
        name = host.partition(":")[0]
    else:
        name = host
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def network_of(client: str | None, ipv4_prefix: int, ipv6_prefix: int) -> bytes:
    """The client's network as bytes: its address cut to the configured prefix."""
    if not client:
        return b"?"
    text = client.strip().partition("%")[0]  # a zone id (fe80::1%eth0) names no network
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):
        return b"?"  # a unix socket or a name: one shared "unknown" network
    if len(packed) == 16 and packed[:12] == _V4_MAPPED:
        packed = packed[12:]  # a dual-stack socket's view of an IPv4 client
    if len(packed) == 4:
        bits, prefix, family = 32, ipv4_prefix, b"4"
    else:
        bits, prefix, family = 128, ipv6_prefix, b"6"
    shift = bits - prefix
    masked = int.from_bytes(packed, "big") >> shift << shift
    return family + bytes([prefix]) + masked.to_bytes(bits // 8, "big")


def cookie_values(
    cookie_header: str | bytes | Iterable[str | bytes] | None, name: str
) -> list[str]:
    """The values of every cookie called ``name`` in one or more Cookie headers (bounded)."""
    if cookie_header is None:
        return []
    headers = [cookie_header] if isinstance(cookie_header, (str, bytes)) else cookie_header
    found: list[str] = []
    for header in headers:
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        elif not isinstance(header, str):
            continue
        if name not in header:
            continue  # the common case: other cookies only, no split needed
        # ";" between cookies, and "," where a server joined two Cookie headers into one
        # (no cookie value of ours holds either).
        for part in _COOKIE_SEPARATORS.split(header):
            key, eq, value = part.partition("=")
            if eq and key.strip() == name:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                found.append(value)
                if len(found) >= _MAX_CANDIDATES:
                    return found
    return found


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
    to the one address); ``bind_user_agent`` binds it to the User-Agent too. ``secure`` None
    decides per request (HTTPS: ``__Host-`` and ``Secure``; plain HTTP to a loopback host: a
    plain cookie; any other plain HTTP: no cookie at all); True always sets a ``Secure``
    ``__Host-`` cookie, for sites behind a TLS proxy that reaches the app over plain HTTP.
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
        secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
        if not secrets:
            raise ValueError("Clearance needs at least one secret")
        keys = [_make_key(s) for s in secrets]
        by_kid: dict[bytes, _Key] = {}
        for key in keys:
            if key.kid in by_kid:
                raise ValueError("the same clearance secret is given twice")
            by_kid[key.kid] = key
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 1 <= ttl <= MAX_TTL:
            raise ValueError(f"ttl must be a number of seconds from 1 to {int(MAX_TTL)}")
        if max_uses is not None and (
            isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1
        ):
            raise ValueError("max_uses must be None or an integer >= 1")
        for name, value, top in (
            ("ipv4_prefix", ipv4_prefix, 32),
            ("ipv6_prefix", ipv6_prefix, 128),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
                raise ValueError(f"{name} must be an integer from 0 to {top}")
        if not isinstance(cookie_name, str) or not _COOKIE_NAME.match(cookie_name):
            raise ValueError(f"cookie_name must be a cookie token: {cookie_name!r}")
        if cookie_name.lower().startswith(("__host-", "__secure-")):
            raise ValueError("cookie_name without a prefix: __Host- is added when it applies")
        if secure is not None and not isinstance(secure, bool):
            raise TypeError("secure must be None (decide per request), True or False")
        if secure is False:
            raise ValueError("secure=False is not offered: plain HTTP is allowed on loopback only")
        if isinstance(recheck, bool) or not isinstance(recheck, (int, float)) or recheck < 0:
            raise ValueError("recheck must be a number of seconds >= 0")
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
        self._signer = keys[0]
        self._keys = by_kid
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

    def cookie_name_for(self, ctx: ClearanceContext, scope: str) -> str | None:
        """The cookie this request may carry for ``scope``; None where no cookie is safe."""
        base = f"{self.cookie_name}-{_scope_name(scope)}"
        if self.secure or ctx.https:
            return HOST_PREFIX + base
        if is_loopback_host(ctx.host):
            return base
        return None

    def _binding(self, key: _Key, ctx: ClearanceContext) -> bytes:
        network = network_of(ctx.client, self.ipv4_prefix, self.ipv6_prefix)
        agent = ctx.user_agent if self.bind_user_agent else None
        if isinstance(agent, str):
            agent = agent.encode("utf-8", "surrogateescape")
        agent_hash = hashlib.sha256(agent or b"").digest() if self.bind_user_agent else b""
        material = b"net\0" + network + b"\0ua\0" + agent_hash
        return hmac.digest(key.bind, material, "sha256")[:8]

    # -- reading --------------------------------------------------------------------------

    def read(
        self,
        cookie_header: str | bytes | Iterable[str | bytes] | None,
        ctx: ClearanceContext,
        scope: str,
    ) -> ClearanceCheck:
        """Judge the clearance cookie of one request for ``scope``. Never raises on input.

        The result of a genuine cookie may carry ``ops`` to run (then ``settle``).
        """
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
            if _RANK[check.status] < _RANK[best.status]:
                best = check
            if best.status is ClearanceStatus.VALID:
                break
        if best.status is not ClearanceStatus.VALID or best._token is None:
            return best
        return self._confirm(best._token, ctx)

    def _read_one(self, value: str, ctx: ClearanceContext, scope: str) -> ClearanceCheck:
        if len(value) != _TOKEN_CHARS or not _TOKEN.match(value):
            return ClearanceCheck(ClearanceStatus.MALFORMED)
        raw = _unb64(value)
        if raw is None or len(raw) != _TOKEN_BYTES or raw[0] != _VERSION:
            return ClearanceCheck(ClearanceStatus.MALFORMED)
        head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
        _, kid, expires, generation, scope_tag, binding, token_id = _HEAD.unpack(head)
        key = self._keys.get(kid)
        if key is None:
            return ClearanceCheck(ClearanceStatus.INVALID)
        expected = hmac.digest(key.mac, head, "sha256")[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return ClearanceCheck(ClearanceStatus.INVALID)
        # Expired also when it promises more than today's ttl (beyond what clocks of two hosts
        # may disagree by): lowering ttl shortens the cookies already out.
        if expires <= ctx.now or expires > ctx.now + self.ttl + CLOCK_SKEW:
            return ClearanceCheck(ClearanceStatus.EXPIRED)
        if not hmac.compare_digest(scope_tag, _scope_tag(scope)):
            return ClearanceCheck(ClearanceStatus.WRONG_SCOPE)
        if not hmac.compare_digest(binding, self._binding(key, ctx)):
            return ClearanceCheck(ClearanceStatus.WRONG_BINDING)
        token = _Token(kid, expires, generation, scope_tag, binding, token_id)
        return ClearanceCheck(ClearanceStatus.VALID, _token=token)

    def _fresh_generation(self, now: float) -> int | None:
        cached = self._generation
        if cached is not None and 0 <= now - cached[1] < self.recheck:
            return cached[0]
        return None

    def _confirm(self, token: _Token, ctx: ClearanceContext) -> ClearanceCheck:
        # The generation is checked before a use is spent whenever it is known already, so a
        # revoked cookie costs no round trip.
        known = self._fresh_generation(ctx.now)
        if known is not None and token.generation != known:
            return ClearanceCheck(ClearanceStatus.REVOKED)
        ops: list[StateOp] = []
        if known is None:
            ops.append(StateOp(OP_READ_COUNTER, (NAMESPACE, GENERATION_KEY)))
        if self.max_uses is not None:
            bucket = "uses:" + _b64(token.token_id)
            ops.append(StateOp(OP_SPEND, (NAMESPACE, bucket, self.max_uses, self.ttl)))
        if not ops:
            return ClearanceCheck(ClearanceStatus.VALID)
        return ClearanceCheck(ClearanceStatus.VALID, tuple(ops), _token=token)

    def settle(
        self, check: ClearanceCheck, results: Sequence[Any], *, now: float | None = None
    ) -> ClearanceCheck:
        """The final check once ``check.ops`` have run; ``results`` in the same order, an
        exception in place of the result of an operation that failed."""
        token = check._token
        if not check.ops:
            return check
        if token is None or len(results) != len(check.ops):
            return ClearanceCheck(ClearanceStatus.UNAVAILABLE, store_error="protocol")
        at = self.clock() if now is None else now
        revoked = False
        spent: bool | None = None
        for op, result in zip(check.ops, results, strict=True):
            if isinstance(result, BaseException):
                return ClearanceCheck(ClearanceStatus.UNAVAILABLE, store_error=_error_kind(result))
            if op.name == OP_READ_COUNTER:
                if isinstance(result, bool) or not isinstance(result, int):
                    return ClearanceCheck(ClearanceStatus.UNAVAILABLE, store_error="protocol")
                if not self._accept_generation(result, at):
                    return ClearanceCheck(ClearanceStatus.UNAVAILABLE, store_error="regressed")
                # "!=" and not "<": a generation from the future means the state was reset,
                # and a reset must not quietly revive clearances revoked before it.
                revoked = token.generation != result
            elif op.name == OP_SPEND:
                spent = result is True
        if revoked:
            return ClearanceCheck(ClearanceStatus.REVOKED)
        if self.max_uses is not None and spent is not True:
            return ClearanceCheck(ClearanceStatus.EXHAUSTED)
        return ClearanceCheck(ClearanceStatus.VALID)

    def check_flow(
        self,
        cookie_header: str | bytes | Iterable[str | bytes] | None,
        ctx: ClearanceContext,
        scope: str,
    ) -> Generator[StateOp, Any, ClearanceCheck]:
        """``check = yield from clearance.check_flow(...)``: read, then confirm in state."""
        check = self.read(cookie_header, ctx, scope)
        if not check.ops:
            return check
        results: list[Any] = []
        for op in check.ops:
            try:
                results.append((yield op))
            except Exception as exc:  # the door threw the backend's failure in
                # No use in spending a use the failed generation read cannot vouch for.
                return ClearanceCheck(ClearanceStatus.UNAVAILABLE, store_error=_error_kind(exc))
        return self.settle(check, results, now=ctx.now)

    # -- issuing --------------------------------------------------------------------------

    def issue_ops(self, ctx: ClearanceContext) -> tuple[StateOp, ...]:
        """What must run before ``set_cookie``: the generation, when the cache is stale."""
        if self._fresh_generation(ctx.now) is None:
            return (StateOp(OP_READ_COUNTER, (NAMESPACE, GENERATION_KEY)),)
        return ()

    def set_cookie(
        self,
        ctx: ClearanceContext,
        scope: str,
        results: Sequence[Any] = (),
    ) -> str | None:
        """The ``Set-Cookie`` value for a clearance in ``scope``, or None when none may be
        set (plain HTTP to a host that is not loopback, or the generation cannot be read).

        Call it only after a verified pass: never after a fallback, never for a request that
        a clearance let through (that would make a clearance last forever).
        """
        name = self.cookie_name_for(ctx, scope)
        if name is None:
            return None
        generation: int | None = None
        for result in results:
            if isinstance(result, bool) or not isinstance(result, int):
                return None  # the generation did not come: no clearance rather than a stale one
            if not self._accept_generation(result, ctx.now):
                return None
            generation = result
        if generation is None:
            generation = self._fresh_generation(ctx.now)
        if generation is None or not 0 <= generation <= 0xFFFFFFFF:
            return None
        expires = math.ceil(ctx.now + self.ttl)
        if not 0 < expires <= 0xFFFFFFFF:
            return None
        key = self._signer
        head = _HEAD.pack(
            _VERSION,
            key.kid,
            expires,
            generation,
            _scope_tag(scope),
            self._binding(key, ctx),
            os.urandom(12),
        )
        mac = hmac.digest(key.mac, head, "sha256")[:_MAC_BYTES]
        max_age = max(1, int(expires - ctx.now))
        attributes = f"; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        if name.startswith(HOST_PREFIX):
            attributes += "; Secure"
        return f"{name}={_b64(head + mac)}{attributes}"

    def issue_flow(self, ctx: ClearanceContext, scope: str) -> Generator[StateOp, Any, str | None]:
        """``header = yield from clearance.issue_flow(...)``: the Set-Cookie value or None."""
        results: list[Any] = []
        for op in self.issue_ops(ctx):
            try:
                results.append((yield op))
            except Exception:
                return None
        return self.set_cookie(ctx, scope, results)

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


#: Which of several same-name cookies speaks for the request: the most telling verdict.
_RANK = {
    ClearanceStatus.VALID: 0,
    ClearanceStatus.WRONG_BINDING: 1,
    ClearanceStatus.WRONG_SCOPE: 2,
    ClearanceStatus.EXPIRED: 3,
    ClearanceStatus.INVALID: 4,
    ClearanceStatus.MALFORMED: 5,
    ClearanceStatus.ABSENT: 6,
    ClearanceStatus.REVOKED: 7,
    ClearanceStatus.EXHAUSTED: 8,
    ClearanceStatus.UNAVAILABLE: 9,
}


def rule_scope(rule: object) -> str | None:
    """The clearance scope of a rule, from its ``clearance`` attribute: False or missing, none;
    True, the rule's own (its pattern); a string, that named scope, shared by every rule that
    names it."""
    setting = getattr(rule, "clearance", False)
    if setting is True:
        pattern = getattr(rule, "pattern", None)
        text = pattern.pattern if isinstance(pattern, re.Pattern) else str(pattern)
        methods = ",".join(sorted(getattr(rule, "methods", ())))
        return f"rule:{methods}:{text}"
    if isinstance(setting, str) and setting:
        return f"name:{setting}"
    return None


def check_rule_clearance(value: object) -> bool | str:
    """Validate ``Rule(..., clearance=...)`` at start-up: a bool, or a scope name."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and _COOKIE_NAME.match(value):
        return value
    raise ValueError(
        f"clearance must be True, False or a scope name (letters, digits, -_.): {value!r}"
    )


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
