"""The provider's side of a verification call, in our own small types.

A provider builds a ``ProviderRequest`` and reads a ``ProviderResponse``; the front doors turn
them into whatever HTTP client they hold (aiohttp, urllib3, httpx) and back. So no provider
depends on an HTTP library, tests feed providers answers without a network, and a client can
be swapped without touching a vendor's rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """An HTTP request to a provider's verification API. ``headers`` are sent as given, in
    order, with nothing added but what the client must (Host, Content-Length)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = field(default=b"", repr=False)  # it carries secrets


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    """What the provider answered. Header names are lower case."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, document: Any) -> ProviderResponse:
        """An answer carrying ``document`` as JSON (for tests and emulators)."""
        return cls(status, {"content-type": "application/json"}, json.dumps(document).encode())


def form_post(url: str, data: Mapping[str, str]) -> ProviderRequest:
    """A urlencoded form POST, as every vendor's sample sends it."""
    return ProviderRequest(
        "POST",
        url,
        (("content-type", "application/x-www-form-urlencoded"),),
        urlencode(data).encode(),
    )


def check_url(url: str, label: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host, else ValueError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"{label}: endpoint must be an http(s) URL, not {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{label}: endpoint must be an http(s) URL, not {url!r}")
    return url


def host_header(url: str) -> str:
    """The Host header a client sends for ``url`` (lower case, the port only when it is not
    the scheme's default): what a signed request must sign, spelled as it is sent."""
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


__all__ = ["ProviderRequest", "ProviderResponse", "check_url", "form_post", "host_header"]
