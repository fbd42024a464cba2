"""What parsing a protected request may cost, and how a body the gate cannot read fails.

Shared by the body readers (``_urlencoded``, ``_json_body``, ``_multipart``) and the collector
(``_fields``), which imports them: this module imports none of ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._check import int_arg


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
            int_arg(getattr(self, name), name, owner="ParseLimits")


DEFAULT_LIMITS = ParseLimits()


class BodyError(ValueError):
    """The body of a protected request cannot be parsed: the client gets a 400 (or a 413 when
    it is over a parse limit), with ``code`` as the stable error code."""

    def __init__(self, reason: str, *, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(reason)
        self.status = status
        self.code = code


def over(code: str, reason: str) -> BodyError:
    """A BodyError for a body over a parse limit: 413 with ``code``."""
    return BodyError(reason, status=413, code=code)


class Unreadable:
    """A value that the frameworks read in different ways: the app may see something else than
    the gate would, so reading it as a captcha field or a claim is refused."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"Unreadable({self.why!r})"


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


__all__ = [
    "DEFAULT_LIMITS",
    "BodyError",
    "ParseLimits",
    "Unreadable",
    "is_json",
    "media_type",
    "over",
]
