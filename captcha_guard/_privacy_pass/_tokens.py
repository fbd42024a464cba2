"""PrivateTokens: the configuration and every pure step of accepting Private Access Tokens.

Theory of operation. The gate serves a ``WWW-Authenticate: PrivateToken`` challenge (one per
issuer with a key) whose redemption context is ``HMAC(secret, time bucket)`` (_context.py)
and whose origin_info is our own origin; a Privacy Pass client (Safari on Apple devices
today) fetches a token from the issuer and sends it back in ``Authorization: PrivateToken
token=...``. ``check`` rebuilds the challenges the token may answer (this bucket's and the
previous one's), and accepts a token whose type is 2, whose ``challenge_digest`` is one of
theirs, whose ``token_key_id`` names a trusted key of that same issuer, and whose
authenticator is that key's RSASSA-PSS signature. What it cannot decide alone is the double
spend: ``remember_op`` is the state operation (``remember("private_token", nonce, ttl)``,
the one the replay guards use) and ``settle`` reads its answer. A state that cannot answer
makes the token UNAVAILABLE: the client solves the captcha as if it had none.

Nothing here does I/O; nothing a client sends raises out of it.
"""

from __future__ import annotations

import enum
import math
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._check import seconds_arg
from .._state import StateOp
from ._auth import challenge_value, token_param
from ._context import Contexts
from ._issuers import TokenIssuer
from ._rsa import INSTALL_HINT, Verifier, available
from ._spki import IssuerKey
from ._wire import (
    GREASE_TYPES,
    TOKEN_TYPE_BLIND_RSA,
    Token,
    TokenChallenge,
    b64decode,
    b64encode,
    is_server_name,
)

NAMESPACE = "private_token"
DEFAULT_WINDOW = 300.0
DEFAULT_GREASE = 0.1
DEFAULT_PATH = "/captcha-guard/private-token"
MIN_SECRET_BYTES = 16
#: base64 of a 354-byte token is 472 characters; a little slack for a client that adds none.
_MAX_TOKEN_CHARS = 480


class TokenStatus(str, enum.Enum):
    """What a request's ``Authorization: PrivateToken`` is worth. Only VALID clears."""

    VALID = "valid"
    ABSENT = "absent"  # no PrivateToken credentials
    MALFORMED = "malformed"  # not a base64url Token of type 2 and 354 bytes
    UNKNOWN_CHALLENGE = "unknown_challenge"  # answers no challenge we issued lately
    UNKNOWN_KEY = "unknown_key"  # signed by no key we trust for that issuer
    INVALID = "invalid"  # the signature does not verify
    REPLAYED = "replayed"  # its nonce was redeemed before
    UNAVAILABLE = "unavailable"  # the state that must confirm it did not answer
    OFF = "off"  # no issuer has a key: the feature is off

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The result of ``check``. A VALID check with ``op`` is not final: run ``op`` (it
    remembers the nonce) and give its result to ``settle``."""

    status: TokenStatus
    issuer: str | None = None
    op: StateOp | None = None

    @property
    def cleared(self) -> bool:
        return self.status is TokenStatus.VALID and self.op is None


def _secret_bytes(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not isinstance(raw, bytes):
        raise TypeError("the private token secret must be a str or bytes")
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the private token secret must be at least {MIN_SECRET_BYTES} bytes "
            "(32 random bytes recommended: secrets.token_urlsafe(32))"
        )
    return raw


def _origin_info(origin: str | Sequence[str]) -> bytes:
    names = [origin] if isinstance(origin, str) else list(origin)
    if not names:
        raise ValueError("origin must name at least one origin (host[:port])")
    for name in names:
        if not isinstance(name, str) or not is_server_name(name) or "," in name:
            raise ValueError(f"origin: not a host name with an optional port: {name!r}")
    return ",".join(n.lower() for n in names).encode("ascii")


class PrivateTokens:
    """Accept Private Access Tokens (Privacy Pass, RFC 9576-9578) as a door's
    ``private_tokens=``: ``PrivateTokens(secret, issuers=[...], origin="example.com")``.

    ``secret`` derives the redemption contexts (not the clearance secret: give it its own).
    ``issuers`` are ``TokenIssuer`` objects or issuer names (fetched keys). ``origin`` is this
    site's name as browsers see it (``"example.com"``, or a list of names): it goes into
    every challenge's origin_info, so a challenge reflected by another site is refused by the
    device. ``window`` is the redemption-context bucket in seconds (a token answers a
    challenge for one to two windows). ``grease`` is the probability of not challenging at
    all (RFC 9577 section 5.1), which also adds a reserved-type challenge beside the real one.
    ``path`` is where the doors serve the challenge and redeem tokens (GET). ``timeout``
    bounds an issuer directory fetch.
    """

    def __init__(
        self,
        secret: str | bytes,
        issuers: Iterable[TokenIssuer | str],
        *,
        origin: str | Sequence[str],
        window: float = DEFAULT_WINDOW,
        grease: float = DEFAULT_GREASE,
        path: str = DEFAULT_PATH,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] | None = None,
    ) -> None:
        if not available():
            raise RuntimeError(INSTALL_HINT)
        if isinstance(issuers, (str, TokenIssuer)):
            raise TypeError("issuers must be a list of TokenIssuer objects or names")
        listed = [i if isinstance(i, TokenIssuer) else TokenIssuer(i) for i in issuers]
        if not listed:
            raise ValueError("PrivateTokens needs at least one issuer")
        if len({i.name for i in listed}) != len(listed):
            raise ValueError("the same issuer is listed twice")
        seconds_arg(window, "window", minimum=10, maximum=86_400)
        if not _number(grease) or not 0 <= grease < 1:
            raise ValueError("grease must be a probability from 0 to below 1")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError("path must start with '/'")
        seconds_arg(timeout, "timeout")
        self.issuers = tuple(listed)
        self.origin_info = _origin_info(origin)
        self.contexts = Contexts(_secret_bytes(secret), window)
        self.window = float(window)
        self.grease = float(grease)
        self.path = path
        self.timeout = float(timeout)
        self.clock = clock
        self.random = random if random is not None else _uniform
        self._verifiers: dict[bytes, Verifier] = {}
        self._by_bucket: tuple[tuple[int, dict[bytes, TokenIssuer]], ...] = ()

    def __repr__(self) -> str:  # never the secret
        names = ", ".join(i.name for i in self.issuers)
        return f"PrivateTokens(issuers=[{names}], origin={self.origin_info.decode()!r})"

    # -- challenging ----------------------------------------------------------------------

    def active(self) -> bool:
        """Whether any issuer has a key (no key anywhere: the feature is off)."""
        return any(issuer.trusted() for issuer in self.issuers)

    def challenge(self, issuer: TokenIssuer, bucket: int) -> TokenChallenge:
        return TokenChallenge(
            TOKEN_TYPE_BLIND_RSA,
            issuer.name.encode("ascii"),
            self.contexts.context(bucket),
            self.origin_info,
        )

    def challenge_header(self, now: float | None = None) -> str | None:
        """The WWW-Authenticate value to send now; None when no issuer has a key."""
        at = self.clock() if now is None else now
        bucket = self.contexts.bucket(at)
        max_age = math.floor(self.contexts.lifetime(bucket, at))
        items = []
        for issuer in self.issuers:
            keys = issuer.trusted()
            if keys:
                encoded = self.challenge(issuer, bucket).encode()
                items.append(challenge_value(encoded, keys[0].spki, max_age))
        if not items:
            return None
        if self.random() < self.grease:
            items.append(self._greased())
        return ", ".join(items)

    def skip_challenge(self) -> bool:
        """RFC 9577 section 5.1: sometimes do not challenge, so that the site keeps working
        for clients that cannot present a token (and is seen to)."""
        return self.random() < self.grease

    def _greased(self) -> str:
        kind = GREASE_TYPES[secrets.randbelow(len(GREASE_TYPES))]
        body = kind.to_bytes(2, "big") + secrets.token_bytes(64)
        key = secrets.token_bytes(64)
        return f'PrivateToken challenge="{b64encode(body)}", token-key="{b64encode(key)}"'

    # -- redeeming ------------------------------------------------------------------------

    def check(self, authorization: str | None, now: float | None = None) -> TokenCheck:
        """Judge the ``Authorization`` header of one request, all but the double spend."""
        if not authorization or "rivate" not in authorization:
            return TokenCheck(TokenStatus.ABSENT)
        try:
            encoded = token_param(authorization)
        except Exception:  # a header nobody should send is not worth a 500
            return TokenCheck(TokenStatus.MALFORMED)
        if encoded is None:
            return TokenCheck(TokenStatus.ABSENT)
        raw = b64decode(encoded, _MAX_TOKEN_CHARS)
        token = Token.decode(raw) if raw is not None else None
        if token is None:
            return TokenCheck(TokenStatus.MALFORMED)
        if not self.active():
            return TokenCheck(TokenStatus.OFF)
        at = self.clock() if now is None else now
        found = self._challenge_of(token.challenge_digest, at)
        if found is None:
            return TokenCheck(TokenStatus.UNKNOWN_CHALLENGE)
        issuer, bucket = found
        key = next((k for k in issuer.trusted() if k.token_key_id == token.token_key_id), None)
        if key is None:
            return TokenCheck(TokenStatus.UNKNOWN_KEY, issuer.name)
        if not self._verifier(key).verify(token.authenticator_input(), token.authenticator):
            return TokenCheck(TokenStatus.INVALID, issuer.name)
        ttl = self.contexts.lifetime(bucket, at)
        op = StateOp("remember", (NAMESPACE, b64encode(token.nonce), ttl))
        return TokenCheck(TokenStatus.VALID, issuer.name, op)

    def settle(self, check: TokenCheck, first: Any) -> TokenCheck:
        """The final check once ``check.op`` ran: ``first`` is its result, or the exception
        it raised (a full or unreachable state: the token cannot be confirmed)."""
        if check.op is None:
            return check
        if isinstance(first, BaseException):  # StateFull included: no room, no redemption
            return TokenCheck(TokenStatus.UNAVAILABLE, check.issuer)
        # ``remember`` answers a Stored (truthy when first); a bare True from older backends.
        if not (first is True or getattr(first, "first", None) is True):
            return TokenCheck(TokenStatus.REPLAYED, check.issuer)
        return TokenCheck(TokenStatus.VALID, check.issuer)

    def _challenge_of(self, digest: bytes, now: float) -> tuple[TokenIssuer, int] | None:
        for bucket in self.contexts.accepted(now):
            issuer = self._digests(bucket).get(digest)
            if issuer is not None:
                return issuer, bucket
        return None

    def _digests(self, bucket: int) -> dict[bytes, TokenIssuer]:
        """The challenge digests of one bucket, per issuer (kept for the last few buckets:
        they depend on the bucket and the configuration only)."""
        cached = self._by_bucket  # replaced whole, never mutated: safe across threads
        for seen, known in cached:
            if seen == bucket:
                return known
        known = {self.challenge(i, bucket).digest(): i for i in self.issuers}
        self._by_bucket = ((bucket, known), *cached[:3])
        return known

    def _verifier(self, key: IssuerKey) -> Verifier:
        verifier = self._verifiers.get(key.token_key_id)
        if verifier is None or verifier.key != key:
            if len(self._verifiers) > 64:  # keys rotated away many times over: start afresh
                self._verifiers.clear()
            verifier = self._verifiers[key.token_key_id] = Verifier(key)
        return verifier

    def due(self, now: float | None = None) -> list[TokenIssuer]:
        """Issuers whose directory should be fetched now."""
        at = self.clock() if now is None else now
        return [issuer for issuer in self.issuers if issuer.due(at)]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _uniform() -> float:
    return secrets.randbits(53) / (1 << 53)


__all__ = [
    "DEFAULT_GREASE",
    "DEFAULT_PATH",
    "DEFAULT_WINDOW",
    "NAMESPACE",
    "PrivateTokens",
    "TokenCheck",
    "TokenStatus",
]
