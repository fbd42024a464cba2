"""What the gate decided about one request, and what a provider can answer."""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Hint:
    """A line for the operator about one answer, at the level it deserves: ERROR for our own
    misconfiguration, which no client can cause (someone must act); WARNING for an answer that
    may be a misconfiguration but that a client can also provoke at will (a token from another
    site key, a vendor's public test token, a full store), so a client can never page anyone.
    Logged by the gate; never shown to a client, never in ``Verdict.details``."""

    text: str
    level: int

    @classmethod
    def misconfiguration(cls, text: str) -> Hint:
        return cls(text, logging.ERROR)

    @classmethod
    def suspect(cls, text: str) -> Hint:
        return cls(text, logging.WARNING)


@dataclass(frozen=True, slots=True)
class Note:
    """What the gate reads of a provider's verdict beside the app's ``details``: a ``hint``
    for the log; ``replayed`` for a solution used before (counted as a replay); ``refused``,
    why a verdict that could not vouch for the request is a 503 rather than a fallback (a
    replay store that did not answer)."""

    hint: Hint | None = None
    replayed: bool = False
    refused: str | None = None


NO_NOTE: Final = Note()


class Outcome(str, enum.Enum):
    """How a protected request was judged."""

    PASSED = "passed"
    REJECTED = "rejected"
    #: The provider could not be asked (down, slow, misconfigured) and the rule fails open.
    FALLBACK = "fallback"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Verdict:
    """The gate's judgement, stored at ``scope["state"]["captcha"]`` for the app to read."""

    outcome: Outcome
    reason: str
    provider: str
    details: Mapping[str, Any] = field(default_factory=dict)
    #: For the gate, not the app: see ``Note``. Not compared: two verdicts that say the same
    #: to the app are equal.
    note: Note = field(default=NO_NOTE, compare=False, repr=False, kw_only=True)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


class Fault(str, enum.Enum):
    """Whose fault a failed verification is: the sorting that decides bypass or not."""

    USER = "user"
    PROVIDER = "provider"
    OPERATOR = "operator"


class Code(str, enum.Enum):
    """What happened to one protected request, in a closed set: the ``code`` of its verdict
    event and metric label (``"ok"``, ``"rejected"``, why a provider could not judge, why a
    fallback was refused)."""

    OK = "ok"
    REJECTED = "rejected"
    CIRCUIT_OPEN = "circuit_open"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNREACHABLE = "provider_unreachable"
    PROVIDER_ERROR = "provider_error"
    MISCONFIGURED = "misconfigured"
    REFUSED_REPLAY = "refused_replay"
    REFUSED_BUDGET = "refused_budget"
    REFUSED_CAPACITY = "refused_capacity"
    REFUSED_RULE = "refused_rule"  # fail_open=False
    CLEARANCE = "clearance"  # let through by a clearance cookie: no captcha was judged

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ProviderFailure:
    """The provider could not give a judgement: its fault (bin 2) or the operator's (bin 3).

    ``code`` is the provider's own error code, if it sent one; ``reason`` is short and never
    contains a secret or a whole token, because it reaches logs and the verdict.
    """

    reason: str
    fault: Fault = Fault.PROVIDER
    code: str | None = None
    #: Why, in the closed set of the events (an operator fault is MISCONFIGURED whatever this
    #: says): set where the failure is ours to name (a timeout, a connection refused).
    cause: Code = Code.PROVIDER_ERROR

    @property
    def operator(self) -> bool:
        return self.fault is Fault.OPERATOR
