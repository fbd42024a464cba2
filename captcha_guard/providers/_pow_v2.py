"""ALTCHA proof of work v2: key-derivation challenges, issued deterministically, checked by HMAC.

The wire format is ALTCHA's (altcha-lib, the ``altcha`` package's ``altcha.v2``, widget 3.x):
a challenge is ``{"parameters": {algorithm, cost, keyLength, keyPrefix, keySignature, nonce,
salt, expiresAt, data, [memoryCost, parallelism]}, "signature"}``; the client finds the
``counter`` for which ``KDF(salt, nonce || uint32be(counter))`` starts with ``keyPrefix`` and
posts base64 JSON ``{"challenge": {...}, "solution": {"counter", "derivedKey"}}``.

Theory of operation (issue 17, section 4).

*Deterministic.* The server draws the counter itself (uniform below the level's
``max_number``, as v1 draws its number), runs the KDF once, and publishes the first half of
the derived key as ``keyPrefix``: only that counter matches, so the client's work is the
counter times the KDF's cost. It also signs the whole derived key (``keySignature``, under a
second key), so checking a solution is one HMAC of the key the client sends, never a KDF run:
a flood of bad solutions costs the server what it costs for v1.

*Issuing costs a KDF run, on an unauthenticated GET.* Two bounds: the KDF's parameters are
capped when the provider is built (``check_kdf``), so one challenge costs at most about a
millisecond of one core for PBKDF2 and a few for the memory-hard ones; and an ``IssueBudget``
caps the share of one core a process spends issuing. Past it the challenge endpoint answers
503 ``captcha_busy`` with ``Retry-After`` instead of queueing work (bench/pow_issue.py).

*The same bindings as v1.* The level's ``max_number`` travels in the signed ``data`` (so the
difficulty cannot be lowered), the algorithm and its cost must be this provider's, the signing
keys are derived from the secret, the realm and the lifetime (so no other provider's challenge
verifies), and the replay memory is v1's, keyed by the server-chosen nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .._fields import FieldError
from ._pow_v1 import load_payload

PBKDF2_SHA256: Final = "PBKDF2/SHA-256"
SCRYPT: Final = "SCRYPT"
ARGON2ID: Final = "ARGON2ID"
ALGORITHMS: Final = (PBKDF2_SHA256, "PBKDF2/SHA-384", "PBKDF2/SHA-512", SCRYPT, ARGON2ID)
#: PBKDF2 iterations per attempt. Small on purpose: the server pays one run per challenge it
#: issues, the client pays ``counter`` runs, so the work is best put in the counter's range.
DEFAULT_COST = 100
#: The counter's range at the first level: an honest browser's median solve is about a
#: tenth of a second (bench/README.md); the escalation levels multiply it as for v1.
DEFAULT_MAX_COUNTER = 2_000
#: The share of one core a process may spend deriving keys for challenges it issues.
DEFAULT_ISSUE_BUDGET = 0.25

# Caps on what one issued challenge may cost (and so what a client may be asked to do per
# attempt): a site that wants more work raises the counter's range, which issuing does not pay.
_MAX_PBKDF2_COST = 10_000
_MAX_SCRYPT_N = 1 << 14  # with r=8: 16 MiB and tens of milliseconds per run
_MAX_SCRYPT_R = 16
_MAX_ARGON2_TIME = 4
_MAX_ARGON2_MEMORY_KIB = 65_536
_MAX_PARALLELISM = 4
MAX_COUNTER: Final = 0xFFFFFFFF  # the counter is a big-endian uint32 in the password
_KEY_LENGTH = 32
_PREFIX_BYTES = _KEY_LENGTH // 2
_MAX_PAYLOAD_CHARS = 4096
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[1-9][0-9]{0,9}")
_SIGNING_LABEL: Final = b"captcha-guard proof-of-work v2 challenge"
_KEY_SIGNING_LABEL: Final = b"captcha-guard proof-of-work v2 derived key"


@dataclass(frozen=True, slots=True)
class Kdf:
    """One key derivation, with the parameters every challenge of a provider carries."""

    algorithm: str
    cost: int
    memory_cost: int | None = None
    parallelism: int | None = None

    def derive(self, salt: bytes, password: bytes) -> bytes:
        if self.algorithm.startswith("PBKDF2/"):
            digest = "sha" + self.algorithm.rsplit("-", 1)[1]
            return hashlib.pbkdf2_hmac(digest, password, salt, self.cost, _KEY_LENGTH)
        if self.algorithm == SCRYPT:
            n, r, p = self.cost, self.memory_cost or 8, self.parallelism or 1
            return hashlib.scrypt(
                password, salt=salt, n=n, r=r, p=p, dklen=_KEY_LENGTH, maxmem=256 * n * r * p
            )
        from argon2.low_level import Type, hash_secret_raw  # the [argon2] extra

        return hash_secret_raw(
            secret=password,
            salt=salt,
            time_cost=self.cost,
            memory_cost=self.memory_cost or _MAX_ARGON2_MEMORY_KIB,
            parallelism=self.parallelism or 1,
            hash_len=_KEY_LENGTH,
            type=Type.ID,
        )

    def wire(self) -> dict[str, Any]:
        """The parameters as the challenge spells them (memoryCost and parallelism only
        where the algorithm has them)."""
        out: dict[str, Any] = {"algorithm": self.algorithm, "cost": self.cost}
        if self.memory_cost is not None:
            out["memoryCost"] = self.memory_cost
        if self.parallelism is not None:
            out["parallelism"] = self.parallelism
        return out


def check_kdf(
    algorithm: str, cost: int | None, memory_cost: int | None, parallelism: int | None
) -> Kdf:
    """The ``Kdf`` of these options, or ValueError/TypeError: every cost is capped so that
    issuing one challenge stays cheap (see the module's docstring)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"ProofOfWork: algorithm must be one of {', '.join(ALGORITHMS)}")
    for label, value in (
        ("cost", cost),
        ("memory_cost", memory_cost),
        ("parallelism", parallelism),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"ProofOfWork: {label} must be an int")
    if algorithm.startswith("PBKDF2/"):
        if memory_cost is not None or parallelism is not None:
            raise ValueError("ProofOfWork: PBKDF2 takes no memory_cost or parallelism")
        cost = DEFAULT_COST if cost is None else cost
        _within("cost", cost, 1, _MAX_PBKDF2_COST)
        return Kdf(algorithm, cost)
    if algorithm == SCRYPT:
        cost = 1 << 10 if cost is None else cost
        if cost < 2 or cost & (cost - 1) or cost > _MAX_SCRYPT_N:
            raise ValueError(
                f"ProofOfWork: SCRYPT cost (N) must be a power of 2 up to {_MAX_SCRYPT_N}"
            )
        memory_cost = 8 if memory_cost is None else memory_cost
        _within("memory_cost (r)", memory_cost, 1, _MAX_SCRYPT_R)
        parallelism = 1 if parallelism is None else parallelism
        _within("parallelism", parallelism, 1, _MAX_PARALLELISM)
        return Kdf(algorithm, cost, memory_cost, parallelism)
    try:
        import argon2.low_level  # noqa: F401
    except ImportError:
        raise ValueError(
            "ProofOfWork: ARGON2ID needs argon2-cffi: pip install 'captcha-guard[argon2]'"
        ) from None
    cost = 2 if cost is None else cost
    _within("cost (time)", cost, 1, _MAX_ARGON2_TIME)
    memory_cost = 19_456 if memory_cost is None else memory_cost
    _within("memory_cost (KiB)", memory_cost, 8, _MAX_ARGON2_MEMORY_KIB)
    parallelism = 1 if parallelism is None else parallelism
    _within("parallelism", parallelism, 1, _MAX_PARALLELISM)
    return Kdf(algorithm, cost, memory_cost, parallelism)


def _within(label: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"ProofOfWork: {label} must be in {low}..{high}")


def signing_keys(base_key: bytes) -> tuple[bytes, bytes]:
    """The challenge-signing key and the derived-key-signing key, from the provider's key
    (``derive_key``: secret, realm, lifetime). Two keys, as ALTCHA asks: a solution's key
    signature cannot be made with the key that signs parameters, nor the other way round."""
    sign = hmac.new(base_key, _SIGNING_LABEL, "sha256").digest()
    key_sign = hmac.new(base_key, _KEY_SIGNING_LABEL, "sha256").digest()
    return sign, key_sign


class IssueBusy(Exception):
    """The issuing budget is spent: answer 503 ``captcha_busy``, do not derive a key."""

    retry_after = 1


class IssueBudget:
    """A token bucket of KDF seconds: at most ``share`` of one core on average, with a
    burst of one second's worth. Charged with the time each run actually took, so the bound
    holds whatever the algorithm, the machine or the load."""

    def __init__(self, share: float, clock: Callable[[], float] = time.perf_counter) -> None:
        if isinstance(share, bool) or not isinstance(share, (int, float)):
            raise TypeError("ProofOfWork: issue_budget must be a number (a share of one core)")
        if not 0 < share <= 1:
            raise ValueError("ProofOfWork: issue_budget must be in (0, 1]")
        self.share = float(share)
        self._clock = clock
        self._tokens = self.share
        self._at = clock()
        self._lock = threading.Lock()

    def run(self, work: Callable[[], bytes]) -> bytes:
        """``work()`` if the bucket holds time, charging it what it took; else IssueBusy."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.share, self._tokens + (now - self._at) * self.share)
            self._at = now
            if self._tokens <= 0:
                raise IssueBusy()
        started = self._clock()
        try:
            return work()
        finally:
            spent = self._clock() - started
            with self._lock:
                self._tokens -= spent


def issue(
    kdf: Kdf, keys: tuple[bytes, bytes], max_counter: int, expires_at: int, budget: IssueBudget
) -> dict[str, Any]:
    """A fresh signed challenge of ``max_counter``'s level, as the widget reads it."""
    nonce, salt = secrets.token_hex(16), secrets.token_hex(16)
    counter = secrets.randbelow(max_counter + 1)
    password = bytes.fromhex(nonce) + struct.pack(">I", counter)
    derived = budget.run(lambda: kdf.derive(bytes.fromhex(salt), password))
    parameters = {
        **kdf.wire(),
        "data": {"n": str(max_counter)},
        "expiresAt": expires_at,
        "keyLength": _KEY_LENGTH,
        "keyPrefix": derived[:_PREFIX_BYTES].hex(),
        "keySignature": hmac.new(keys[1], derived, "sha256").hexdigest(),
        "nonce": nonce,
        "salt": salt,
    }
    return {"parameters": parameters, "signature": _sign(keys[0], parameters)}


def _sign(key: bytes, parameters: dict[str, Any]) -> str:
    # ALTCHA signs its canonical JSON (keys sorted, no spaces). Every value we sign or accept
    # is an ASCII string, an int or a table of those, where json.dumps spells it the same.
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), "sha256").hexdigest()


@dataclass(frozen=True, slots=True)
class Solved:
    """A v2 solution that passed every stateless check but the level's and the expiry's."""

    max_counter: int
    expires_at: int
    #: The server-chosen nonce: names the challenge in the replay memory.
    nonce: str


def judge(name: str, encoded: str, kdf: Kdf, keys: tuple[bytes, bytes]) -> Solved | str:
    """The payload's shape (FieldError), then signature, parameters and derived key: a
    ``Solved``, or the reason to reject it. Two HMACs, no KDF run."""
    challenge, solution = _decode(name, encoded)
    parameters = challenge["parameters"]
    if not hmac.compare_digest(_sign(keys[0], parameters), challenge["signature"]):
        # Forged, or issued by another provider (another secret, realm or lifetime).
        return "bad signature"
    if {k: parameters.get(k) for k in kdf.wire()} != kdf.wire() or set(parameters) != set(
        kdf.wire()
    ) | _FIXED_KEYS:
        # Ours, but of an algorithm or cost this provider no longer serves.
        return "difficulty not served here"
    derived = bytes.fromhex(solution["derivedKey"])
    expected = hmac.new(keys[1], derived, "sha256").hexdigest()
    if not hmac.compare_digest(expected, parameters["keySignature"]):
        return "wrong counter"
    return Solved(int(parameters["data"]["n"]), parameters["expiresAt"], parameters["nonce"])


_FIXED_KEYS = frozenset(
    {
        "algorithm",
        "cost",
        "data",
        "expiresAt",
        "keyLength",
        "keyPrefix",
        "keySignature",
        "nonce",
        "salt",
    }
)
_OPTIONAL_KEYS = frozenset({"memoryCost", "parallelism"})


def _decode(name: str, encoded: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The widget's payload, checked for the shape we issue; FieldError (403) otherwise."""
    malformed = FieldError(f"malformed {name}")
    document = load_payload(name, encoded, _MAX_PAYLOAD_CHARS)
    if not isinstance(document, dict) or set(document) != {"challenge", "solution"}:
        raise malformed
    challenge, solution = document["challenge"], document["solution"]
    if not isinstance(challenge, dict) or set(challenge) != {"parameters", "signature"}:
        raise malformed
    parameters, signature = challenge["parameters"], challenge["signature"]
    if not isinstance(signature, str) or not _HEX64.fullmatch(signature):
        raise malformed
    if not isinstance(parameters, dict) or not (
        _FIXED_KEYS <= set(parameters) <= _FIXED_KEYS | _OPTIONAL_KEYS
    ):
        raise malformed
    for key in ("algorithm", "keyPrefix", "keySignature", "nonce", "salt"):
        if not isinstance(parameters[key], str):
            raise malformed
    if parameters["algorithm"] not in ALGORITHMS or not _HEX32.fullmatch(parameters["nonce"]):
        raise malformed
    if not _HEX32.fullmatch(parameters["salt"]) or not _HEX32.fullmatch(parameters["keyPrefix"]):
        raise malformed
    if not _HEX64.fullmatch(parameters["keySignature"]):
        raise malformed
    for key in ("cost", "expiresAt", "keyLength", *(_OPTIONAL_KEYS & set(parameters))):
        value = parameters[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**53:
            raise malformed
    data = parameters["data"]
    if not isinstance(data, dict) or set(data) != {"n"}:
        raise malformed
    if not isinstance(data["n"], str) or not _DIGITS.fullmatch(data["n"]):
        raise malformed
    if not isinstance(solution, dict) or not {"counter", "derivedKey"} <= set(solution):
        raise malformed
    if not set(solution) <= {"counter", "derivedKey", "time"}:
        raise malformed
    counter, derived = solution["counter"], solution["derivedKey"]
    if isinstance(counter, bool) or not isinstance(counter, int) or not 0 <= counter <= MAX_COUNTER:
        raise malformed
    if not isinstance(derived, str) or not _HEX64.fullmatch(derived):
        raise malformed
    return challenge, solution


__all__ = [
    "ALGORITHMS",
    "ARGON2ID",
    "DEFAULT_COST",
    "DEFAULT_ISSUE_BUDGET",
    "DEFAULT_MAX_COUNTER",
    "MAX_COUNTER",
    "PBKDF2_SHA256",
    "SCRYPT",
    "IssueBudget",
    "IssueBusy",
    "Kdf",
    "Solved",
    "check_kdf",
    "issue",
    "judge",
    "signing_keys",
]
