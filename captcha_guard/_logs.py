"""What the gate writes to the log about a verdict, and at which level.

The levels are a promise to the operator: an ERROR line means our own configuration is wrong
and someone must act; nothing a client sends can produce one. A client-provokable answer
(bin 1, including the ones that look like a key mix-up) is at most a WARNING, an outage a
WARNING, and the passing path logs only at DEBUG. No line carries a token, a secret or a
client address: reasons and hints are our own texts or bounded vendor codes.
"""

from __future__ import annotations

import logging

from .verdict import MISCONFIGURATION, SUSPECT, Verdict

logger = logging.getLogger("captcha_guard")


def note_verdict(provider_name: str, verdict: Verdict) -> None:
    """Log ``verdict`` of ``provider_name``: ERROR for our misconfiguration, WARNING for a
    suspect answer a client may have provoked, DEBUG for the rest."""
    hint = verdict.details.get(MISCONFIGURATION)
    if hint:
        logger.error("captcha provider %s: %s", provider_name, hint)
        return
    suspect = verdict.details.get(SUSPECT)
    if suspect:
        logger.warning("captcha provider %s: %s", provider_name, suspect)
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("captcha %s (%s): %s", verdict.outcome, verdict.provider, verdict.reason)


__all__ = ["note_verdict"]
