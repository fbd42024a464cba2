"""A Privacy Pass issuer and client for tests: blind RSA issuance (RFC 9474,
RSABSSA-SHA384-PSS-Deterministic, as RFC 9578 section 6 uses it), written from the RFCs.

``Issuer`` holds a throwaway 2048-bit key and signs blinded messages; ``issue_token`` runs
the whole client side (blind, sign, finalize) for one TokenChallenge, so tests redeem real
tokens that no code of the gate helped make. ``issue_token`` with the RFC 9578 vectors'
``nonce``, ``blind`` and ``salt`` reproduces their ``token_request`` and ``token`` exactly.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# The fixed DER head of a 2048-bit id-RSASSA-PSS SPKI with SHA-384, MGF1-SHA-384, salt 48
# (RFC 9578 section 6.5), up to the RSAPublicKey inside its BIT STRING.
_PSS_SPKI_HEAD = bytes.fromhex(
    "30820152303d06092a864886f70d01010a3030a00d300b0609608648016503040202a11a30180609"
    "2a864886f70d010108300b0609608648016503040202a2030201300382010f00"
)
_HASH_BYTES = 48


def pss_spki(public: rsa.RSAPublicKey) -> bytes:
    """The Privacy Pass encoding of a 2048-bit public key."""
    pkcs1 = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return _PSS_SPKI_HEAD + pkcs1


def _mgf1(seed: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def emsa_pss_encode(message: bytes, salt: bytes, em_bits: int) -> bytes:
    """RFC 8017 section 9.1.1 with SHA-384 and MGF1-SHA-384."""
    em_len = math.ceil(em_bits / 8)
    m_hash = hashlib.sha384(message).digest()
    h = hashlib.sha384(b"\0" * 8 + m_hash + salt).digest()
    db = b"\0" * (em_len - len(salt) - _HASH_BYTES - 2) + b"\x01" + salt
    masked = bytes(a ^ b for a, b in zip(db, _mgf1(h, em_len - _HASH_BYTES - 1), strict=True))
    top_bits = 8 * em_len - em_bits
    masked = bytes([masked[0] & (0xFF >> top_bits)]) + masked[1:]
    return masked + h + b"\xbc"


@dataclass
class Blinded:
    token_request: bytes
    blinded_msg: bytes
    inv: int


class Issuer:
    """One issuer key. ``Issuer()`` makes a fresh one; ``Issuer.from_pem`` loads one."""

    def __init__(self, private: rsa.RSAPrivateKey | None = None) -> None:
        self.private = private or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.private.private_numbers()
        self.n = numbers.public_numbers.n
        self.e = numbers.public_numbers.e
        self.d = numbers.d
        self.spki = pss_spki(self.private.public_key())
        self.token_key_id = hashlib.sha256(self.spki).digest()

    @classmethod
    def from_pem(cls, pem: bytes) -> Issuer:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(key)

    def blind_sign(self, blinded_msg: bytes) -> bytes:
        """RFC 9474 BlindSign: RSASP1 on the blinded message (the issuer sees nothing else)."""
        m = int.from_bytes(blinded_msg, "big")
        s = pow(m, self.d, self.n)
        assert pow(s, self.e, self.n) == m
        return s.to_bytes(256, "big")

    def directory(self, *, not_before: int | None = None) -> dict[str, object]:
        import base64

        entry: dict[str, object] = {
            "token-type": 2,
            "token-key": base64.urlsafe_b64encode(self.spki).decode(),
        }
        if not_before is not None:
            entry["not-before"] = not_before
        return {"issuer-request-uri": "/token-request", "token-keys": [entry]}


def blind(issuer: Issuer, token_input: bytes, salt: bytes, r: int) -> Blinded:
    """RFC 9474 Blind, with the salt and blind ``r`` given (the vectors fix both)."""
    encoded = emsa_pss_encode(token_input, salt, issuer.n.bit_length() - 1)
    m = int.from_bytes(encoded, "big")
    assert math.gcd(m, issuer.n) == 1
    z = m * pow(r, issuer.e, issuer.n) % issuer.n
    blinded_msg = z.to_bytes(256, "big")
    request = b"\x00\x02" + issuer.token_key_id[-1:] + blinded_msg
    return Blinded(request, blinded_msg, pow(r, -1, issuer.n))


def finalize(issuer: Issuer, blind_sig: bytes, inv: int) -> bytes:
    return (int.from_bytes(blind_sig, "big") * inv % issuer.n).to_bytes(256, "big")


def issue_token(
    issuer: Issuer,
    challenge: bytes,
    *,
    nonce: bytes | None = None,
    salt: bytes | None = None,
    r: int | None = None,
) -> tuple[bytes, Blinded, bytes]:
    """(the 354-byte Token, the blinding, the issuer's TokenResponse) for ``challenge``."""
    nonce = secrets.token_bytes(32) if nonce is None else nonce
    salt = secrets.token_bytes(48) if salt is None else salt
    if r is None:
        while True:
            r = secrets.randbelow(issuer.n - 2) + 2
            if math.gcd(r, issuer.n) == 1:
                break
    digest = hashlib.sha256(challenge).digest()
    token_input = b"\x00\x02" + nonce + digest + issuer.token_key_id
    blinded = blind(issuer, token_input, salt, r)
    response = issuer.blind_sign(blinded.blinded_msg)
    authenticator = finalize(issuer, response, blinded.inv)
    return token_input + authenticator, blinded, response


def sign_directly(issuer: Issuer, challenge: bytes, nonce: bytes | None = None) -> bytes:
    """A token signed with plain RSASSA-PSS (no blinding): the same bytes a verifier sees."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    nonce = secrets.token_bytes(32) if nonce is None else nonce
    token_input = b"\x00\x02" + nonce + hashlib.sha256(challenge).digest() + issuer.token_key_id
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    return token_input + issuer.private.sign(token_input, pss, hashes.SHA384())
