"""Reading captcha fields out of a request: form, multipart, JSON, query string or a header.

Every source is parsed into one ``Fields`` bag that remembers how often a name was seen, so a
field sent twice (in the body and the query, or twice in a form) is refused rather than
silently resolved one way here and another way in the app.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

#: The header a client may carry the fields in, as a urlencoded string
#: (``X-Captcha: lot_number=...&captcha_output=...``), for JSON APIs that keep bodies clean.
DEFAULT_HEADER = "x-captcha"

#: In a JSON body the fields may sit at the top level or under this key.
JSON_NESTING_KEY = "captcha"

_MAX_FIELDS = 10_000


class BodyError(ValueError):
    """The body of a protected request cannot be parsed: the client gets a 400."""


class FieldError(ValueError):
    """A captcha field is missing, duplicated or of the wrong type: the client gets a 403."""


class Fields:
    """Every value seen for every name, across all sources of one request."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, list[object]] = {}

    def __repr__(self) -> str:  # names only: values are tokens and never printed
        return f"Fields({sorted(self._values)!r})"

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def add(self, name: str, value: object) -> None:
        self._values.setdefault(name, []).append(value)

    def extend(self, pairs: Iterable[tuple[str, object]]) -> None:
        for name, value in pairs:
            self.add(name, value)

    def one(self, name: str) -> str:
        """The single string value of ``name``, or FieldError saying what is wrong."""
        values = self._values.get(name)
        if not values:
            raise FieldError(f"missing {name}")
        if len(values) > 1:
            raise FieldError(f"duplicated {name}")
        value = values[0]
        if not isinstance(value, str):
            raise FieldError(f"{name} is not a string")
        return value

    def optional(self, name: str) -> str | None:
        return self.one(name) if name in self._values else None


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def parse_urlencoded(data: bytes | str) -> list[tuple[str, str]]:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return parse_qsl(
            text,
            keep_blank_values=True,
            errors="strict",
            max_num_fields=_MAX_FIELDS,
        )
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise BodyError("form data is not valid UTF-8 urlencoded text") from exc


class _JSONObject(dict[str, Any]):
    """A JSON object that keeps every key/value pair, repeated keys included: parsers differ
    on which of two equal keys wins, so the gate must see both and refuse them."""

    pairs: list[tuple[str, Any]]


def _json_object(pairs: list[tuple[str, Any]]) -> _JSONObject:
    document = _JSONObject(pairs)
    document.pairs = pairs
    return document


def parse_json(body: bytes) -> list[tuple[str, object]]:
    try:
        document: Any = json.loads(body, object_pairs_hook=_json_object)
    except (ValueError, RecursionError) as exc:
        raise BodyError("body is not valid JSON") from exc
    if not isinstance(document, _JSONObject):
        return []
    pairs: list[tuple[str, object]] = list(document.pairs)
    for name, nested in document.pairs:
        if name == JSON_NESTING_KEY and isinstance(nested, _JSONObject):
            pairs.extend(nested.pairs)
    return pairs


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The non-file fields of a multipart/form-data body; file contents are skipped unread."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BodyError("multipart body without a boundary")
    reader = _MultipartFields()
    try:
        parser = MultipartParser(boundary, reader.callbacks())
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise BodyError("body is not valid multipart/form-data") from exc
    if not reader.ended:
        raise BodyError("multipart body ends before its closing boundary")
    return reader.fields


class _MultipartFields:
    def __init__(self) -> None:
        self.fields: list[tuple[str, str]] = []
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._data = bytearray()

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._data.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]

    def _part_end(self) -> None:
        kind, params = parse_options_header(self._disposition)
        name = params.get(b"name")
        if kind != b"form-data" or name is None or b"filename" in params:
            return
        try:
            self.fields.append((name.decode("utf-8"), self._data.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise BodyError("multipart field is not valid UTF-8") from exc

    def _end(self) -> None:
        self.ended = True


def parse_body(content_type: str, body: bytes) -> list[tuple[str, object]]:
    """The name/value pairs of a body, by its media type; other media types carry none."""
    kind = media_type(content_type)
    if kind == "application/x-www-form-urlencoded":
        return list(parse_urlencoded(body))
    if kind == "multipart/form-data":
        return list(parse_multipart(content_type, body))
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return parse_json(body) if body.strip() else []
    return []


def collect(
    *,
    content_type: str,
    body: bytes,
    query_string: bytes,
    header_value: str | None,
) -> Fields:
    """All candidate fields of one request. Raises BodyError for an unparseable body."""
    fields = Fields()
    fields.extend(parse_body(content_type, body))
    if query_string:
        try:
            fields.extend(parse_urlencoded(query_string.decode("latin-1")))
        except BodyError:
            raise BodyError("query string is not valid UTF-8 urlencoded text") from None
    if header_value:
        try:
            fields.extend(parse_urlencoded(header_value))
        except BodyError:
            raise BodyError(f"the {DEFAULT_HEADER} header is not urlencoded text") from None
    return fields
