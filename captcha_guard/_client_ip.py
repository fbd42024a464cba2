"""The client's address behind proxies (``client_ip=``), for the fallback budget and for
siteverify's ``remoteip``. No I/O: headers in, an address string (or None) out.

Theory of operation. Each proxy in front of the app appends the address it received the
request from to ``X-Forwarded-For`` (or adds an element to RFC 7239 ``Forwarded``). Only the
entries our own proxies wrote can be trusted: everything to their left came with the request
and is whatever the client chose. With ``n`` trusted proxies the client is the ``n``-th entry
from the right; an entry further left is never read. A request that carries fewer entries
than ``n`` did not pass through all our proxies (or came around them): its header is not
believed, and the peer address of the connection is used instead.

One header only, named by the operator: a proxy that manages ``X-Forwarded-For`` passes a
client's ``Forwarded`` through untouched (and the other way round), so reading "whichever is
there" would let any client choose its own address.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from ._check import int_arg

logger = logging.getLogger("captcha_guard")

#: What ``client_ip=`` accepts: None (the connection's peer address), an int (that many
#: trusted proxies, read from ``X-Forwarded-For``), a ``TrustedProxies`` (the same, or the
#: ``Forwarded`` header), or a callable given the ASGI scope or WSGI environ that returns the
#: address as a string (None: unknown).
ClientIPOption: TypeAlias = int | Callable[[Any], str | None] | None

# Far more entries than any real chain of proxies: a header beyond it is not parsed whole.
_MAX_ENTRIES = 64
_HEADERS = {"x-forwarded-for": "HTTP_X_FORWARDED_FOR", "forwarded": "HTTP_FORWARDED"}


class TrustedProxies:
    """``hops`` proxies of ours in front of the app, each adding to ``header``
    (``"x-forwarded-for"`` or ``"forwarded"``). A callable on an ASGI scope or a WSGI
    environ, as ``client_ip=`` takes it; ``client_ip=2`` is ``TrustedProxies(2)``."""

    def __init__(self, hops: int, header: str = "x-forwarded-for") -> None:
        int_arg(hops, "trusted proxy hops", minimum=0, maximum=_MAX_ENTRIES, owner="client_ip")
        name = header.lower() if isinstance(header, str) else ""
        if name not in _HEADERS:
            raise ValueError('client_ip: header must be "x-forwarded-for" or "forwarded"')
        self.hops = hops
        self.header = name

    def __repr__(self) -> str:
        return f"TrustedProxies({self.hops}, header={self.header!r})"

    def __call__(self, raw: Mapping[str, Any]) -> str | None:
        if "wsgi.version" in raw or "REQUEST_METHOD" in raw:
            return self.from_environ(raw)
        return self.from_scope(raw)

    def from_scope(self, scope: Mapping[str, Any]) -> str | None:
        peer = _scope_peer(scope)
        if self.hops == 0:
            return peer
        wanted = self.header.encode()
        values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == wanted]
        return self._pick(values, peer)

    def from_environ(self, environ: Mapping[str, Any]) -> str | None:
        peer = _environ_peer(environ)
        if self.hops == 0:
            return peer
        value = environ.get(_HEADERS[self.header])
        return self._pick([value] if isinstance(value, str) else [], peer)

    def _pick(self, values: Iterable[str], peer: str | None) -> str | None:
        # Several header lines are one list, in order (RFC 9110 5.3).
        joined = ",".join(values)
        if not joined:
            return peer
        # Only the last entries are ours; rsplit bounds the work on a huge header.
        entries = joined.rsplit(",", _MAX_ENTRIES)[-self.hops :]
        if len(entries) < self.hops:
            return peer  # not through all our proxies: the header is the client's own
        entry = entries[0]
        if self.header == "forwarded":
            return _address(_forwarded_for(entry))
        return _address(entry)


class ClientAddress:
    """The door's resolver for ``client_ip=``: ``.asgi(scope)`` and ``.wsgi(environ)``."""

    def __init__(self, option: ClientIPOption = None) -> None:
        self._call: Callable[[Any], str | None] | None
        if option is None:
            self._call = None
        elif isinstance(option, int) and not isinstance(option, bool):
            self._call = TrustedProxies(option)
        elif callable(option):
            self._call = option
        else:
            raise TypeError(
                "client_ip must be an int (trusted proxy hops), a callable taking the ASGI "
                f"scope or WSGI environ, or None; got {option!r}"
            )

    def asgi(self, scope: Mapping[str, Any]) -> str | None:
        if self._call is None:
            return _scope_peer(scope)
        if isinstance(self._call, TrustedProxies):
            return self._call.from_scope(scope)
        return self._site(scope)

    def wsgi(self, environ: Mapping[str, Any]) -> str | None:
        if self._call is None:
            return _environ_peer(environ)
        if isinstance(self._call, TrustedProxies):
            return self._call.from_environ(environ)
        return self._site(environ)

    def _site(self, raw: Any) -> str | None:
        assert self._call is not None
        try:
            found = self._call(raw)
        except Exception as exc:
            # The site's callable failed on this request (headers it did not expect, which
            # any client can send): a WARNING, no data; the request counts as addressless.
            logger.warning("captcha client_ip callable raised %s", type(exc).__name__)
            return None
        return found if isinstance(found, str) and found else None


def _scope_peer(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _environ_peer(environ: Mapping[str, Any]) -> str | None:
    value = environ.get("REMOTE_ADDR")
    return value if isinstance(value, str) and value else None


def _forwarded_for(element: str) -> str:
    """The ``for=`` of one ``Forwarded`` element (``for=192.0.2.60;proto=http``)."""
    for pair in element.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.strip().lower() == "for":
            return value.strip().strip('"')
    return ""


def _address(entry: str) -> str | None:
    """``entry`` as a normalised IP address, without brackets or port; None if it is none
    (``unknown``, an obfuscated ``_hidden`` node, junk)."""
    text = entry.strip()
    if text.startswith("["):  # [2001:db8::1] or [2001:db8::1]:4711
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 192.0.2.60:4711
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


__all__ = ["ClientAddress", "ClientIPOption", "TrustedProxies"]
