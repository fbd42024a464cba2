"""Reading captcha fields out of a request: form, multipart, JSON, query string or a header.

Every source is parsed into one ``Fields`` bag that remembers how often a name was seen, so a
field sent twice (in the body and the query, or twice in a form) is refused rather than
silently resolved one way here and another way in the app.

Theory of operation. The gate reads the same bytes the app will read, with a different parser,
so every place where the frameworks' parsers could disagree with ours is a way to have the
provider judge one value while the app acts on another. Three rules follow:

1. Where the frameworks we test against (Starlette, Flask/Werkzeug, Django, Falcon, Litestar)
   that accept a body all read a value the same way, read it that way, even from a body a
   strict parser would refuse (a multipart preamble, bare-LF line breaks, an ISO-8859-1 form).
2. Where they disagree on a *value* (percent-escapes that are not UTF-8, raw non-ASCII bytes,
   a part charset), keep the name but store an ``Unreadable`` value: the app's own fields may
   be whatever it likes, and only reading a captcha field or a claim from it is refused (403).
3. Where they disagree on the *structure* (which bytes are a part, which name a part has), the
   body is refused (400), with a reason that says what is wrong.

Work is bounded as it is done, and never exceeds what the app's own parser spends on the same
body (bench/parse_cost.py): fields and JSON items are counted on the raw bytes (C speed) against
``ParseLimits`` before a Python-level loop runs over them, and multipart parts are found one at
a time, so the work stops at the first limit or error.

The readers live beside this collector, one per body kind: ``_urlencoded``, ``_json_body`` and
``_multipart``, on the limits and errors of ``_parsing``; their names used across the package
are re-exported here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from ._json_body import JSON_NESTING_KEY, _json_depth_over, parse_json
from ._multipart import _cached_options, _charset, _options, _PartReader, parse_multipart
from ._parsing import DEFAULT_LIMITS, BodyError, ParseLimits, Unreadable, is_json, media_type
from ._urlencoded import _unquote, parse_urlencoded

#: The header a client may carry the fields in, as a urlencoded string
#: (``X-Captcha: lot_number=...&captcha_output=...``), for JSON APIs that keep bodies clean.
DEFAULT_HEADER = "x-captcha"


class FieldError(ValueError):
    """A captcha field is missing, duplicated or of the wrong type: the client gets a 403."""


class Fields:
    """Every value seen for every name, across all sources of one request."""

    __slots__ = ("_more", "_values", "opaque")

    def __init__(self) -> None:
        #: The first value of each name, and the later ones of a name seen more than once
        #: (kept apart so that a body of many names is one C-built dict, not a list per name).
        self._values: dict[str, object] = {}
        self._more: dict[str, list[object]] = {}
        #: Why the body may carry values the gate did not read (a body of a media type the
        #: gate does not parse, that an app may parse as JSON all the same), else None.
        self.opaque: str | None = None

    def __repr__(self) -> str:  # names only: values are tokens and never printed
        return f"Fields({sorted(self._values)!r})"

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def add(self, name: str, value: object) -> None:
        if name in self._values:
            self._more.setdefault(name, []).append(value)
        else:
            self._values[name] = value

    def extend(self, pairs: Iterable[tuple[str, object]]) -> None:
        if not self._values and type(pairs) is list:
            first = dict(pairs)
            if len(first) == len(pairs):  # no name twice: the common case, all in C
                self._values = first
                return
        for name, value in pairs:
            self.add(name, value)

    def one(self, name: str) -> str:
        """The single string value of ``name``, or FieldError saying what is wrong."""
        if name not in self._values:
            raise FieldError(f"missing {name}")
        if name in self._more:
            raise FieldError(f"duplicated {name}")
        value = self._values[name]
        if isinstance(value, Unreadable):
            raise FieldError(f"{name} {value.why}")
        if not isinstance(value, str):
            raise FieldError(f"{name} is not a string")
        return value

    def optional(self, name: str) -> str | None:
        return self.one(name) if name in self._values else None

    def claim(self, name: str) -> str:
        """``one(name)`` for a value the app acts on too (who is logging in): also refused when
        the body is one the app may read another way than the gate did."""
        if self.opaque is not None:
            raise FieldError(f"{name} cannot be read the way the app will: {self.opaque}")
        return self.one(name)


_JSON_LOOKING = (b"{", b"[")
_LEADING_BLANKS = re.compile(rb"[ \t\n\r\x0b\x0c]*")
# A parameter list with its quoted strings taken out: a comma left is a list of media types.
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_CHARSET_PARAM = re.compile(r";\s*charset\s*=", re.IGNORECASE)


def _not_utf8(content_type: str) -> str | None:
    """Why a JSON or urlencoded body's ``charset=`` is refused (None: absent or UTF-8).

    The gate reads these bodies as UTF-8, as Starlette, Werkzeug and Falcon do whatever the
    parameter says; Django's forms, Django REST framework's parsers and BlackSheep decode by
    it (UTF-7, ``unicode_escape``...), so under any other charset they read other values.
    """
    if _CHARSET_PARAM.search(content_type) is None:
        return None
    if len(_CHARSET_PARAM.findall(content_type)) > 1:
        return "content type with two charset parameters"
    value = _options(content_type.encode("latin-1", "replace"))[1].get(b"charset", b"")
    if value and _charset(value) is not None:
        return "a charset other than UTF-8, which frameworks honour or ignore"
    return None


def parse_body(
    content_type: str, body: bytes, limits: ParseLimits = DEFAULT_LIMITS
) -> list[tuple[str, object]]:
    """The name/value pairs of a body, by its media type; other media types carry none."""
    kind = media_type(content_type)
    if body and ("*" in kind or ("," in content_type and "," in _QUOTED.sub("", content_type))):
        # Falcon matches a request's content type the way it matches an Accept header, so
        # "text/plain, multipart/form-data; boundary=b" or "multipart/*" is a form to it, and
        # another form or none to the gate. A comma inside a quoted parameter (boundary="a,b")
        # is no list: every framework reads that one media type.
        raise BodyError("content type that is a list or a wildcard, not one media type")
    if (
        body
        and ";" in content_type
        and (kind == "application/x-www-form-urlencoded" or is_json(kind))
    ):
        why = _not_utf8(content_type)
        if why is not None:
            raise BodyError(why, code="unsupported_charset")
    if kind == "application/x-www-form-urlencoded":
        return parse_urlencoded(body, limits)
    if kind == "multipart/form-data":
        return parse_multipart(content_type, body, limits)
    if is_json(kind):
        blank = _LEADING_BLANKS.match(body).end() == len(body)  # type: ignore[union-attr]
        return [] if blank else parse_json(body, limits)
    return []


def _opaque(content_type: str, body: bytes) -> str | None:
    """Why an app might read values from this body that the gate did not (None: it cannot).

    Starlette's ``request.json()`` and many Django views parse the body as JSON whatever its
    content type, so a claim must not come from elsewhere while the body might hold another.
    """
    # The first bytes after leading blanks, without copying the body as strip() would.
    start = _LEADING_BLANKS.match(body).end()  # type: ignore[union-attr]
    if start == len(body):
        return None
    stripped = body[start : start + 4]
    kind = media_type(content_type)
    if is_json(kind):
        return None
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # json.loads takes a BOM and UTF-16/32 as well, which detect_encoding recognizes.
        if stripped[:1] in _JSON_LOOKING or json.detect_encoding(stripped) != "utf-8":
            return "the form body looks like JSON, which an app may parse as JSON"
        return None
    shown = kind or "untyped"
    return f"a {shown} body may be parsed by the app as JSON; send application/json or a form"


def collect(
    *,
    content_type: str,
    body: bytes,
    query_string: bytes,
    header_value: str | None,
    limits: ParseLimits | None = None,
) -> Fields:
    """All candidate fields of one request. Raises BodyError for an unparseable body or one
    over ``limits`` (``DEFAULT_LIMITS`` when None)."""
    limits = DEFAULT_LIMITS if limits is None else limits
    fields = Fields()
    fields.extend(parse_body(content_type, body, limits))
    fields.opaque = _opaque(content_type, body)
    if query_string:
        try:
            fields.extend(parse_urlencoded(query_string, limits))
        except BodyError as exc:
            exc.args = (f"query string: {exc}",)
            raise
    if header_value:
        try:
            fields.extend(parse_urlencoded(header_value, limits))
        except BodyError as exc:
            exc.args = (f"the {DEFAULT_HEADER} header: {exc}",)
            raise
    return fields


__all__ = [
    "DEFAULT_HEADER",
    "DEFAULT_LIMITS",
    "JSON_NESTING_KEY",
    "BodyError",
    "FieldError",
    "Fields",
    "ParseLimits",
    "Unreadable",
    "_PartReader",
    "_cached_options",
    "_json_depth_over",
    "_unquote",
    "collect",
    "is_json",
    "media_type",
    "parse_body",
    "parse_json",
    "parse_multipart",
    "parse_urlencoded",
]
