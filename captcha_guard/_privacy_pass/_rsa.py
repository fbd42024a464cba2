"""RSASSA-PSS verification of a token's authenticator (RFC 9578 section 6.4), with the
``cryptography`` package (the ``captcha-guard[private-tokens]`` extra).

SHA-384 and MGF1-SHA-384; the salt lengths of RFC 9474's two variants registered for token
type 2: 48 bytes (RSABSSA-SHA384-PSS-Deterministic) first, then 0 (PSSZERO). The PSS
signature itself says nothing of its salt length, so a signature made with one never checks
with the other; trying both costs a second modular exponentiation for a forgery only.
"""

from __future__ import annotations

from typing import Any

from ._spki import IssuerKey

SALT_LENGTHS = (48, 0)
INSTALL_HINT = (
    "private tokens need the cryptography package: pip install 'captcha-guard[private-tokens]'"
)


def available() -> bool:
    """Whether ``cryptography`` can be imported here."""
    try:
        import cryptography.hazmat.primitives.asymmetric.rsa  # noqa: F401
    except ImportError:
        return False
    return True


class Verifier:
    """Checks authenticators against one issuer key (the key object is built once)."""

    def __init__(self, key: IssuerKey) -> None:
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding, rsa
        except ImportError as exc:  # pragma: no cover - the extra is installed in tests
            raise RuntimeError(INSTALL_HINT) from exc
        self.key = key
        self._public: Any = rsa.RSAPublicNumbers(key.exponent, key.modulus).public_key()
        self._invalid = InvalidSignature
        self._hash = hashes.SHA384()
        self._paddings = [
            padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=salt)
            for salt in SALT_LENGTHS
        ]

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's RSASSA-PSS signature of ``message``."""
        if len(signature) != (self.key.modulus.bit_length() + 7) // 8:
            return False
        for pss in self._paddings:
            try:
                self._public.verify(signature, message, pss, self._hash)
            except self._invalid:
                continue
            except (ValueError, TypeError):
                return False
            return True
        return False


__all__ = ["INSTALL_HINT", "SALT_LENGTHS", "Verifier", "available"]
