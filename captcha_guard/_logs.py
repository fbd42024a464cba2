"""What the gate writes to the log about a verdict, and at which level.

The levels are a promise to the operator: an ERROR line means our own configuration is wrong
and someone must act; nothing a client sends can produce one. A client-provokable answer
(bin 1, including the ones that look like a key mix-up) is at most a WARNING, an outage a
WARNING, and the passing path logs only at DEBUG. No line carries a token, a secret or a
client address: reasons and hints are our own texts or bounded vendor codes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ._verdict import Verdict

logger = logging.getLogger("captcha_guard")


def note_verdict(provider_name: str, verdict: Verdict, suspects: SuspectLog | None = None) -> None:
    """Log ``verdict`` of ``provider_name``: its hint at the hint's level (ERROR for our
    misconfiguration; WARNING for a suspect answer a client may have provoked, once per
    interval through ``suspects``, which counts the rest), DEBUG for the rest."""
    hint = verdict.note.hint
    if hint is not None and hint.level >= logging.ERROR:
        logger.error("captcha provider %s: %s", provider_name, hint.text)
    elif hint is not None:
        if suspects is None:
            logger.warning("captcha provider %s: %s", provider_name, hint.text)
        else:
            suspects.note(provider_name, hint.text)
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("captcha %s (%s): %s", verdict.outcome, verdict.provider, verdict.reason)


#: Seconds between two outage lines for one provider.
OUTAGE_LOG_INTERVAL = 60.0


class OutageLog:
    """One WARNING per provider per interval while it is unavailable, with the count of the
    fallbacks (or refusals) since the last line: an outage at a thousand requests a second
    writes one line a minute, not a thousand a second. Thread-safe enough by design: a lost
    increment under a race miscounts a log line, never a decision."""

    def __init__(self, clock: Callable[[], float], interval: float = OUTAGE_LOG_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._next: dict[str, float] = {}  # by provider, and by provider + refused
        self._quiet: dict[str, int] = {}

    def note(self, provider_name: str, reason: str, refused: str | None = None) -> None:
        # Fallbacks let through and fallbacks refused are counted apart: both matter.
        key = provider_name if refused is None else f"{provider_name}\x00refused"
        now = self._clock()
        if now < self._next.get(key, float("-inf")):
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return
        self._next[key] = now + self._interval
        since = self._quiet.pop(key, 0)
        more = f" ({since} more since the last line)" if since else ""
        if refused is None:
            logger.warning("captcha provider %s unavailable: %s%s", provider_name, reason, more)
        else:
            logger.warning(
                "captcha provider %s unavailable (%s); fallback refused: %s%s",
                provider_name,
                reason,
                refused,
                more,
            )


class SuspectLog:
    """One WARNING per provider and hint per interval, with the count of the same answers
    since the last line: a client sending tickets of another app at will (Tencent's 16 and 100
    read like a key mix-up) writes one line a minute, and a real mix-up, which refuses every
    user, shows as a line a minute with a large count."""

    def __init__(self, clock: Callable[[], float], interval: float = OUTAGE_LOG_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._next: dict[tuple[str, str], float] = {}
        self._quiet: dict[tuple[str, str], int] = {}

    def note(self, provider_name: str, hint: str) -> None:
        key = (provider_name, hint)
        now = self._clock()
        if now < self._next.get(key, float("-inf")):
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return
        if len(self._next) > 1024:  # hints are our own texts: only a bug makes this many
            self._next.clear()
            self._quiet.clear()
        self._next[key] = now + self._interval
        since = self._quiet.pop(key, 0)
        more = f" ({since} more since the last line)" if since else ""
        logger.warning("captcha provider %s: %s%s", provider_name, hint, more)


__all__ = ["OUTAGE_LOG_INTERVAL", "OutageLog", "SuspectLog", "note_verdict"]
