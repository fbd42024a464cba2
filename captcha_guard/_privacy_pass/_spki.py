"""Issuer public keys as Privacy Pass encodes them: a DER SubjectPublicKeyInfo with the
RSASSA-PSS object identifier (RFC 9578 section 6.5, RFC 5756), and its ``token_key_id``.

A small DER reader of our own, not a general ASN.1 parser: it accepts exactly the shape the
RFC prescribes (id-RSASSA-PSS, SHA-384, MGF1 with SHA-384, a salt length) and returns the
modulus and exponent, so no crypto library has to understand the PSS algorithm identifier.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_SEQUENCE, _INTEGER, _BIT_STRING, _NULL, _OID = 0x30, 0x02, 0x03, 0x05, 0x06
_ID_RSASSA_PSS = bytes.fromhex("2a864886f70d01010a")  # 1.2.840.113549.1.1.10
_ID_MGF1 = bytes.fromhex("2a864886f70d010108")  # 1.2.840.113549.1.1.8
_ID_SHA384 = bytes.fromhex("608648016503040202")  # 2.16.840.1.101.3.4.2.2
#: RFC 9578 token type 2 is Blind RSA 2048: a modulus of exactly 2048 bits.
MODULUS_BITS = 2048
MAX_KEY_BYTES = 1024


class _Bad(Exception):
    pass


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """One issuer's public key: the SPKI as published, its id, and the RSA numbers."""

    spki: bytes
    token_key_id: bytes
    modulus: int
    exponent: int
    salt_length: int

    def __repr__(self) -> str:
        return f"IssuerKey(id={self.token_key_id[:8].hex()}…, salt={self.salt_length})"


def token_key_id(spki: bytes) -> bytes:
    """SHA-256 of the DER SPKI (RFC 9578 section 6.5)."""
    return hashlib.sha256(spki).digest()


def parse_spki(spki: bytes) -> IssuerKey | None:
    """The key ``spki`` holds if it is a 2048-bit RSASSA-PSS SPKI with SHA-384, else None."""
    if not isinstance(spki, bytes) or len(spki) > MAX_KEY_BYTES:
        return None
    try:
        algorithm, body = _tlv(_tlv_all(spki, _SEQUENCE), _SEQUENCE)
        bits = _tlv_all(body, _BIT_STRING)
        oid, params = _tlv(algorithm, _OID)
        if oid != _ID_RSASSA_PSS:
            raise _Bad
        salt = _pss_params(params)
        if not bits or bits[0] != 0:  # no unused bits in a DER-encoded key
            raise _Bad
        numbers = _tlv_all(bits[1:], _SEQUENCE)
        modulus_der, numbers = _tlv(numbers, _INTEGER)
        exponent_der, numbers = _tlv(numbers, _INTEGER)
        if numbers:
            raise _Bad
    except _Bad:
        return None
    modulus = _unsigned(modulus_der)
    exponent = _unsigned(exponent_der)
    if modulus is None or exponent is None or modulus.bit_length() != MODULUS_BITS:
        return None
    if exponent < 3 or exponent % 2 == 0:
        return None
    return IssuerKey(bytes(spki), token_key_id(spki), modulus, exponent, salt)


def _pss_params(params: bytes) -> int:
    """The salt length of RSASSA-PSS-params, which must name SHA-384 and MGF1-SHA-384."""
    hash_alg, body = _tlv(_tlv_all(params, _SEQUENCE), 0xA0)
    mgf, body = _tlv(body, 0xA1)
    salt_der, body = _tlv(body, 0xA2)
    if body:  # a trailerField, if any, must be the default: we accept none
        raise _Bad
    if _algorithm_oid(_tlv_all(hash_alg, _SEQUENCE)) != _ID_SHA384:
        raise _Bad
    mgf_body = _tlv_all(mgf, _SEQUENCE)
    mgf_oid, mgf_params = _tlv(mgf_body, _OID)
    if mgf_oid != _ID_MGF1 or _algorithm_oid(_tlv_all(mgf_params, _SEQUENCE)) != _ID_SHA384:
        raise _Bad
    salt = _unsigned(_tlv_all(salt_der, _INTEGER))
    if salt is None or salt > 64:
        raise _Bad
    return salt


def _algorithm_oid(body: bytes) -> bytes:
    oid, rest = _tlv(body, _OID)
    if rest and rest != bytes([_NULL, 0]):
        raise _Bad
    return oid


def _tlv_all(data: bytes, tag: int) -> bytes:
    value, rest = _tlv(data, tag)
    if rest:
        raise _Bad
    return value


def _tlv(data: bytes, tag: int) -> tuple[bytes, bytes]:
    """One DER element of ``tag``: (its contents, what follows it)."""
    if len(data) < 2 or data[0] != tag:
        raise _Bad
    length = data[1]
    at = 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 2 or len(data) < 2 + count:
            raise _Bad
        length = int.from_bytes(data[2 : 2 + count], "big")
        if length < 0x80 or (count == 2 and length < 0x100):  # DER: the shortest form only
            raise _Bad
        at = 2 + count
    if len(data) < at + length:
        raise _Bad
    return data[at : at + length], data[at + length :]


def _unsigned(der: bytes) -> int | None:
    if not der or der[0] & 0x80:
        return None  # negative
    if len(der) > 1 and der[0] == 0 and not der[1] & 0x80:
        return None  # not minimal
    return int.from_bytes(der, "big")


__all__ = ["MODULUS_BITS", "IssuerKey", "parse_spki", "token_key_id"]
