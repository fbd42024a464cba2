"""The Privacy Pass wire structures (RFC 9577 section 2): TokenChallenge and Token.

Bytes in, bytes out: no I/O, no crypto. Every decoder returns None for input that is not
exactly one well-formed structure (trailing bytes included), so nothing a client sends can
raise out of here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

#: Blind RSA (2048-bit), RFC 9578 section 6: the publicly verifiable type Apple devices use.
TOKEN_TYPE_BLIND_RSA = 0x0002
#: The sizes of that type: nonce, challenge digest, key id (Nid) and authenticator (Nk).
NONCE_BYTES = 32
DIGEST_BYTES = 32
KEY_ID_BYTES = 32
AUTHENTICATOR_BYTES = 256
TOKEN_BYTES = 2 + NONCE_BYTES + DIGEST_BYTES + KEY_ID_BYTES + AUTHENTICATOR_BYTES  # 354
CONTEXT_BYTES = 32
#: RFC 9577 section 5.2: token types reserved for greasing.
GREASE_TYPES = (
    0x0000, 0x02AA, 0x1132, 0x2E96, 0x3CD3, 0x4473, 0x5A63, 0x6D32, 0x7F3F,
    0x8D07, 0x916B, 0xA6A4, 0xBEAB, 0xC3F3, 0xDA42, 0xE944, 0xF057,
)  # fmt: skip

_U16 = struct.Struct(">H")
# RFC 9577 section 2.1.1: the authority of a URI, without userinfo (a host, an optional port).
_SERVER_NAME = re.compile(
    r"[A-Za-z0-9._~!$&'()*+;=%-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}\Z")


def b64encode(data: bytes) -> str:
    """base64url WITH padding, as RFC 9577 requires for every PrivateToken parameter."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64decode(text: str, limit: int = 4096) -> bytes | None:
    """base64url with or without its padding (clients are told to pad; being strict about a
    missing "=" would only refuse honest clients). None for anything else."""
    if len(text) > limit or not _B64URL.match(text):
        return None
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (len(text) != len(body) and len(text) % 4):
        return None
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None


def is_server_name(name: str) -> bool:
    """An issuer or origin name as RFC 9577 section 2.1.1 spells one (host[:port])."""
    return 0 < len(name) <= 255 and name.isascii() and _SERVER_NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class TokenChallenge:
    """``struct { uint16 token_type; opaque issuer_name<1..2^16-1>;
    opaque redemption_context<0..32>; opaque origin_info<0..2^16-1>; }``"""

    token_type: int
    issuer_name: bytes
    redemption_context: bytes
    origin_info: bytes

    def encode(self) -> bytes:
        if not 0 <= self.token_type <= 0xFFFF:
            raise ValueError("token_type is a uint16")
        if not 1 <= len(self.issuer_name) <= 0xFFFF:
            raise ValueError("issuer_name must be 1 to 65535 bytes")
        if len(self.redemption_context) not in (0, CONTEXT_BYTES):
            raise ValueError("redemption_context must be 0 or 32 bytes")
        if len(self.origin_info) > 0xFFFF:
            raise ValueError("origin_info must be at most 65535 bytes")
        return b"".join(
            (
                _U16.pack(self.token_type),
                _U16.pack(len(self.issuer_name)),
                self.issuer_name,
                bytes([len(self.redemption_context)]),
                self.redemption_context,
                _U16.pack(len(self.origin_info)),
                self.origin_info,
            )
        )

    def digest(self) -> bytes:
        """SHA-256 of the encoding: what a token's challenge_digest must equal."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> TokenChallenge | None:
        """The challenge ``data`` encodes exactly, or None."""
        try:
            (token_type,) = _U16.unpack_from(data, 0)
            (issuer_len,) = _U16.unpack_from(data, 2)
            at = 4 + issuer_len
            issuer = data[4:at]
            context_len = data[at]
            context = data[at + 1 : at + 1 + context_len]
            at += 1 + context_len
            (origin_len,) = _U16.unpack_from(data, at)
            origin = data[at + 2 : at + 2 + origin_len]
            end = at + 2 + origin_len
        except (struct.error, IndexError):
            return None
        if (
            end != len(data)
            or len(origin) != origin_len
            or issuer_len == 0
            or len(issuer) != issuer_len
            or context_len not in (0, CONTEXT_BYTES)
            or len(context) != context_len
        ):
            return None
        return cls(token_type, bytes(issuer), bytes(context), bytes(origin))


@dataclass(frozen=True, slots=True)
class Token:
    """``struct { uint16 token_type; uint8 nonce[32]; uint8 challenge_digest[32];
    uint8 token_key_id[32]; uint8 authenticator[256]; }`` (the Blind RSA 2048 layout)."""

    token_type: int
    nonce: bytes
    challenge_digest: bytes
    token_key_id: bytes
    authenticator: bytes

    def authenticator_input(self) -> bytes:
        """What the issuer signed: every field before the authenticator."""
        return _U16.pack(self.token_type) + self.nonce + self.challenge_digest + self.token_key_id

    def encode(self) -> bytes:
        return self.authenticator_input() + self.authenticator

    @classmethod
    def decode(cls, data: bytes) -> Token | None:
        """A Blind RSA 2048 token of exactly 354 bytes, or None (any other type or size)."""
        if len(data) != TOKEN_BYTES:
            return None
        (token_type,) = _U16.unpack_from(data, 0)
        if token_type != TOKEN_TYPE_BLIND_RSA:
            return None
        a = 2 + NONCE_BYTES
        b = a + DIGEST_BYTES
        c = b + KEY_ID_BYTES
        return cls(token_type, data[2:a], data[a:b], data[b:c], data[c:])


__all__ = [
    "AUTHENTICATOR_BYTES",
    "CONTEXT_BYTES",
    "GREASE_TYPES",
    "TOKEN_BYTES",
    "TOKEN_TYPE_BLIND_RSA",
    "Token",
    "TokenChallenge",
    "b64decode",
    "b64encode",
    "is_server_name",
]
