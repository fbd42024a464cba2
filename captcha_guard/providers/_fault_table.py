"""A fault table: a vendor's codes, each in one of the three bins, with an explicit default.

The tables themselves, one per vendor family, are in ``_faults.py``; this module is the
lookup they share (exact or longest-prefix match, precedence between several codes) and the
one place an entry becomes a verdict or a provider failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .._verdict import NO_NOTE, Fault, Hint, Note, Outcome, ProviderFailure, Verdict

# When one answer carries several codes, the bin that wins: a code no client can cause says
# more about the answer than one a client can.
_PRECEDENCE = {Fault.OPERATOR: 0, Fault.PROVIDER: 1, Fault.USER: 2}


@dataclass(frozen=True, slots=True)
class Entry:
    """One code's bin and why; ``hint`` for a user-bin code that may also be our mistake."""

    fault: Fault
    why: str
    hint: str | None = None


@dataclass(frozen=True)
class FaultTable:
    """A vendor's codes and their bins. ``default`` is the bin of any code not listed (and of
    an answer with no code at all). With ``prefixes``, an entry also covers the codes that
    extend it (Alibaba's ``Throttling`` covers ``Throttling.User``); the longest one wins."""

    vendor: str
    entries: Mapping[str, Entry]
    default: Entry
    prefixes: bool = False
    _longest_first: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))
        ordered = tuple(sorted(self.entries, key=len, reverse=True))
        object.__setattr__(self, "_longest_first", ordered)

    def lookup(self, code: str | None) -> Entry:
        if not code:
            return self.default
        entry = self.entries.get(code)
        if entry is not None:
            return entry
        if self.prefixes:
            for known in self._longest_first:
                if code.startswith(known):
                    return self.entries[known]
        return self.default

    def fault(self, code: str | None) -> Fault:
        return self.lookup(code).fault

    def codes(self, fault: Fault) -> frozenset[str]:
        """The listed codes in ``fault``'s bin."""
        return frozenset(code for code, entry in self.entries.items() if entry.fault is fault)

    def decisive(self, codes: Iterable[str]) -> tuple[str | None, Entry]:
        """The code that decides an answer carrying ``codes`` (the default if none)."""
        found = [(code, self.lookup(code)) for code in codes]
        if not found:
            return None, self.default
        return min(found, key=lambda pair: _PRECEDENCE[pair[1].fault])

    def sort(
        self,
        code: str | None,
        *,
        provider: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
        entry: Entry | None = None,
    ) -> Verdict | ProviderFailure:
        """``code``'s answer (or ``entry``'s, when the caller chose it): the user's bin is a
        rejected verdict (with the entry's hint, to be logged at WARNING), the others a
        provider failure, which the gate falls back on."""
        entry = entry if entry is not None else self.lookup(code)
        if entry.fault is not Fault.USER:
            return ProviderFailure(reason, entry.fault, code)
        note = NO_NOTE
        if entry.hint:
            note = Note(Hint.suspect(f"{provider} answered {code or 'no code'}: {entry.hint}"))
        return Verdict(Outcome.REJECTED, reason, provider, dict(details or {}), note=note)


def user(why: str, hint: str | None = None) -> Entry:
    return Entry(Fault.USER, why, hint)


def provider(why: str) -> Entry:
    return Entry(Fault.PROVIDER, why)


def operator(why: str) -> Entry:
    return Entry(Fault.OPERATOR, why)


__all__ = ["Entry", "FaultTable", "operator", "provider", "user"]
