"""What a flow yields to its door, and what it returns: the gate's side of the protocol.

The theory of operation is in ``_flow.py``; these are its values, shared by the doors, the
adapters and the flows of the clearance and private-token paths.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._responses import Denial, bad_request, too_large, too_slow
from ._state import StateOp
from ._verdict import Verdict
from .providers._wire import ProviderRequest

EventHook = Callable[[Any], Any]


# The effects a flow yields.


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Read the whole body: at most ``limit`` bytes, within ``timeout`` seconds."""

    limit: int
    timeout: float


class BodyProblem(str):
    """Why the body could not be read (sent back instead of the bytes)."""

    def denial(self, limit: int) -> Denial | None:
        """The answer to it (None: the client left, no one to answer)."""
        if self is TOO_LARGE:
            return too_large(limit)
        if self is TIMED_OUT:
            return too_slow()
        if self is INCOMPLETE:
            return bad_request("body shorter than content-length")
        if self is UNREADABLE:
            return bad_request("body could not be read")
        return None  # DISCONNECTED


TOO_LARGE: Final = BodyProblem("too_large")
TIMED_OUT: Final = BodyProblem("timed_out")
DISCONNECTED: Final = BodyProblem("disconnected")
INCOMPLETE: Final = BodyProblem("incomplete")  # shorter than its content-length
UNREADABLE: Final = BodyProblem("unreadable")


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """Send ``request``. ``timeout`` bounds the time the provider has, not our own waits."""

    request: ProviderRequest
    timeout: float
    provider: str


class CallProblem(str):
    """The provider had its time and gave no usable answer: the kind only (never a text
    that may carry a URL or a body). Sent back instead of a ProviderResponse."""


#: No connection came free in time, or our own event loop could not give the provider its
#: time: our capacity, never the provider's failure.
BUSY: Final = CallProblem("busy")


@dataclass(frozen=True, slots=True)
class Emit:
    hooks: Sequence[EventHook]
    event: object


Effect = ReadBody | ProviderCall | Emit | StateOp


# What a flow returns.


@dataclass(frozen=True, slots=True)
class Pass:
    """Call the app with exactly ``body`` (None: the body is unread, hand the app the
    request as it came) and ``verdict`` where the app finds it; add ``headers`` (a
    clearance cookie) to the app's answer."""

    verdict: Verdict
    body: bytes | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Deny:
    denial: Denial


@dataclass(frozen=True, slots=True)
class Abandon:
    """The client left before its body arrived: no one to answer, no reason to call the app."""


ABANDON: Final = Abandon()

Decision = Pass | Deny | Abandon


@dataclass(frozen=True, slots=True)
class Redeem:
    """``Gate.challenge``'s answer on the private-token path: run ``Gate.redeem``."""


REDEEM: Final = Redeem()
Flow = Generator[Effect, Any, Decision]


__all__ = [
    "ABANDON",
    "BUSY",
    "DISCONNECTED",
    "INCOMPLETE",
    "REDEEM",
    "TIMED_OUT",
    "TOO_LARGE",
    "UNREADABLE",
    "Abandon",
    "BodyProblem",
    "CallProblem",
    "Decision",
    "Deny",
    "Effect",
    "Emit",
    "EventHook",
    "Flow",
    "Pass",
    "ProviderCall",
    "ReadBody",
    "Redeem",
]
