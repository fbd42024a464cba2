"""multipart/form-data: the non-file fields of a form, read as every framework reads them.

Read by hand rather than with python-multipart, which refuses what Werkzeug and Django serve
(a preamble, bare-LF line breaks, transport padding after a boundary). Every occurrence of
"--boundary" in the body must be one of the delimiters read: one that is not (say "--b" after
a bare LF inside a CRLF body, which Werkzeug takes for a delimiter and python-multipart for
data) would make two parsers see different parts, so it is refused.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from functools import lru_cache

from python_multipart.multipart import parse_options_header

from ._parsing import DEFAULT_LIMITS, BodyError, ParseLimits, Unreadable, over

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
            raise over("too_many_parts", f"multipart body with more than {most} parts") from None
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
        The first delimiter found that is not a boundary line is refused (module docstring).
        """
        eol, blank = self._eol, self._blank
        most = self._limits.max_fields + self._limits.max_files
        parts = 0
        while True:
            parts += 1
            if parts > most:
                raise over("too_many_parts", f"multipart body with more than {most} parts")
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
                raise over("too_many_files", f"more than {self._limits.max_files} files")
            if not options[b"filename"]:
                # An empty file input: a file to Starlette and Werkzeug, a field to Django.
                empty = Unreadable(_EMPTY_FILENAME)
                self.fields.extend((name, empty) for name in self._names(raw_name)[0])
            return
        if len(self.fields) >= self._limits.max_fields:
            raise over("too_many_fields", f"more than {self._limits.max_fields} form fields")
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


__all__ = ["parse_multipart"]
