"""ProofOfWork: self-hosted ALTCHA challenges (v1, or v2 with version=2), verified here alone.

The front doors serve a fresh signed challenge as JSON at ``challenge_path``; the ALTCHA
widget (2.x and 3.x both speak this format) finds the number whose SHA-256 with the salt is
the challenge and posts back base64 JSON ``{algorithm, challenge, number, salt, signature}``
in the ``altcha`` field. Nothing leaves the server, so this provider can never be
unavailable: every answer is passed or rejected, and the breaker is never asked.

Challenges are made by the ``altcha`` package. Verification uses its hash and HMAC helpers
too, but compares in constant time and checks the payload's shape strictly first: only
challenges shaped like the ones we issue (SHA-256, our salt with its ``expires`` and ``n``)
are judged.

Theory of operation (issue 8, section 3).

*No downgrade.* Each provider signs with its own key, derived from ``secret``, its ``realm``
(the challenge path unless set) and its challenge lifetime, so two providers sharing a secret
do not accept each other's challenges. The salt carries the challenge's difficulty ``n`` (its
``max_number``); the salt is bound by the challenge hash and that by the signature, so ``n``
cannot be lowered, and a challenge is judged only if ``n`` is one of this provider's levels.

*No lock-out by flooding.* Every solution accepted is remembered until its challenge expires,
and a memory that is full must refuse rather than forget. So the replay memory is split by
difficulty level, each level with its own capacity: ``max_number`` first, then
``max_number * step`` for each of ``escalation``. A challenge is remembered in its own
level's memory, so cheap solutions can only ever fill the cheap level. When a level refuses
(it is full), this process issues challenges of the next level up for one challenge lifetime;
by then every entry of the full level has expired, since none of its challenges was issued
after. An attacker must fill every level to lock honest users out, and the top level's work
per entry is set so that this costs far more than eight cores (SECURITY.md has the numbers).
Honest users pay the higher level's work while the attack lasts, and pass.

The memory is the door's state (``_state.py``), one operation per solution,
``remember(namespace, key, ttl)``: namespace ``pow`` for the first level and ``pow:<level>``
above it (each namespace has its own capacity), key the first 128 bits of the challenge hash,
ttl the challenge's remaining lifetime. The gate runs ``check_flow`` (``prepare``, that operation,
``settle``); ``check`` alone cannot judge a solution.
"""

from __future__ import annotations

import datetime
import hmac
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from altcha.v1 import ChallengeOptions, create_challenge, hash_hex, hmac_hex

from .._check import int_arg, seconds_arg
from .._fields import Fields
from .._state import StateFull, StateOp, StateUnavailable
from .._verdict import NO_NOTE, Hint, Note, Outcome, Verdict
from . import _pow_v2 as v2
from ._base import ClientRequest, Provider
from ._pow_pressure import Hints, Pressure, policy_for
from ._pow_v1 import ALGORITHM, MAX_NUMBER_BOUND
from ._pow_v1 import decode as decode_v1
from ._pow_v2 import check_kdf

#: Sized for the widget, the honest side: widget 3.x in Chromium checks one number per Web
#: Crypto call, about 44,000 a CPU second, so about 0.23 s (median; bench/pow_pressure.py),
#: about 1 ms of one core for a native solver. Under a flood the pressure table and the
#: escalation levels make each accepted request cost the flooder 15x that (bench/README.md).
DEFAULT_MAX_NUMBER = 20_000
#: Seconds a challenge may be solved and used in. Every accepted solution is remembered this
#: long, so the lifetime multiplies what a flood can pile up (SECURITY.md).
DEFAULT_EXPIRES = 120.0
#: The difficulty levels above ``max_number``, as multiples of it, served under pressure or
#: while lower levels are full: 16x (about 16 ms native on average) and 128x (about 0.13 s).
DEFAULT_ESCALATION: Final = (16, 128)
DEFAULT_CHALLENGE_PATH = "/captcha-guard/challenge"
DEFAULT_FIELD = "altcha"
#: The shared-state namespace of the first level's replay memory.
NAMESPACE: Final = "pow"
#: A level this full stops being served, before it refuses anything: the challenges of it
#: already handed out (honest users typing) still find room when they come back.
EARLY_FLIP: Final = 0.9

_MIN_SECRET_LENGTH = 16
# The label of the key derivation: a new label would be a new key for every provider.
_KEY_LABEL: Final = b"captcha-guard proof-of-work key v1"
# 128 bits of the challenge hash name a challenge in the replay memory: server-chosen values,
# so no client can aim for a collision, and half the memory of the whole hash.
_KEY_HEX_CHARS = 32


def derive_key(secret: str | bytes, realm: str, expires: float) -> bytes:
    """The HMAC key of one provider: its own, so that no other provider's challenge verifies.

    ``expires`` is part of it because a challenge lifetime is part of what a challenge may
    cost an attacker: a long-lived challenge from another provider must not serve here."""
    raw = secret.encode() if isinstance(secret, str) else secret
    context = b"\0".join(
        [_KEY_LABEL, realm.encode("utf-8", "surrogatepass"), f"{expires:g}".encode()]
    )
    return hmac.new(raw, context, "sha256").digest()


class ProofOfWork(Provider):
    """ALTCHA-compatible proof of work, signed with ``secret`` (keep it private and long).

    ``max_number`` sets the work (the widget tries up to that many hashes, half on average),
    ``expires`` how many seconds a challenge may be solved and used in, ``challenge_path``
    where the front doors serve challenges, ``field`` the form field carrying the solution.
    ``realm`` names this provider in its signing key (default: ``challenge_path``); give two
    providers on one secret different realms (or paths) so neither accepts the other's
    challenges. ``escalation`` lists the harder levels (multiples of ``max_number``) served
    while the replay memory of the levels below is full; ``()`` turns escalation off.
    Used challenges are remembered until they expire in the door's ``state=`` (one namespace,
    with its own capacity, per level). ``clock`` is Unix time, injectable for tests.

    ``version=2`` serves ALTCHA proof of work v2 (``algorithm``, ``cost``, ``memory_cost``,
    ``parallelism`` choose the KDF; ``issue_budget`` bounds what issuing costs: _pow_v2).
    ``pressure`` raises the level with the rate of passing solutions, fleet-wide and per
    network, and with request signals a site chooses: a ``Pressure`` table, ``True`` for the
    default one, ``False`` for none (_pow_pressure).
    """

    name: ClassVar[str] = "proof_of_work"
    remote: ClassVar[bool] = False

    def __init__(
        self,
        secret: str | bytes,
        *,
        version: int = 1,
        max_number: int | None = None,
        expires: float = DEFAULT_EXPIRES,
        challenge_path: str = DEFAULT_CHALLENGE_PATH,
        field: str = DEFAULT_FIELD,
        clock: Callable[[], float] = time.time,
        realm: str | None = None,
        escalation: Sequence[int] = DEFAULT_ESCALATION,
        algorithm: str = v2.PBKDF2_SHA256,
        cost: int | None = None,
        memory_cost: int | None = None,
        parallelism: int | None = None,
        issue_budget: float = v2.DEFAULT_ISSUE_BUDGET,
        pressure: Pressure | bool = True,
    ) -> None:
        if not isinstance(secret, (str, bytes)) or len(secret) < _MIN_SECRET_LENGTH:
            raise ValueError(
                f"ProofOfWork: secret must be a str or bytes of at least {_MIN_SECRET_LENGTH}"
                " characters (e.g. secrets.token_hex(32))"
            )
        if version not in (1, 2) or isinstance(version, bool):
            raise ValueError("ProofOfWork: version must be 1 or 2")
        if max_number is None:
            max_number = DEFAULT_MAX_NUMBER if version == 1 else v2.DEFAULT_MAX_COUNTER
        bound = MAX_NUMBER_BOUND if version == 1 else v2.MAX_COUNTER
        int_arg(max_number, "max_number", maximum=bound, owner="ProofOfWork", wrong_type=TypeError)
        # A wrong type was always the comparison's TypeError here; it stays one.
        seconds_arg(
            expires, "expires", minimum=1, inclusive=True, owner="ProofOfWork", wrong_type=TypeError
        )
        if not isinstance(challenge_path, str) or not challenge_path.startswith("/"):
            raise ValueError("ProofOfWork: challenge_path must be a path starting with '/'")
        if not isinstance(field, str) or not field:
            raise ValueError("ProofOfWork: field must be a non-empty string")
        if realm is not None and (not isinstance(realm, str) or not realm):
            raise ValueError("ProofOfWork: realm must be a non-empty string")
        levels = _levels(max_number, escalation, bound)
        if version == 1 and (cost, memory_cost, parallelism) != (None, None, None):
            raise ValueError("ProofOfWork: cost, memory_cost and parallelism are for version=2")
        #: The KDF of version 2 (None for version 1).
        self.kdf = check_kdf(algorithm, cost, memory_cost, parallelism) if version == 2 else None
        self._issue_budget = v2.IssueBudget(issue_budget)
        #: The policy that raises levels under pressure (None: off) and what it has learnt.
        self.pressure = policy_for(pressure, len(levels))
        self.hints = None if self.pressure is None else Hints(self.pressure, len(levels) - 1, clock)
        super().__init__()
        self.version = version
        self.max_number = max_number
        self.expires = float(expires)
        self.challenge_path = challenge_path
        self.field = field
        self.realm = realm if realm is not None else challenge_path
        #: The max_number of each difficulty level, easiest first.
        self.levels: tuple[int, ...] = levels
        self._level_of = {number: index for index, number in enumerate(levels)}
        self._key = derive_key(secret, self.realm, self.expires)
        self._v2_keys = v2.signing_keys(self._key)
        # Per level, until when this process believes the level's memory is full: new
        # challenges skip it until then. A hint only: a wrong one costs work, never safety.
        self._full_until = [float("-inf")] * len(levels)
        self._clock = clock

    def __repr__(self) -> str:  # never the secret
        return (
            f"ProofOfWork(version={self.version}, max_number={self.max_number}, "
            f"expires={self.expires:g}, kdf={self.kdf!r}, "
            f"challenge_path={self.challenge_path!r}, field={self.field!r}, "
            f"levels={self.levels!r})"
        )

    def level(self, now: float | None = None) -> int:
        """The difficulty level new challenges get: the lowest not known to be full."""
        moment = self._clock() if now is None else now
        for index, until in enumerate(self._full_until):
            if until <= moment:
                return index
        return len(self.levels) - 1

    def new_challenge(self, request: ClientRequest | None = None) -> dict[str, Any]:
        """A fresh signed challenge for ``request``'s sender, at the level the replay memory
        and the pressure ask; for version 2, ``IssueBusy`` when the issuing budget is spent
        (the front doors answer 503 ``captcha_busy``)."""
        now = self._clock()
        level = self.level(now)
        if self.hints is not None:
            level = max(level, self.hints.level(request, now))
        max_number = self.levels[level]
        if self.kdf is not None:
            expires = int(now + self.expires)
            return v2.issue(self.kdf, self._v2_keys, max_number, expires, self._issue_budget)
        expires_at = datetime.datetime.fromtimestamp(now + self.expires, tz=datetime.timezone.utc)
        challenge = create_challenge(
            ChallengeOptions(
                algorithm=ALGORITHM,
                max_number=max_number,
                hmac_key=self._key,
                expires=expires_at,
                params={"n": str(max_number)},
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

    def check(self, fields: Fields, request: ClientRequest) -> Verdict:
        """Only a rejection: a solution that passes every stateless check still needs the
        replay memory, which is the door's state (the gate runs ``check_flow``)."""
        spend = self.prepare(fields)
        if isinstance(spend, Verdict):
            return spend
        raise TypeError("ProofOfWork is judged through check_flow, with the door's state")

    def check_flow(self, fields: Fields) -> Generator[StateOp, Any, Verdict]:
        """``verdict = yield from provider.check_flow(fields)``: ``prepare``, the one state
        operation, ``settle``. FieldError for a bad shape, as ``check``."""
        spend = self.prepare(fields)
        if isinstance(spend, Verdict):
            return spend
        try:
            stored = yield StateOp("remember", (spend.namespace, spend.key, spend.ttl))
        except StateFull:
            return self.settle(spend, None)
        except StateUnavailable:
            # The store cannot answer (its outage is logged where it is seen, once per
            # interval): refused, a 503, never a pass from a memory that never saw the fleet.
            return Verdict(
                Outcome.FALLBACK,
                "proof of work: replay store unavailable",
                self.name,
                note=Note(refused="replay store unavailable"),
            )
        except Exception as exc:
            # A store that cannot answer cannot vouch for the solution: a 503 (the note's
            # ``refused``), never a pass and never a 500.
            hint = f"replay store failed ({type(exc).__name__}): every solution is refused"
            note = Note(Hint.misconfiguration(hint), refused="replay store unavailable")
            return Verdict(Outcome.FALLBACK, f"proof of work: {hint}", self.name, note=note)
        return self.settle(spend, bool(stored), getattr(stored, "fill", None))

    def prepare(self, fields: Fields) -> Verdict | Spend:
        """Every check that needs no state: the payload's shape (FieldError), the work, the
        signature, the level and the expiry. A rejected Verdict, or the one state operation
        left to do: ``remember(spend.namespace, spend.key, spend.ttl)``, then ``settle``."""
        if self.kdf is not None:
            solved = v2.judge(self.field, fields.one(self.field), self.kdf, self._v2_keys)
            if isinstance(solved, str):
                return self.rejected(f"proof of work: {solved}")
            return self._spend(solved.max_counter, solved.expires_at, solved.nonce)
        payload = decode_v1(self.field, fields.one(self.field))
        salt, number = payload["salt"], payload["number"]
        challenge, signature = payload["challenge"], payload["signature"]
        worked = hash_hex(ALGORITHM, f"{salt}{number}".encode())
        if not hmac.compare_digest(worked, challenge):
            return self.rejected("proof of work: wrong number")
        expected = hmac_hex(ALGORITHM, challenge.encode(), self._key)
        if not hmac.compare_digest(expected, signature):
            # Forged, or issued by another provider (another secret, realm or lifetime).
            return self.rejected("proof of work: bad signature")
        return self._spend(int(payload["n"]), int(payload["expires"]), challenge[:_KEY_HEX_CHARS])

    def _spend(self, max_number: int, expires_at: int, name: str) -> Verdict | Spend:
        """The level and expiry checks both versions share, and the replay memory's key."""
        level = self._level_of.get(max_number)
        if level is None:
            # Ours, but of a difficulty this provider no longer serves (max_number changed).
            return self.rejected("proof of work: difficulty not served here")
        now = self._clock()
        if now > expires_at:
            return self.rejected("proof of work: challenge expired")
        namespace = NAMESPACE if level == 0 else f"{NAMESPACE}:{level}"
        return Spend(level, namespace, f"{namespace}:{name}", expires_at, now)

    def settle(self, spend: Spend, first: bool | None, fill: float | None = None) -> Verdict:
        """The verdict once the replay memory answered: ``first`` True (new), False (seen
        before) or None (full: it refused). ``fill`` is how full the level's memory is now
        (0..1), where the store can tell; above ``EARLY_FLIP`` new challenges go one level
        up already, so that solutions in flight still find room when they arrive."""
        level = spend.level
        if first is None:
            # Refused, not forgotten (a forgotten key is a replay). New challenges go one level up
            # until every entry here has expired: none of this level is issued meanwhile.
            self._full_until[level] = spend.now + self.expires
            note = NO_NOTE
            if level == len(self.levels) - 1:
                # Even the hardest level is full: more solvers than the store was sized for,
                # or a flood. A client can cause it, so a WARNING, never an ERROR.
                note = Note(
                    Hint.suspect(
                        "replay store full at the top difficulty: raise the state's capacity,"
                        " add an escalation level or lower expires"
                    )
                )
            return self.rejected(
                "proof of work: too many recent solutions, retry", {"level": level}, note=note
            )
        if not first:
            # Counted by captcha_guard_replays_refused_total{kind="proof_of_work"}.
            return self.rejected("proof of work: challenge already used", note=Note(replayed=True))
        if fill is not None and fill >= EARLY_FLIP:
            self._full_until[level] = max(self._full_until[level], spend.now + self.expires)
        return self.passed("ok", {"expires": spend.expires_at, "level": level})


@dataclass(frozen=True, slots=True)
class Spend:
    """A solution that passed every stateless check: remember it, then ``settle``."""

    level: int
    namespace: str
    #: The store key: the namespace and the first 128 bits of the challenge hash.
    key: str
    expires_at: int
    now: float

    @property
    def ttl(self) -> float:
        """Seconds the key must be remembered: up to the challenge's expiry, inclusive."""
        return max(self.expires_at - self.now, 0.0)


def _levels(max_number: int, escalation: Sequence[int], bound: int) -> tuple[int, ...]:
    if isinstance(escalation, (str, bytes)) or not isinstance(escalation, Sequence):
        raise TypeError("ProofOfWork: escalation must be a sequence of ints, e.g. (8, 64)")
    levels = [max_number]
    for step in escalation:
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError("ProofOfWork: escalation steps must be ints")
        number = max_number * step
        if number <= levels[-1] or number > bound:
            raise ValueError(
                "ProofOfWork: escalation steps must increase, and max_number times the last"
                f" must be at most {bound}"
            )
        levels.append(number)
    return tuple(levels)


__all__ = [
    "DEFAULT_CHALLENGE_PATH",
    "DEFAULT_ESCALATION",
    "DEFAULT_EXPIRES",
    "DEFAULT_FIELD",
    "DEFAULT_MAX_NUMBER",
    "EARLY_FLIP",
    "NAMESPACE",
    "ProofOfWork",
    "Spend",
    "derive_key",
]
