"""urlencoded name/value pairs: form bodies, the query string, the X-Captcha header.

Only '&' separates pairs (WHATWG, urllib.parse, python-multipart >= 0.0.30). A component of
ASCII bytes whose percent-escapes decode to UTF-8 reads the same everywhere; raw non-ASCII
bytes do not (Starlette decodes them as latin-1, Django and Werkzeug as UTF-8), nor do escapes
that are not UTF-8 (Starlette and Django put U+FFFD, Werkzeug keeps "%E9"), which is what a
form posted with accept-charset="ISO-8859-1" carries.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ._parsing import DEFAULT_LIMITS, BodyError, ParseLimits, Unreadable, over

_AMPERSANDS = re.compile(rb"&&+")
_RAW_BYTES = "has raw non-ASCII bytes, which frameworks decode differently (percent-encode them)"
_NOT_UTF8 = "has percent-escapes that are not UTF-8, which frameworks decode differently"
_ESCAPES = re.compile(rb"(?:%[0-9A-Fa-f]{2})+")


def _unescape(match: re.Match[bytes]) -> bytes:
    return bytes.fromhex(match.group().replace(b"%", b"").decode("ascii"))


def _unquote(raw: bytes) -> bytes:
    """urllib.parse.unquote_to_bytes, a run of escapes at a time: it loops in Python over every
    escape, which made the gate slower than the app's own parser on a body of escapes."""
    return _ESCAPES.sub(_unescape, raw) if b"%" in raw else raw


def _component(raw: bytes) -> tuple[str, str | None]:
    """The text of one name or value, and why it is ambiguous (None: it is not)."""
    if raw.isascii() and b"%" not in raw and b"+" not in raw:
        return raw.decode("ascii"), None  # most names and tokens: nothing to decode
    decoded = _unquote(raw.replace(b"+", b" "))
    if not raw.isascii():
        return decoded.decode("utf-8", "replace"), _RAW_BYTES
    try:
        return decoded.decode("utf-8"), None
    except UnicodeDecodeError:
        return decoded.decode("utf-8", "replace"), _NOT_UTF8


def parse_urlencoded(
    data: bytes | str, limits: ParseLimits = DEFAULT_LIMITS
) -> list[tuple[str, object]]:
    if isinstance(data, str):
        try:
            data = data.encode("latin-1")  # how servers hand over header and query bytes
        except UnicodeEncodeError:
            raise BodyError("urlencoded text with characters beyond latin-1") from None
    # Split no further than one piece over the limit: the work stops where the limit does.
    pieces = data.split(b"&", limits.max_fields)
    if len(pieces) > limits.max_fields:
        too_many = over("too_many_fields", f"more than {limits.max_fields} urlencoded fields")
        if len(pieces) - pieces.count(b"") > limits.max_fields:
            raise too_many
        # Empty pieces ("a=1&&b=2") are no fields: squeeze them out and count again.
        data = _AMPERSANDS.sub(b"&", data).strip(b"&")
        if data.count(b"&") >= limits.max_fields:
            raise too_many
        pieces = data.split(b"&")
    pairs: list[tuple[str, object]] = []
    for piece in pieces:
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition(b"=")
        name, bad_name = _component(raw_name)
        value, bad_value = _component(raw_value)
        if bad_name:
            # Each framework reads another name: refuse the value under every one of them.
            unreadable = Unreadable(f"has a name that {bad_name.removeprefix('has ')}")
            pairs.extend((variant, unreadable) for variant in _urlencoded_names(raw_name))
            continue
        pairs.append((name, Unreadable(bad_value) if bad_value else value))
    return pairs


# Werkzeug keeps what is not UTF-8 as the escape it was sent as: bytes that did not decode are
# lone surrogates under "surrogateescape" (U+DC80-U+DCFF), turned back into "%XX" by one
# translate (an error handler would be a Python call per bad byte: 0.9 s for 1 MB of %E9).
_REQUOTE = {0xDC00 + byte: f"%{byte:02X}" for byte in range(0x80, 0x100)}


def _urlencoded_names(raw: bytes) -> set[str]:
    """The names the frameworks make of an ambiguous one: Django's (U+FFFD for what is not
    UTF-8), Starlette's (raw bytes as latin-1) and Werkzeug's (bad escapes left as %XX)."""
    spaced = raw.replace(b"+", b" ")
    decoded = _unquote(spaced)
    django = decoded.decode("utf-8", "replace")
    # urllib's unquote (Starlette's) decodes runs of ASCII as Django does: only raw bytes
    # beyond ASCII, which it keeps as latin-1 characters, make its reading another one.
    starlette = django if spaced.isascii() else unquote(spaced.decode("latin-1"))
    return {django, starlette, decoded.decode("utf-8", "surrogateescape").translate(_REQUOTE)}


__all__ = ["parse_urlencoded"]
