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

Work is bounded before it is done: the parts, fields and JSON items of a body are counted on
its raw bytes (C speed) against ``ParseLimits`` before a Python-level loop runs over them.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, chain
from operator import itemgetter, sub
from typing import Any
from urllib.parse import unquote

from python_multipart.multipart import parse_options_header

#: The header a client may carry the fields in, as a urlencoded string
#: (``X-Captcha: lot_number=...&captcha_output=...``), for JSON APIs that keep bodies clean.
DEFAULT_HEADER = "x-captcha"

#: In a JSON body the fields may sit at the top level or under this key.
JSON_NESTING_KEY = "captcha"


@dataclass(frozen=True)
class ParseLimits:
    """How much parsing a protected request may cost before the gate refuses it.

    The defaults are what the frameworks behind the gate accept, so that no request the app
    would serve is refused: Starlette stops at 1,000 fields and 1,000 files, Django at
    ``DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000``, Werkzeug at ``max_form_parts = 1000``.
    JSON has no limit there but the body size; the gate bounds the number of items (counted
    on the raw bytes: every ``,``, ``[`` and ``{``, inside strings too) and the nesting.
    """

    #: Name/value pairs per source (form body, query string, X-Captcha header) and non-file
    #: parts of a multipart body. More is 413 ``too_many_fields``.
    max_fields: int = 1000
    #: File parts of a multipart body. More is 413 ``too_many_files``.
    max_files: int = 1000
    #: Nesting of a JSON body. Deeper is 400 ``json_too_deep``.
    max_json_depth: int = 128
    #: Items of a JSON body (values in arrays and objects). More is 413 ``json_too_large``.
    max_json_items: int = 20_000
    #: Header lines of a protected request (gunicorn's ``limit_request_fields`` is 100 too).
    #: More is 431 ``too_many_headers``, before the body is read.
    max_header_fields: int = 100
    #: Bytes of a protected request's header names and values. More is 431
    #: ``headers_too_large``.
    max_header_bytes: int = 65_536

    def __post_init__(self) -> None:
        for name in (
            "max_fields",
            "max_files",
            "max_json_depth",
            "max_json_items",
            "max_header_fields",
            "max_header_bytes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ParseLimits: {name} must be an int >= 1, not {value!r}")


DEFAULT_LIMITS = ParseLimits()


class BodyError(ValueError):
    """The body of a protected request cannot be parsed: the client gets a 400 (or a 413 when
    it is over a parse limit), with ``code`` as the stable error code."""

    def __init__(self, reason: str, *, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(reason)
        self.status = status
        self.code = code


def _over(code: str, reason: str) -> BodyError:
    return BodyError(reason, status=413, code=code)


class FieldError(ValueError):
    """A captcha field is missing, duplicated or of the wrong type: the client gets a 403."""


class Unreadable:
    """A value that the frameworks read in different ways: the app may see something else than
    the gate would, so reading it as a captcha field or a claim is refused."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"Unreadable({self.why!r})"


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


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


# ---------------------------------------------------------------------------------------------
# urlencoded: form bodies, the query string, the X-Captcha header.
#
# Only '&' separates pairs (WHATWG, urllib.parse, python-multipart >= 0.0.30). A component of
# ASCII bytes whose percent-escapes decode to UTF-8 reads the same everywhere; raw non-ASCII
# bytes do not (Starlette decodes them as latin-1, Django and Werkzeug as UTF-8), nor do escapes
# that are not UTF-8 (Starlette and Django put U+FFFD, Werkzeug keeps "%E9"), which is what a
# form posted with accept-charset="ISO-8859-1" carries.

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
        too_many = _over("too_many_fields", f"more than {limits.max_fields} urlencoded fields")
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


# ---------------------------------------------------------------------------------------------
# JSON


# Objects are read as lists of (key, value) pairs, repeated keys included: parsers differ on
# which of two equal keys wins, so the gate must see both and refuse them. ``list`` as the
# pairs hook is called by the C decoder with no Python frame (a list subclass cost twice the
# whole parse). An object is then a list whose items are tuples; an array's items never are.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_JSON_BLANKS = re.compile(r"[ \t\n\r]*")


_RUNS = re.compile(rb"\[+|\]+")


def _json_depth_over(raw: bytes, limit: int) -> bool:
    """Whether the UTF-8 JSON text ``raw`` nests deeper than ``limit``, read on its bytes.

    Strings are cut out (escaped backslashes and quotes first, then every other quote starts
    or ends one) and the brackets kept. Removing every innermost pair lowers the depth by one:
    that is a C loop over bytes, done while it shrinks the text by a quarter or more (wide
    bodies, many leaves); what is left has few, long runs of brackets, whose lengths give the
    depth at each peak. No step costs a Python call per bracket.
    """
    plain = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(plain.split(b'"')[::2]).translate(_BRACKETS, _NOT_BRACKETS)
    while brackets and limit > 0:
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            return False  # unbalanced: not JSON, which the parse then says
        shrunk = len(inner) * 4 <= len(brackets) * 3
        brackets, limit = inner, limit - 1
        if not shrunk:
            break
    if not brackets:
        return False
    if limit <= 0:
        return True
    runs = list(map(len, _RUNS.findall(brackets)))
    if brackets[:1] != b"[" or len(runs) % 2:
        return False  # unbalanced: not JSON
    peaks: map[int] = map(sub, accumulate(runs[0::2]), chain((0,), accumulate(runs[1::2])))
    return max(peaks) > limit


def _object_pairs(value: Any) -> list[tuple[str, object]] | None:
    if type(value) is list and value and type(value[0]) is tuple:
        return value
    return None


def parse_json(body: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> list[tuple[str, object]]:
    # An upper bound on the items, on the raw bytes: the parse below costs about this much.
    openers = body.count(b"[") + body.count(b"{")
    if openers + body.count(b",") > limits.max_json_items:
        raise _over("json_too_large", f"JSON body with more than {limits.max_json_items} items")
    try:
        # As json.loads(bytes) does it, and so Starlette's request.json() and Django apps'.
        encoding = json.detect_encoding(body)
        text = body.decode(encoding, "surrogatepass")
    except UnicodeDecodeError as exc:
        raise BodyError("body is not valid JSON") from exc
    if openers > limits.max_json_depth:
        raw = body if encoding.startswith("utf-8") else text.encode("utf-8", "surrogatepass")
        if _json_depth_over(raw, limits.max_json_depth):
            raise BodyError(
                f"JSON body nested deeper than {limits.max_json_depth}", code="json_too_deep"
            )
    # Only an object's pairs are fields: any other document is parsed (for a 400 if it is not
    # JSON) without the pairs hook, which costs a call per object.
    start = _JSON_BLANKS.match(text).end()  # type: ignore[union-attr]
    is_object = text.startswith("{", start)
    try:
        document: Any = json.loads(text, object_pairs_hook=list if is_object else None)
    except RecursionError:
        raise BodyError("JSON body nested too deep", code="json_too_deep") from None
    except ValueError as exc:
        raise BodyError("body is not valid JSON") from exc
    if not is_object or not document:
        return []  # not an object, or an empty one
    pairs: list[tuple[str, object]] = document
    if JSON_NESTING_KEY in map(itemgetter(0), document):
        pairs = list(document)
        for name, nested in document:
            if name == JSON_NESTING_KEY and (inner := _object_pairs(nested)) is not None:
                pairs.extend(inner)
    return pairs


# ---------------------------------------------------------------------------------------------
# multipart/form-data
#
# Read by hand rather than with python-multipart, which refuses what Werkzeug and Django serve
# (a preamble, bare-LF line breaks, transport padding after a boundary). Every occurrence of
# "--boundary" in the body must be one of the delimiters read: one that is not (say "\n--b"
# inside a CRLF body, which Werkzeug takes for a delimiter and python-multipart for data) would
# make two parsers see different parts, so it is refused.

_BOUNDARY_PARAM = re.compile(rb";\s*boundary\s*=", re.IGNORECASE)
_QUOTED_BOUNDARY = re.compile(rb';\s*boundary\s*=\s*"', re.IGNORECASE)
# RFC 2046's boundary characters, never ending in a space (Falcon strips one). Unquoted, a
# boundary is cut at the first byte that is not a token byte by Werkzeug and Litestar and read
# whole by the others, so there only the characters both sets have are allowed.
_BCHARS = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]")
_UNQUOTED_BCHARS = re.compile(rb"[0-9A-Za-z'+_\-.]+")
_PADDING_EOL = re.compile(rb"[ \t]*(\r\n|\n)")
_BLANKS = re.compile(rb"[ \t\r\n]*")
# A part's headers: python-multipart refuses more than 8 of them, Django ignores a part whose
# headers do not end within 1,024 bytes; a browser sends two, in about a hundred bytes.
_MAX_PART_HEADERS = 8
_MAX_PART_HEAD = 8_192
# No captcha field comes near this; a longer value is kept unread (a 403 if a provider needs it).
_MAX_VALUE = 65_536
_TOO_LONG = f"is longer than {_MAX_VALUE} bytes, which the gate does not read"
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_EXTENDED = re.compile(rb";\s*(?:file)?name\*", re.IGNORECASE)
_NAME_PARAM = re.compile(rb";\s*name\s*=", re.IGNORECASE)
_UNQUOTED_NAME = re.compile(rb";\s*name\s*=\s*([^\s\";][^;]*?)\s*(?:;|$)", re.IGNORECASE)
_FILENAME_PARAM = re.compile(rb";\s*filename\s*=", re.IGNORECASE)
# The one Content-Disposition syntax every framework splits alike: parameters after "; " (spaces,
# no tabs: the multipart package that Litestar uses splits on "; *"), no space around "=" (which
# Werkzeug does not allow) and quoted values without backslashes (Werkzeug unescapes any \x,
# the multipart package only where a \" is, and IE's path fix empties a filename that ends
# in one). Where they split it otherwise, a part one reads as a file is a field to another.
_DISPOSITION = re.compile(
    rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb'(?: *; *[A-Za-z0-9_-]+=(?:[!#$%&\'*+\-.^_`|~0-9A-Za-z]+|"[^"\\]*"))* *;?'
)
# Browsers send a quote or a line break in a name as %22, %0D, %0A; Werkzeug and the multipart
# package decode those, python-multipart, Django and Falcon keep them.
_ESCAPED_NAME = re.compile(rb"%(?:22|0d|0a)", re.IGNORECASE)
_EMPTY_FILENAME = "is a part with an empty filename: a file to some frameworks, a field to others"
_IDENTITY_ENCODINGS = frozenset({b"7bit", b"8bit", b"binary"})


@lru_cache(maxsize=1024)
def _cached_options(value: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    return parse_options_header(value)


def _options(value: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    """parse_options_header, remembered: a site's forms send the same few part headers on
    every request, and parsing them is most of a small form's cost. Long values (which no
    form of ours needs) are not kept, so the cache stays small whatever clients send."""
    return _cached_options(value) if len(value) <= 200 else parse_options_header(value)


def _charset(value: bytes | None) -> str | None:
    """A charset parameter by its codec name; None for none, UTF-8 or an unknown one."""
    if not value:
        return None
    try:
        name = codecs.lookup(value.decode("latin-1")).name
    except LookupError:
        return "unknown"  # Starlette then decodes as latin-1, the others as UTF-8
    return None if name == "utf-8" else name


def _part_text(raw: bytes, charsets: Iterable[str | None]) -> tuple[str, str | None]:
    """A part's name or value as text, and why the frameworks might read it otherwise."""
    named = [c for c in charsets if c]
    if raw.isascii():
        text = raw.decode("ascii")
        for charset in named:
            try:
                if charset == "unknown" or raw.decode(charset) != text:
                    return text, "is sent in a charset frameworks read differently"
            except (UnicodeDecodeError, LookupError):
                return text, "is sent in a charset frameworks read differently"
        return text, None
    if named:
        return raw.decode("utf-8", "replace"), "is non-ASCII text in a declared charset"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        # Starlette falls back to latin-1, Werkzeug and Django put U+FFFD.
        return raw.decode("utf-8", "replace"), "is not UTF-8, which frameworks decode differently"


def parse_multipart(
    content_type: str, body: bytes, limits: ParseLimits = DEFAULT_LIMITS
) -> list[tuple[str, object]]:
    """The non-file fields of a multipart/form-data body; file contents are skipped unread."""
    _, params = _options(content_type.encode("latin-1", "replace"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BodyError("multipart body without a boundary")
    raw_type = content_type.encode("latin-1", "replace")
    if len(_BOUNDARY_PARAM.findall(raw_type)) > 1:
        # python-multipart and Werkzeug take the last, Django the first.
        raise BodyError("multipart content type with two boundaries")
    allowed = _BCHARS if _QUOTED_BOUNDARY.search(raw_type) else _UNQUOTED_BCHARS
    if not allowed.fullmatch(boundary):
        raise BodyError(
            "multipart boundary that frameworks read differently (unquoted: letters, digits"
            " and '+_-. only; quoted: RFC 2046 characters, not ending in a space)"
        )
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    if start < 0:
        raise BodyError("multipart body without its boundary")
    # What comes before is the preamble. Werkzeug skips it; Django parses it as a part when it
    # has headers, and a part's name needs a header line: so a preamble with a colon is refused.
    if body.find(b":", 0, start) >= 0:
        raise BodyError("multipart preamble that looks like a part header")
    after = start + len(delimiter)
    if body.startswith(b"--", after):
        if body.find(delimiter, after) >= 0:
            raise BodyError("multipart body with its boundary after the closing boundary")
        if not _BLANKS.fullmatch(body, after + 2):
            raise BodyError("multipart body with data after its closing boundary")
        return []  # a close delimiter alone: a form with no fields
    first = _PADDING_EOL.match(body, after)
    if first is None:
        raise BodyError("multipart boundary not followed by a line break")
    # The first boundary line decides the line break; a body that mixes both is refused.
    reader = _PartReader(first.group(1), limits, _charset(params.get(b"charset")))
    try:
        reader.read(body, delimiter, first.end())
    except BodyError as exc:
        # Over a field or file limit: say so by the parts when there are too many in all.
        # Counted only now: counting first is a pass over the whole body, which costs more
        # than the app's parser spends on a body it refuses at its first part.
        most = limits.max_fields + limits.max_files
        if exc.status == 413 and body.count(delimiter) > most + 1:
            raise _over("too_many_parts", f"multipart body with more than {most} parts") from None
        raise
    return reader.fields


class _PartReader:
    def __init__(self, eol: bytes, limits: ParseLimits, charset: str | None) -> None:
        self.fields: list[tuple[str, object]] = []
        self._eol = eol
        self._blank = eol + eol
        self._limits = limits
        self._charset = charset
        self._files = 0

    def _names(self, raw: bytes) -> tuple[set[str], str | None]:
        """Every name the frameworks may read a part's name as, and why they differ (None when
        they read it alike, and the set is that one name)."""
        text, bad = _part_text(raw, [self._charset])
        if bad is None:
            return {text}, None
        # Werkzeug and Django put U+FFFD for what is not UTF-8, Starlette falls back to latin-1,
        # and Django and Starlette decode by the form's own charset= where Python knows it.
        names = {text, raw.decode("latin-1")}
        if self._charset is not None and self._charset != "unknown":
            names.add(raw.decode(self._charset, "replace"))
        return names, bad

    def read(self, body: bytes, delimiter: bytes, pos: int) -> None:
        """Every part from ``pos`` (just after the first boundary line) to the closing one.

        Parts are found one ``find`` at a time, so the work stops where a limit or an error
        does, and a part's headers are looked at (within ``_MAX_PART_HEAD`` bytes) before the
        body is searched for the next boundary: a header flood costs no more than its limit.
        Every occurrence of the delimiter must be a boundary line: one that is not (say
        "\\n--b" inside a CRLF body, which Werkzeug takes for a delimiter and python-multipart
        for data) would make two parsers see different parts, so it is refused.
        """
        eol, blank = self._eol, self._blank
        most = self._limits.max_fields + self._limits.max_files
        parts = 0
        while True:
            parts += 1
            if parts > most:
                raise _over("too_many_parts", f"multipart body with more than {most} parts")
            if body.startswith(eol, pos):
                head_end, content = pos, pos + len(eol)
            else:
                limit = pos + _MAX_PART_HEAD
                head_end = body.find(blank, pos, limit + len(blank))
                if head_end < 0:
                    if len(body) > limit and body.find(delimiter, pos, limit) < 0:
                        raise BodyError(
                            f"multipart part headers longer than {_MAX_PART_HEAD} bytes"
                        )
                    raise BodyError("multipart part headers do not end with a blank line")
                content = head_end + len(blank)
            head = body[pos:head_end]
            if head.count(eol) >= _MAX_PART_HEADERS:
                # python-multipart (Starlette, FastAPI) refuses a part with more than 8.
                raise BodyError(f"multipart part with more than {_MAX_PART_HEADERS} headers")
            found = body.find(delimiter, pos)
            if found < 0:
                raise BodyError("multipart body ends before its closing boundary")
            end = found - len(eol)
            if end < pos or body[end:found] != eol:
                raise BodyError(
                    "multipart body with its boundary string inside a part (or mixed line breaks)"
                )
            if content > end:
                raise BodyError("multipart part headers do not end with a blank line")
            if eol == b"\n" and (b"\r" in head or body.find(b"\r", content, end) >= 0):
                # Django looks for CRLF CRLF to end a part's headers even in a bare-LF body, and
                # Werkzeug strips a CR before a boundary: each would cut this part elsewhere.
                raise BodyError("bare-LF multipart body with a CR in a part")
            # A value longer than any captcha field is neither copied nor decoded.
            self.part(head, body[content:end] if end - content <= _MAX_VALUE else None)
            after = found + len(delimiter)
            if body.startswith(b"--", after):
                if _BLANKS.fullmatch(body, after + 2):
                    return
                if body.find(eol + delimiter, after) >= 0:
                    raise BodyError("multipart body with its boundary after the closing boundary")
                # Django reads on past the closing boundary, and finds parts there.
                raise BodyError("multipart body with data after its closing boundary")
            padding = _PADDING_EOL.match(body, after)
            if padding is None or padding.group(1) != eol:
                raise BodyError("multipart boundary not followed by a line break")
            pos = padding.end()
            if pos == len(body):
                raise BodyError("multipart body ends before its closing boundary")

    def part(self, head: bytes, content: bytes | None) -> None:
        """One part: ``content`` is its value (None: longer than ``_MAX_VALUE``)."""
        eol = self._eol
        disposition: bytes | None = None
        part_charset: str | None = None
        encoded = False
        for line in head.split(eol) if head else ():
            if b"\r" in line or b"\n" in line:
                raise BodyError("multipart part header with mixed line breaks")
            if line[:1] in (b" ", b"\t"):
                raise BodyError("multipart part header folded over two lines")
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise BodyError("malformed multipart part header")
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-disposition":
                if disposition is not None:
                    raise BodyError("multipart part with two Content-Disposition headers")
                disposition = value
            elif name == b"content-type":
                part_charset = _charset(_options(value)[1].get(b"charset"))
            elif name == b"content-transfer-encoding":
                encoded = value.lower() not in _IDENTITY_ENCODINGS
        if disposition is None:
            raise BodyError("multipart part without a Content-Disposition header")
        if _EXTENDED.search(disposition):
            raise BodyError("multipart part named with name*= or filename*= (RFC 2231)")
        unquoted = _UNQUOTED_NAME.search(disposition)
        if unquoted and not _TOKEN.fullmatch(unquoted.group(1)):
            # Werkzeug reads an unquoted name up to its first non-token byte, others whole.
            raise BodyError("multipart part name with characters that need quotes")
        names = len(_NAME_PARAM.findall(disposition))
        if names > 1 or len(_FILENAME_PARAM.findall(disposition)) > 1:
            raise BodyError("multipart part with a repeated name or filename")
        if b"\\" in disposition:
            raise BodyError(
                "multipart Content-Disposition with a backslash, which frameworks unescape"
                " differently"
            )
        if not _DISPOSITION.fullmatch(disposition):
            raise BodyError(
                "multipart Content-Disposition that frameworks split differently (use '; '"
                " between parameters, no tab, no space around '=')"
            )
        # Any disposition type: Starlette, Werkzeug and Django all read an "attachment" part
        # with a name as a field, so the gate must too.
        _, options = _options(disposition)
        raw_name = options.get(b"name")
        if raw_name is None:
            raise BodyError("multipart part without a name")
        if _ESCAPED_NAME.search(raw_name):
            raise BodyError(
                "multipart part name with %22, %0D or %0A, which some frameworks decode to a"
                " quote or a line break and others keep"
            )
        if b"filename" in options:
            self._files += 1
            if self._files > self._limits.max_files:
                raise _over("too_many_files", f"more than {self._limits.max_files} files")
            if not options[b"filename"]:
                # An empty file input: a file to Starlette and Werkzeug, a field to Django.
                empty = Unreadable(_EMPTY_FILENAME)
                self.fields.extend((name, empty) for name in self._names(raw_name)[0])
            return
        if len(self.fields) >= self._limits.max_fields:
            raise _over("too_many_fields", f"more than {self._limits.max_fields} form fields")
        read_as, bad_name = self._names(raw_name)
        if bad_name:
            unreadable = Unreadable(f"has a name that {bad_name.removeprefix('is ')}")
            self.fields.extend((name, unreadable) for name in read_as)
            return
        (text_name,) = read_as
        if content is None:
            self.fields.append((text_name, Unreadable(_TOO_LONG)))
            return
        text, bad_value = _part_text(content, [self._charset, part_charset])
        why = bad_value
        if encoded:
            why = "is sent with a Content-Transfer-Encoding, which frameworks treat differently"
        self.fields.append((text_name, Unreadable(why) if why else text))


# ---------------------------------------------------------------------------------------------

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


def is_json(kind: str) -> bool:
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


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
