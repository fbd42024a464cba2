"""The ALTCHA v1 payload as the widget posts it, checked for the shape ProofOfWork issues."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final

from .._fields import FieldError

ALGORITHM: Final = "SHA-256"
# A number far above any max_number we would issue, so str(number) stays short.
MAX_NUMBER_BOUND: Final = 10**12
# The widget's payload is about 250 characters of base64; anything far longer is not one.
_MAX_PAYLOAD_CHARS = 2048
# The salt create_challenge_v1 makes for us: 12 random bytes in hex, our expiry, the level's
# max_number, the "&" that stops parameter splicing. Only this shape is judged, so parsing the
# parameters is unambiguous.
_SALT = re.compile(r"[0-9a-f]{24}\?expires=([0-9]{1,12})&n=([1-9][0-9]{0,12})&")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def load_payload(name: str, encoded: str, max_chars: int) -> Any:
    """The JSON inside the widget's base64 payload (either version); FieldError (403) for a
    payload too long, or not base64 of UTF-8 JSON."""
    if len(encoded) > max_chars:
        raise FieldError(f"malformed {name}")
    try:
        return json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):  # bad base64, UTF-8 or JSON
        raise FieldError(f"malformed {name}") from None


def decode(name: str, encoded: str) -> dict[str, Any]:
    """The widget's payload, checked for shape; FieldError (403) for anything else."""
    malformed = FieldError(f"malformed {name}")
    document = load_payload(name, encoded, _MAX_PAYLOAD_CHARS)
    if not isinstance(document, dict) or document.get("algorithm") != ALGORITHM:
        raise malformed
    number = document.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise malformed
    if not 0 <= number <= MAX_NUMBER_BOUND:
        raise malformed
    salt = document.get("salt")
    salted = _SALT.fullmatch(salt) if isinstance(salt, str) else None
    if salted is None:
        raise malformed
    for key in ("challenge", "signature"):
        value = document.get(key)
        if not isinstance(value, str) or not _HEX_SHA256.fullmatch(value):
            raise malformed
    return {**document, "expires": salted.group(1), "n": salted.group(2)}


__all__ = ["ALGORITHM", "MAX_NUMBER_BOUND", "decode", "load_payload"]
