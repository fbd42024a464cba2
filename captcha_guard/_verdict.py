"""What the gate decided about one request, and what a provider can answer."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: In the details of a verdict made while the provider could not be asked: why the fallback
#: guard refused it (a replay, a network over its budget, no capacity). Its presence is what
#: tells the answer to read generic (see _responses.py).
REFUSED = "fallback_refused"
#: In the details of a verdict: a hint that our configuration is wrong, which no client can
#: cause. Logged at ERROR: someone must act.
MISCONFIGURATION = "misconfiguration"
#: In the details of a verdict: a hint that might be a misconfiguration but that a client can
#: also provoke at will (a token from another site key, a vendor's public test token, a full
#: store). Logged at WARNING, so a client can never make the gate page anyone.
SUSPECT = "suspect"


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

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


class Fault(str, enum.Enum):
    """Whose fault a failed verification is: the sorting that decides bypass or not."""

    USER = "user"
    PROVIDER = "provider"
    OPERATOR = "operator"


@dataclass(frozen=True)
class ProviderFailure:
    """The provider could not give a judgement: its fault (bin 2) or the operator's (bin 3).

    ``code`` is the provider's own error code, if it sent one; ``reason`` is short and never
    contains a secret or a whole token, because it reaches logs and the verdict.
    """

    reason: str
    fault: Fault = Fault.PROVIDER
    code: str | None = None

    @property
    def operator(self) -> bool:
        return self.fault is Fault.OPERATOR
