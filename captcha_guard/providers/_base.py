"""What every provider is: fields in, a ProviderRequest out, a ProviderResponse read back.

A provider does no I/O and imports no HTTP library. The front doors send the request it
builds, so the same provider serves the ASGI door (async client) and the WSGI door (sync
client), and tests can feed it responses without a network.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._breaker import CircuitBreaker
from .._check import seconds_arg
from .._fields import FieldError, Fields
from .._request import ClientRequest
from .._verdict import NO_NOTE, Fault, Note, Outcome, ProviderFailure, Verdict
from ._wire import ProviderRequest, ProviderResponse, check_url, form_post

DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Claim:
    """Client fields that passed the local shape check, ready to be verified remotely."""

    #: Whole tokens: kept out of repr so a logged or printed Claim cannot leak them.
    values: Mapping[str, str] = field(repr=False)
    #: The one-time id of this captcha solution (a lot number, a token hash): the key under
    #: which a replay guard remembers it. Never a whole token.
    replay_key: str
    request: ClientRequest = field(repr=False, compare=False)


class Provider:
    """Base of all providers. Subclasses set ``name`` and the three steps below."""

    name: ClassVar[str] = "provider"
    #: Local providers (proof-of-work) answer from the fields alone: no request, no breaker.
    remote: ClassVar[bool] = True
    #: A provider that hands out its own challenges (proof-of-work) names the path where the
    #: front doors serve them (GET, JSON, from ``new_challenge``); None for the others.
    challenge_path: str | None = None

    def __init__(
        self,
        *,
        endpoint: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if self.remote or endpoint:
            endpoint = check_url(endpoint, self.name)
        self.endpoint = endpoint
        # A wrong type was always a TypeError here (the comparison's own); it stays one.
        self.timeout = seconds_arg(timeout, "timeout", owner=self.name, wrong_type=TypeError)
        self.breaker = breaker if breaker is not None else CircuitBreaker()

    def __repr__(self) -> str:  # never the secret
        return f"{type(self).__name__}(endpoint={self.endpoint!r})"

    def check(self, fields: Fields, request: ClientRequest) -> Claim | Verdict:
        """Check the client's fields locally, before any I/O.

        Raise ``FieldError`` (or return a rejected ``Verdict``) for a bad shape: the client's
        403, with no call. Return a ``Claim`` holding the checked values and a replay key for
        a remote provider; a local provider (proof of work) returns its final ``Verdict``."""
        raise NotImplementedError

    def build_request(self, claim: Claim) -> ProviderRequest:
        """Describe the one HTTP request that verifies ``claim`` (method, URL, headers, body).
        The door sends it; a provider never does I/O."""
        raise NotImplementedError

    def new_challenge(self, request: ClientRequest | None = None) -> Mapping[str, Any]:
        """A fresh challenge, as the JSON document served at ``challenge_path``; ``request``
        is the GET asking for it (its headers and client address), where the door has it."""
        raise NotImplementedError

    def read_response(self, claim: Claim, response: ProviderResponse) -> Verdict | ProviderFailure:
        """Read the provider's answer into a ``Verdict`` (passed or rejected: the provider
        judged) or a ``ProviderFailure`` (it could not judge; its ``Fault`` says whose fault).

        This base reads the answer as a JSON object: HTTP 5xx or 429, or a body that is not a
        JSON object, is the provider's failure; anything else goes to ``read_document``.
        Override this method instead for a provider whose answers are not JSON."""
        document = answer_document(response)
        if isinstance(document, ProviderFailure):
            return document
        return self.read_document(claim, document, response)

    def read_document(
        self, claim: Claim, document: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        """Sort the provider's JSON answer into a verdict or a failure, through the vendor's
        fault table (``_fault_table.FaultTable``) with an explicit default for unknown codes."""
        raise NotImplementedError

    # Helpers for subclasses.

    def passed(self, reason: str = "", details: Mapping[str, Any] | None = None) -> Verdict:
        return Verdict(Outcome.PASSED, reason or "ok", self.name, dict(details or {}))

    def rejected(
        self, reason: str, details: Mapping[str, Any] | None = None, *, note: Note = NO_NOTE
    ) -> Verdict:
        """The user's bin: a 403. ``note`` is for the gate (a hint for the log, a replay),
        ``details`` for the app."""
        return Verdict(Outcome.REJECTED, reason, self.name, dict(details or {}), note=note)


def http_failure(response: ProviderResponse) -> ProviderFailure | None:
    """The provider's fault, by status alone: 5xx and 429 say nothing about the user."""
    if response.status >= 500 or response.status == 429:
        return ProviderFailure(f"HTTP {response.status}", Fault.PROVIDER)
    return None


def json_object(response: ProviderResponse) -> dict[str, Any] | None:
    """The response body as a JSON object, or None if it is anything else (an HTML error
    page from a proxy, a truncated body, a JSON array)."""
    try:
        document = json.loads(response.body)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def answer_document(response: ProviderResponse) -> dict[str, Any] | ProviderFailure:
    """The provider's answer as a JSON object, or the provider failure that stands instead:
    HTTP 5xx/429, or a body that is not a JSON object. Every provider starts here."""
    failure = http_failure(response)
    if failure is not None:
        return failure
    body = json_object(response)
    if body is None:
        return ProviderFailure(f"unreadable answer (HTTP {response.status})")
    return body


def short_text(value: object, limit: int = 80) -> str:
    """A vendor's text, bounded and on one line: safe for a reason, a log line, a detail."""
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else " " for c in text[:limit])


def client_ip(host: str | None) -> str | None:
    """The client's address if it is one (a unix socket's 'host' is not), for the vendors'
    ``remoteip``/``UserIp``."""
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def matching(pattern: re.Pattern[str], name: str, value: str) -> str:
    if not pattern.fullmatch(value):
        raise FieldError(f"malformed {name}")
    return value


__all__ = [
    "DEFAULT_TIMEOUT",
    "Claim",
    "ClientRequest",
    "FieldError",
    "Fields",
    "Provider",
    "ProviderFailure",
    "ProviderRequest",
    "ProviderResponse",
    "answer_document",
    "client_ip",
    "form_post",
    "http_failure",
    "json_object",
    "matching",
    "short_text",
]
