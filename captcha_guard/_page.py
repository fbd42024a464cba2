"""The gate's own refusal page: translated from ``Accept-Language``, with a way back.

The page is what a person sees when a form they sent was refused (a 403 for a captcha that did
not verify, a 503 while it cannot be checked, a 400/408/413 for a request the gate could not
read). It says so in their language, keeps the gate's short technical reason as a detail, and
links back to the page the form came from so they can solve a fresh captcha and try again.

The link is the one part an attacker could steer (the ``Referer`` is theirs to send), so it is
built from the referer's path and query alone, and only when the referer has the request's own
scheme, host and port: it is always a same-site relative URL, never an off-site one.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import urlsplit

from ._translations import DEFAULT_LANGUAGE, MESSAGES, TEXTS

#: An Accept-Language longer than this is read only this far: the answer is a courtesy and
#: must cost the gate next to nothing whatever a client sends.
_MAX_HEADER = 1024
_MAX_RANGES = 32
#: Tags that name a script or region of Chinese, mapped to the translation that fits them.
_CHINESE = {
    "zh": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "zh-my": "zh-Hans",
    "zh-hant": "zh-Hant",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
}


def negotiate(accept_language: str) -> str:
    """The best translation for ``accept_language`` (RFC 9110 q-values; ties keep their
    order), or English when none of the client's ranges has one."""
    ranges: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept_language[:_MAX_HEADER].split(",")[:_MAX_RANGES]):
        tag, _, params = item.partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if tag and 0.0 < quality <= 1.0:
            ranges.append((-quality, index, tag))
    for _, _, tag in sorted(ranges):
        found = _translation(tag)
        if found is not None:
            return found
    return DEFAULT_LANGUAGE


def _translation(tag: str) -> str | None:
    if tag == "*":
        return DEFAULT_LANGUAGE
    parts = tag.split("-")
    if parts[0] == "zh":
        # zh-Hant-TW, zh-Hans-CN, zh-TW: the script subtag wins, then the region.
        for length in (2, 1):
            found = _CHINESE.get("-".join(parts[:length]))
            if found is not None:
                return found
        return None
    return parts[0] if parts[0] in TEXTS else None


def way_back(referer: str, *, scheme: str, host: str) -> str | None:
    """A relative link to the page the form came from, or None when the referer is missing,
    off-site, or anything but a plain http(s) URL of this very origin."""
    if not referer or not host or len(referer) > 2048:
        return None
    if any(c in referer for c in "\\\r\n\t\0") or not referer.isprintable():
        return None
    try:
        parts = urlsplit(referer)
        origin = urlsplit(f"{scheme}://{host}")
        same = (
            parts.scheme.lower() in ("http", "https")
            and parts.hostname is not None
            and parts.hostname == origin.hostname
            and _same_port(parts.scheme, parts.port, origin.scheme, origin.port)
            and not parts.username
            and not parts.password
        )
    except ValueError:  # a bad port, an unbalanced bracket
        return None
    if not same:
        return None
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def _same_port(scheme: str, port: int | None, own_scheme: str, own_port: int | None) -> bool:
    # Behind a proxy that ends TLS the door sees http while the browser was on https: both on
    # their scheme's default port is the same site. The link is relative in any case.
    if port is None and own_port is None:
        return True
    defaults = {"http": 80, "https": 443}
    return (port or defaults.get(scheme.lower())) == (own_port or defaults.get(own_scheme.lower()))


_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{status} {phrase}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;\
color:#222}}h1{{font-size:1.4em}}.detail{{color:#666;font-size:.9em}}a{{color:#0645ad}}</style>
</head>
<body><h1>{title}</h1><p>{message}</p>{back}<p class="detail">{detail_label}: {reason}</p>
</body></html>
"""


def page(
    status: int, error: str, reason: str, *, language: str = "", back: str | None = None
) -> str:
    """The HTML refusal page for a denial, in the language ``negotiate`` chose."""
    texts = TEXTS.get(language) or TEXTS[DEFAULT_LANGUAGE]
    messages: Mapping[str, tuple[str, str]] = MESSAGES.get(language) or MESSAGES[DEFAULT_LANGUAGE]
    title, message = messages.get(error) or messages[_family(status)]
    link = (
        f'<p><a href="{html.escape(back, quote=True)}" id="captcha-guard-back">'
        f"{html.escape(texts['back'])}</a></p>"
        if back is not None
        else ""
    )
    return _PAGE.format(
        lang=language if language in TEXTS else DEFAULT_LANGUAGE,
        status=status,
        phrase=HTTPStatus(status).phrase,
        title=html.escape(title),
        message=html.escape(message),
        back=link,
        detail_label=html.escape(texts["detail"]),
        reason=html.escape(reason),
    )


def _family(status: int) -> str:
    """The message of a code the table does not name (``too_many_fields`` reads as a 413)."""
    if status >= 500:
        return "captcha_unavailable"
    return {403: "captcha_rejected", 408: "body_timeout", 413: "body_too_large"}.get(
        status, "bad_request"
    )


__all__ = ["negotiate", "page", "way_back"]
