"""Redemption contexts that need no storage: ``HMAC(secret, time bucket)``.

RFC 9577 section 2.1.2 lets an origin bind its challenges to a time window with a
pseudorandom function of that window. Every client asking within one bucket (``window``
seconds) gets the same 32-byte context, so no per-client challenge is stored: at redemption
the gate rebuilds the challenges of the current and the previous bucket and compares their
digests with the token's. A token is therefore accepted for between ``window`` and
``2 * window`` seconds after its challenge was served, and its nonce must be remembered for
exactly as long (``lifetime``) to stop a double spend. The context reveals nothing about the
secret, and a client cannot make one up: a token for a context we never derived matches no
digest.
"""

from __future__ import annotations

import hmac
import math
import struct

_LABEL = b"captcha-guard/private-token/context\0"
_BUCKET = struct.Struct(">q")


class Contexts:
    """The redemption contexts of one secret and one bucket length."""

    def __init__(self, secret: bytes, window: float) -> None:
        self._key = hmac.digest(secret, _LABEL, "sha256")
        self.window = float(window)

    def bucket(self, now: float) -> int:
        return math.floor(now / self.window)

    def context(self, bucket: int) -> bytes:
        return hmac.digest(self._key, _BUCKET.pack(bucket), "sha256")

    def accepted(self, now: float) -> tuple[int, int]:
        """The buckets whose challenges a token may answer at ``now``: current, previous."""
        current = self.bucket(now)
        return current, current - 1

    def lifetime(self, bucket: int, now: float) -> float:
        """Seconds from ``now`` until a challenge of ``bucket`` is no longer accepted."""
        return max(1.0, (bucket + 2) * self.window - now)


__all__ = ["Contexts"]
