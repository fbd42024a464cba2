"""What a request brings to a clearance: its context, its cookies, and what they were found
worth; and the clearance scope of a rule. The policy that judges them is ``_clearance.py``,
the token they carry ``_clearance_token.py``."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ._clearance_token import Token

COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token
_MAX_CANDIDATES = 8  # same-name cookies tried; more is someone stuffing the jar


class ClearanceStatus(str, enum.Enum):
    """What a clearance cookie is worth for this request. Only VALID clears."""

    VALID = "valid"
    ABSENT = "absent"  # no cookie for this scope (or none this request may carry)
    MALFORMED = "malformed"  # not one of our tokens at all
    INVALID = "invalid"  # signature wrong, or signed by a key we no longer hold
    EXPIRED = "expired"
    WRONG_SCOPE = "wrong_scope"  # a genuine clearance, for another scope
    WRONG_BINDING = "wrong_binding"  # a genuine clearance, from another network or browser
    REVOKED = "revoked"  # issued before the last revoke_all()
    EXHAUSTED = "exhausted"  # max_uses reached
    UNAVAILABLE = "unavailable"  # the state that must confirm it did not answer

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ClearanceContext:
    """What the clearance needs to know about one request; built once by the flow.

    ``client`` is the client address as the door knows it (after any trusted proxy headers),
    ``host`` the Host header (a port is allowed), ``https`` whether the request came over TLS,
    ``now`` a Unix time.
    """

    client: str | None
    user_agent: str | bytes | None
    https: bool
    host: str | None
    now: float


@dataclass(frozen=True, slots=True)
class ClearanceCheck:
    """What a clearance cookie was found worth. ``store_error`` is the kind of the state
    failure behind UNAVAILABLE (for a ``StoreErrorEvent``), never a message."""

    status: ClearanceStatus
    store_error: str | None = None
    _token: Token | None = None

    @property
    def cleared(self) -> bool:
        return self.status is ClearanceStatus.VALID


def is_loopback_host(host: str | None) -> bool:
    """Whether a Host header names this machine (``localhost``, ``*.localhost``, 127/8, ::1)."""
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, _ = host[1:].partition("]")
        if not bracket:
            return False
    elif host.count(":") == 1:
        name = host.partition(":")[0]
    else:
        name = host
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def cookie_values(
    cookie_header: str | bytes | Iterable[str | bytes] | None, name: str
) -> list[str]:
    """The values of every cookie called ``name`` in one or more Cookie headers (bounded)."""
    if cookie_header is None:
        return []
    headers = [cookie_header] if isinstance(cookie_header, (str, bytes)) else cookie_header
    found: list[str] = []
    for header in headers:
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        elif not isinstance(header, str):
            continue
        if name not in header:
            continue  # the common case: other cookies only, no split needed
        # ";" only (RFC 6265 5.4; HTTP/2 joins its cookie fields with "; "): a "," belongs
        # to a cookie's value, and splitting on it let one sibling's cookie full of commas
        # use up the candidates before the real clearance was reached.
        for part in header.split(";"):
            key, eq, value = part.partition("=")
            if eq and key.strip() == name:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                found.append(value)
                if len(found) >= _MAX_CANDIDATES:
                    return found
    return found


#: Which of several same-name cookies speaks for the request: the most telling verdict.
RANK = {
    ClearanceStatus.VALID: 0,
    ClearanceStatus.WRONG_BINDING: 1,
    ClearanceStatus.WRONG_SCOPE: 2,
    ClearanceStatus.EXPIRED: 3,
    ClearanceStatus.INVALID: 4,
    ClearanceStatus.MALFORMED: 5,
    ClearanceStatus.ABSENT: 6,
    ClearanceStatus.REVOKED: 7,
    ClearanceStatus.EXHAUSTED: 8,
    ClearanceStatus.UNAVAILABLE: 9,
}


def rule_scope(rule: object) -> str | None:
    """The clearance scope of a rule, from its ``clearance`` attribute: False or missing, none;
    True, the rule's own (its pattern); a string, that named scope, shared by every rule that
    names it."""
    setting = getattr(rule, "clearance", False)
    if setting is True:
        pattern = getattr(rule, "pattern", None)
        text = pattern.pattern if isinstance(pattern, re.Pattern) else str(pattern)
        methods = ",".join(sorted(getattr(rule, "methods", ())))
        return f"rule:{methods}:{text}"
    if isinstance(setting, str) and setting:
        return f"name:{setting}"
    return None


def check_rule_clearance(value: object) -> bool | str:
    """Validate ``Rule(..., clearance=...)`` at start-up: a bool, or a scope name."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and COOKIE_NAME.match(value):
        return value
    raise ValueError(
        f"clearance must be True, False or a scope name (letters, digits, -_.): {value!r}"
    )


__all__ = [
    "COOKIE_NAME",
    "RANK",
    "ClearanceCheck",
    "ClearanceContext",
    "ClearanceStatus",
    "check_rule_clearance",
    "cookie_values",
    "is_loopback_host",
    "rule_scope",
]
