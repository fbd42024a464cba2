"""ProofOfWork: self-hosted ALTCHA (v1) challenges, verified on this server alone.

The front doors serve a fresh signed challenge as JSON at ``challenge_path``; the ALTCHA
widget finds the number whose SHA-256 with the salt is the challenge and posts back base64
JSON ``{algorithm, challenge, number, salt, signature}`` in the ``altcha`` field. Nothing
leaves the server, so this provider can never be unavailable: every answer is passed or
rejected, and the breaker is never asked.

Challenges are made by the ``altcha`` package. Verification uses its hash and HMAC helpers
too, but compares in constant time and checks the payload's shape strictly first: only
challenges shaped like the ones we issue (SHA-256, our salt with its ``expires``) are judged.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final

from altcha.v1 import ChallengeOptions, create_challenge, hash_hex, hmac_hex

from ..fields import FieldError, Fields
from ..replay import MemoryReplayStore, ReplayStore, ReplayStoreFull
from ..verdict import MISCONFIGURATION, REFUSED, Outcome, Verdict
from .base import Provider, RequestInfo

#: About 0.05 s on average for altcha's own Python solver on one core; the widget with Web
#: Crypto in a browser is of the same order. ALTCHA's default of 1e6 takes ten times that.
DEFAULT_MAX_NUMBER = 100_000
DEFAULT_EXPIRES = 300.0
DEFAULT_CHALLENGE_PATH = "/captcha-guard/challenge"
DEFAULT_FIELD = "altcha"

ALGORITHM: Final = "SHA-256"
_MIN_SECRET_LENGTH = 16
# The widget's payload is about 250 characters of base64; anything far longer is not one.
_MAX_PAYLOAD_CHARS = 2048
# A number far above any max_number we would issue, so str(number) stays short.
_MAX_NUMBER_BOUND = 10**12
# The salt create_challenge_v1 makes for us: 12 random bytes in hex, our expiry, the "&"
# that stops parameter splicing. Only this shape is judged, so expiry parsing is unambiguous.
_SALT = re.compile(r"[0-9a-f]{24}\?expires=([0-9]{1,12})&")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class ProofOfWork(Provider):
    """ALTCHA-compatible proof of work, signed with ``secret`` (keep it private and long).

    ``max_number`` sets the work (the widget tries up to that many hashes, half on average),
    ``expires`` how many seconds a challenge may be solved and used in, ``challenge_path``
    where the front doors serve challenges, ``field`` the form field carrying the solution.
    ``replay_store`` remembers used challenges until they expire (in memory by default, at
    most ``DEFAULT_MAX_ENTRIES``); ``clock`` is Unix time, injectable for tests.
    """

    name: ClassVar[str] = "proof_of_work"
    remote: ClassVar[bool] = False

    def __init__(
        self,
        secret: str | bytes,
        *,
        max_number: int = DEFAULT_MAX_NUMBER,
        expires: float = DEFAULT_EXPIRES,
        challenge_path: str = DEFAULT_CHALLENGE_PATH,
        field: str = DEFAULT_FIELD,
        replay_store: ReplayStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(secret, (str, bytes)) or len(secret) < _MIN_SECRET_LENGTH:
            raise ValueError(
                f"ProofOfWork: secret must be a str or bytes of at least {_MIN_SECRET_LENGTH}"
                " characters (e.g. secrets.token_hex(32))"
            )
        if isinstance(max_number, bool) or not isinstance(max_number, int):
            raise TypeError("ProofOfWork: max_number must be an int")
        if not 1 <= max_number <= _MAX_NUMBER_BOUND:
            raise ValueError(f"ProofOfWork: max_number must be in 1..{_MAX_NUMBER_BOUND}")
        if not expires >= 1:
            raise ValueError("ProofOfWork: expires must be >= 1 second")
        if not isinstance(challenge_path, str) or not challenge_path.startswith("/"):
            raise ValueError("ProofOfWork: challenge_path must be a path starting with '/'")
        if not isinstance(field, str) or not field:
            raise ValueError("ProofOfWork: field must be a non-empty string")
        super().__init__()
        self._secret = secret
        self.max_number = max_number
        self.expires = float(expires)
        self.challenge_path = challenge_path
        self.field = field
        self.replay_store: ReplayStore = (
            replay_store if replay_store is not None else MemoryReplayStore()
        )
        self._clock = clock

    def __repr__(self) -> str:  # never the secret
        return (
            f"ProofOfWork(max_number={self.max_number}, expires={self.expires:g}, "
            f"challenge_path={self.challenge_path!r}, field={self.field!r})"
        )

    def new_challenge(self) -> dict[str, Any]:
        expires_at = datetime.datetime.fromtimestamp(
            self._clock() + self.expires, tz=datetime.timezone.utc
        )
        challenge = create_challenge(
            ChallengeOptions(
                algorithm=ALGORITHM,
                max_number=self.max_number,
                hmac_key=self._secret,
                expires=expires_at,
            )
        )
        # The widget's JSON spelling (ALTCHA's JS, Ruby and Elixir libraries agree on it).
        return {
            "algorithm": challenge.algorithm,
            "challenge": challenge.challenge,
            "maxnumber": challenge.max_number,
            "salt": challenge.salt,
            "signature": challenge.signature,
        }

    def check(self, fields: Fields, request: RequestInfo) -> Verdict:
        payload = _decode(self.field, fields.one(self.field))
        salt, number = payload["salt"], payload["number"]
        challenge, signature = payload["challenge"], payload["signature"]
        worked = hash_hex(ALGORITHM, f"{salt}{number}".encode())
        if not hmac.compare_digest(worked, challenge):
            return self.rejected("proof of work: wrong number")
        expected = hmac_hex(ALGORITHM, challenge.encode(), self._secret)
        if not hmac.compare_digest(expected, signature):
            return self.rejected("proof of work: bad signature")
        expires_at = int(payload["expires"])
        now = self._clock()
        if now > expires_at:
            return self.rejected("proof of work: challenge expired")
        try:
            first = self.replay_store.remember(f"altcha:{challenge}", expires_at, now)
        except ReplayStoreFull:
            # Refused, not forgotten: see MemoryReplayStore. Loud, since the operator may need
            # a larger store or a shorter ``expires``.
            hint = "replay store full: raise its max_entries or lower expires"
            return self.rejected(
                "proof of work: too many recent solutions, retry later", {"misconfiguration": hint}
            )
        except Exception as exc:
            # A shared store that cannot answer cannot vouch for the solution: a 503 (the
            # REFUSED detail), never a 500 and never a pass.
            hint = f"replay store failed ({type(exc).__name__})"
            details = {REFUSED: "replay store unavailable", MISCONFIGURATION: hint}
            return Verdict(Outcome.FALLBACK, f"proof of work: {hint}", self.name, details)
        if not first:
            return self.rejected("proof of work: challenge already used")
        return self.passed("ok", {"expires": expires_at})


def _decode(name: str, encoded: str) -> dict[str, Any]:
    """The widget's payload, checked for shape; FieldError (403) for anything else."""
    malformed = FieldError(f"malformed {name}")
    if len(encoded) > _MAX_PAYLOAD_CHARS:
        raise malformed
    try:
        document = json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):  # bad base64, UTF-8 or JSON
        raise malformed from None
    if not isinstance(document, dict) or document.get("algorithm") != ALGORITHM:
        raise malformed
    number = document.get("number")
    if isinstance(number, bool) or not isinstance(number, int):
        raise malformed
    if not 0 <= number <= _MAX_NUMBER_BOUND:
        raise malformed
    salt = document.get("salt")
    salted = _SALT.fullmatch(salt) if isinstance(salt, str) else None
    if salted is None:
        raise malformed
    for key in ("challenge", "signature"):
        value = document.get(key)
        if not isinstance(value, str) or not _HEX_SHA256.fullmatch(value):
            raise malformed
    return {**document, "expires": salted.group(1)}


__all__ = ["DEFAULT_CHALLENGE_PATH", "DEFAULT_FIELD", "DEFAULT_MAX_NUMBER", "ProofOfWork"]
