"""The clearance token: its bytes, its keys, signing and verifying. No policy.

Layered as itsdangerous layers its signers: a key ring (the first secret signs, every one
verifies, so a secret is rotated by putting a new one in front) under a fixed-size token
format. What a valid token is *worth* (expiry against today's ttl, the scope, the binding to
a network and a browser, revocation, uses) is the policy's, in ``_clearance.py``.

One base64url string of 55 bytes (74 characters), no JSON, no dots::

    version 1 | key id 4 | expires 4 | generation 4 | scope 6 | binding 8 | id 12 | mac 16

``mac`` is HMAC-SHA256 over everything before it, truncated to 128 bits, with a key derived
from the secret whose id is in the token. Each secret gives three keys by derivation (the
key id, the MAC key, the binding key), so no secret is used for two purposes.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import math
import os
import re
import string
import struct
from collections.abc import Sequence
from dataclasses import dataclass

MIN_SECRET_BYTES = 16

_VERSION = 1
_HEAD = struct.Struct(">B4sII6s8s12s")  # version, key id, expires, generation, scope, bind, id
_MAC_BYTES = 16
_TOKEN_BYTES = _HEAD.size + _MAC_BYTES
TOKEN_CHARS = math.ceil(_TOKEN_BYTES * 4 / 3)  # base64url without padding
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\Z")
#: The largest value of the 32-bit ``expires`` and ``generation`` fields.
MAX_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class TokenKey:
    """The keys one secret gives: its id in tokens, the MAC key and the binding key."""

    kid: bytes
    mac: bytes
    bind: bytes


@dataclass(frozen=True, slots=True)
class Token:
    """A token whose MAC verified under ``key``: its claims, not yet judged."""

    key: TokenKey
    expires: int
    generation: int
    scope: bytes
    binding: bytes
    token_id: bytes


class Broken(enum.Enum):
    """Why a string is not a token of ours."""

    MALFORMED = "malformed"  # not the format at all
    FORGED = "forged"  # the format, but the MAC is wrong or the key is one we do not hold


def _derive(secret: bytes, label: bytes) -> bytes:
    return hmac.digest(secret, b"captcha-guard/clearance/" + label, "sha256")


def make_key(secret: str | bytes) -> TokenKey:
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
    return TokenKey(_derive(raw, b"kid")[:4], _derive(raw, b"mac"), _derive(raw, b"bind"))


class KeyRing:
    """The configured secrets, newest first: the first signs, every one verifies."""

    __slots__ = ("_by_kid", "signer")

    def __init__(self, secrets: Sequence[str | bytes]) -> None:
        if not secrets:
            raise ValueError("Clearance needs at least one secret")
        keys = [make_key(s) for s in secrets]
        self._by_kid: dict[bytes, TokenKey] = {}
        for key in keys:
            if key.kid in self._by_kid:
                raise ValueError("the same clearance secret is given twice")
            self._by_kid[key.kid] = key
        self.signer = keys[0]

    def __len__(self) -> int:
        return len(self._by_kid)

    def sign(
        self, expires: int, generation: int, scope: bytes, binding: bytes, token_id: bytes = b""
    ) -> str:
        """A token under the signing key (a random id unless one is given)."""
        key = self.signer
        head = _HEAD.pack(
            _VERSION, key.kid, expires, generation, scope, binding, token_id or os.urandom(12)
        )
        return b64(head + hmac.digest(key.mac, head, "sha256")[:_MAC_BYTES])

    def open(self, value: str) -> Token | Broken:
        """The token ``value`` is, if its format holds and its MAC verifies under one of our
        keys. Never raises on input."""
        if len(value) != TOKEN_CHARS or not _TOKEN.match(value):
            return Broken.MALFORMED
        raw = unb64(value)
        if raw is None or len(raw) != _TOKEN_BYTES or raw[0] != _VERSION:
            return Broken.MALFORMED
        head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
        _, kid, expires, generation, scope, binding, token_id = _HEAD.unpack(head)
        key = self._by_kid.get(kid)
        if key is None:
            return Broken.FORGED
        if not hmac.compare_digest(mac, hmac.digest(key.mac, head, "sha256")[:_MAC_BYTES]):
            return Broken.FORGED
        return Token(key, expires, generation, scope, binding, token_id)


def binding(key: TokenKey, network: bytes, user_agent: bytes | None) -> bytes:
    """The keyed hash that ties a token to a network and (unless None) a User-Agent: a cookie
    carried elsewhere is worth nothing, and reveals neither to whoever reads it."""
    agent_hash = hashlib.sha256(user_agent).digest() if user_agent is not None else b""
    return hmac.digest(key.bind, b"net\0" + network + b"\0ua\0" + agent_hash, "sha256")[:8]


@functools.lru_cache(maxsize=1024)  # scopes come from configuration: a handful
def scope_tag(scope: str) -> bytes:
    # Unkeyed, so cookie names survive a key rotation; a rule's scope is not a secret.
    return hashlib.sha256(b"captcha-guard/clearance/scope\0" + scope.encode("utf-8")).digest()[:6]


@functools.lru_cache(maxsize=1024)
def scope_name(scope: str) -> str:
    return b64(scope_tag(scope))


def b64(data: bytes) -> str:
    """base64url without padding (RFC 7515's encoding): the cookie's parts, DeepKnow's JWT."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64_VALUE = {
    c: i
    for i, c in enumerate(string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_")
}


def unb64(text: str) -> bytes | None:
    """Decode unpadded base64url, in its canonical spelling only (one token, one string: the
    unused low bits of the last character must be zero)."""
    unused = len(text) * 6 % 8
    if not text or len(text) % 4 == 1 or _B64_VALUE.get(text[-1], 1) & ((1 << unused) - 1):
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


__all__ = [
    "MAX_U32",
    "MIN_SECRET_BYTES",
    "TOKEN_CHARS",
    "Broken",
    "KeyRing",
    "Token",
    "TokenKey",
    "b64",
    "binding",
    "make_key",
    "scope_name",
    "scope_tag",
    "unb64",
]
