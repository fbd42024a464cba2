"""Token issuers and their keys: pinned in configuration, or fetched from the issuer's
directory (RFC 9578 section 4) and kept as long as its HTTP caching headers allow.

Sans-I/O, like a provider: an ``Issuer`` says when its directory is due (``due``), describes
the request (``fetch_request``, a ``ProviderRequest`` the door sends with its own client) and
reads the answer (``accept``). A fetch that fails keeps the keys it had and tries again after
``retry`` seconds; keys are only ever replaced by a directory that parses and holds at least
one usable key. An issuer with no key at all is off: it is left out of every challenge.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Iterable, Mapping

from .._check import seconds_arg
from ..providers._wire import ProviderRequest, ProviderResponse, check_url
from ._spki import IssuerKey, parse_spki
from ._wire import TOKEN_TYPE_BLIND_RSA, b64decode, is_server_name

DIRECTORY_PATH = "/.well-known/private-token-issuer-directory"
MEDIA_TYPE = "application/private-token-issuer-directory"
#: Bounds on what one directory may make us hold: its size, and the keys kept from it.
MAX_DIRECTORY_BYTES = 65_536
MAX_KEYS = 16
#: Freshness when the directory names none, and the range any stated freshness is held to:
#: never refetched more than once a minute, never trusted for more than a day unchecked.
DEFAULT_FRESHNESS = 3600.0
MIN_FRESHNESS = 60.0
MAX_FRESHNESS = 86_400.0
DEFAULT_RETRY = 60.0

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:[,=]|$)", re.IGNORECASE)


def freshness(headers: Mapping[str, str]) -> float:
    """Seconds a directory answer stays fresh (RFC 9111 section 4.2.1, for a private cache):
    ``max-age`` minus ``Age``, else ``Expires`` minus ``Date``, else the default; held to
    ``MIN_FRESHNESS`` .. ``MAX_FRESHNESS``."""
    control = headers.get("cache-control", "")
    lifetime: float | None = None
    if _NO_CACHE.search(control):
        lifetime = 0.0
    elif (found := _MAX_AGE.search(control)) is not None:
        lifetime = float(found.group(1))
    elif "expires" in headers:
        expires = _http_date(headers["expires"])
        date = _http_date(headers.get("date", ""))
        lifetime = 0.0 if expires is None or date is None else expires - date
    if lifetime is None:
        lifetime = DEFAULT_FRESHNESS
    age = headers.get("age", "")
    if age.isascii() and age.isdigit() and len(age) <= 10:
        lifetime -= float(age)
    return min(MAX_FRESHNESS, max(MIN_FRESHNESS, lifetime))


def _http_date(text: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def parse_directory(body: bytes) -> tuple[IssuerKey, ...] | None:
    """The usable token type 2 keys of a directory document, in its order of preference;
    None for a document that is not a directory. Keys of other types, or that are not
    2048-bit RSASSA-PSS SPKIs, are skipped."""
    if len(body) > MAX_DIRECTORY_BYTES:
        return None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("token-keys"), list):
        return None
    keys: list[IssuerKey] = []
    for entry in document["token-keys"]:
        if len(keys) >= MAX_KEYS:
            break
        if not isinstance(entry, dict) or entry.get("token-type") != TOKEN_TYPE_BLIND_RSA:
            continue
        encoded = entry.get("token-key")
        raw = b64decode(encoded) if isinstance(encoded, str) else None
        key = parse_spki(raw) if raw is not None else None
        if key is not None and all(k.token_key_id != key.token_key_id for k in keys):
            keys.append(key)
    return tuple(keys)


def pinned_key(value: str | bytes) -> IssuerKey:
    """A key given in configuration: DER bytes, or their base64url (padded or not)."""
    raw = b64decode(value) if isinstance(value, str) else value
    key = parse_spki(raw) if isinstance(raw, bytes) else None
    if key is None:
        raise ValueError(
            "an issuer key must be a 2048-bit RSASSA-PSS SubjectPublicKeyInfo (SHA-384), "
            "DER or base64url, as the issuer's directory publishes it"
        )
    return key


class TokenIssuer:
    """One issuer whose tokens are accepted: ``TokenIssuer("demo-pat.issuer.cloudflare.com")``.

    ``keys`` pins public keys (base64url SPKI as in the issuer's directory, or DER bytes):
    always trusted, and all that is used when ``fetch`` is False. With ``fetch`` (the
    default) the door also fetches ``directory`` (default
    ``https://<name>/.well-known/private-token-issuer-directory``) and trusts the keys it
    lists for as long as its caching headers say, keeping them when a refetch fails.
    """

    def __init__(
        self,
        name: str,
        *,
        keys: Iterable[str | bytes] = (),
        directory: str | None = None,
        fetch: bool = True,
        retry: float = DEFAULT_RETRY,
    ) -> None:
        if not isinstance(name, str) or not is_server_name(name):
            raise ValueError(f"an issuer name is a host name with an optional port: {name!r}")
        if isinstance(keys, (str, bytes)):
            raise TypeError("keys must be a list of keys")
        if not isinstance(fetch, bool):
            raise TypeError("fetch must be True or False")
        seconds_arg(retry, "retry")
        self.name = name.lower()
        self.pinned = tuple(pinned_key(k) for k in keys)
        self.directory = check_url(
            directory if directory is not None else f"https://{self.name}{DIRECTORY_PATH}",
            f"issuer {name}",
        )
        self.fetch = fetch
        self.retry = float(retry)
        if not fetch and not self.pinned:
            raise ValueError(f"issuer {name}: with fetch=False, pin at least one key")
        self.fetched: tuple[IssuerKey, ...] = ()
        self._fresh_until = -math.inf
        self._next_try = -math.inf
        self._lease_until = -math.inf

    def __repr__(self) -> str:
        return f"TokenIssuer({self.name!r}, pinned={len(self.pinned)}, fetched={len(self.fetched)})"

    def trusted(self) -> tuple[IssuerKey, ...]:
        """Every trusted key: the fetched ones (the issuer's preference first), then pinned."""
        if not self.pinned:
            return self.fetched
        return self.fetched + tuple(k for k in self.pinned if k not in self.fetched)

    def due(self, now: float) -> bool:
        """Whether the directory should be fetched now (stale, not failing, none in flight)."""
        return (
            self.fetch
            and now >= self._fresh_until
            and now >= self._next_try
            and now >= self._lease_until
        )

    def fetch_request(self, now: float, timeout: float) -> ProviderRequest:
        """The directory request; holds off other fetches in this process until it settles."""
        self._lease_until = now + timeout + 1.0
        return ProviderRequest(
            "GET", self.directory, (("accept", f"{MEDIA_TYPE}, application/json"),)
        )

    def accept(self, response: ProviderResponse, now: float) -> str | None:
        """Take a directory answer: None when its keys are now in use, else why not (the
        keys held so far stay)."""
        self._lease_until = -math.inf
        if response.status != 200:
            return self.failed(now, f"status {response.status}")
        keys = parse_directory(response.body)
        if not keys:
            return self.failed(now, "no usable key" if keys is not None else "not a directory")
        self.fetched = keys
        self._fresh_until = now + freshness(response.headers)
        self._next_try = -math.inf
        return None

    def failed(self, now: float, why: str) -> str:
        """A fetch that did not give keys: keep what we have, try again after ``retry``."""
        self._lease_until = -math.inf
        self._next_try = now + self.retry
        return why


__all__ = [
    "DIRECTORY_PATH",
    "MEDIA_TYPE",
    "TokenIssuer",
    "freshness",
    "parse_directory",
    "pinned_key",
]
