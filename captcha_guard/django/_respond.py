"""The gate's answers as Django responses: the refusal from the overridable template
``captcha_guard/rejected.html`` (JSON for JSON clients), ``on_reject`` when the site gave one,
and a proof-of-work challenge."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext

from .._responses import Denial, Reply, render, wants_json


def refusal(request: HttpRequest, denial: Denial, on_reject: Any) -> HttpResponseBase:
    """The answer to ``denial``: ``on_reject(denial, request)`` if set, else the gate's."""
    if on_reject is not None:
        response = on_reject(denial, request)
        if not isinstance(response, HttpResponseBase):
            raise TypeError(
                f"on_reject must return a Django HttpResponse, not {type(response).__name__}"
            )
    else:
        response = _gate_answer(request, denial)
    response["Cache-Control"] = "no-store"  # a refusal is about this request only, always
    return response


#: The package's own template: while the site has not overridden it, the gate's translated
#: page (every language of the doors' refusal page) is served instead of rendering it.
_OURS = str(Path(__file__).resolve().parent / "templates")


def _gate_answer(request: HttpRequest, denial: Denial) -> HttpResponse:
    as_json = wants_json(request.headers.get("Accept", ""), request.headers.get("Content-Type", ""))
    if not as_json:
        try:
            template = get_template("captcha_guard/rejected.html")
        except TemplateDoesNotExist:  # the app is not in INSTALLED_APPS: the gate's own page
            template = None
        origin = getattr(getattr(template, "origin", None), "name", "") or ""
        if template is not None and not str(origin).startswith(_OURS):
            body = template.render(_context(request, denial), request)
            return HttpResponse(body, status=denial.status, content_type="text/html; charset=utf-8")
    headers, payload = render(
        denial,
        as_json=as_json,
        request_headers=_page_headers(request),
        scheme=request.scheme or "http",
    )
    response = HttpResponse(payload, status=denial.status)
    for name, value in headers:
        if name not in ("content-length", "connection"):  # Django sets one, the server the other
            response[name] = value
    return response


def _page_headers(request: HttpRequest) -> dict[str, str]:
    """The request headers the gate's page reads (its language, its way back), with the host
    as the WSGI door reads it when the client sent none."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    if "host" not in headers:
        meta = request.META
        headers["host"] = f"{meta.get('SERVER_NAME', '')}:{meta.get('SERVER_PORT', '')}"
    return headers


def _context(request: HttpRequest, denial: Denial) -> dict[str, Any]:
    if denial.status == 403:
        title = gettext("Captcha not accepted")
        message = gettext("The captcha was missing or not accepted. Please solve it again.")
    elif denial.status == 503:
        title = gettext("Captcha check unavailable")
        message = gettext("The captcha cannot be checked right now. Please try again shortly.")
    else:
        title = HTTPStatus(denial.status).phrase
        message = denial.reason
    referer = request.headers.get("Referer", "")
    back = None
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = referer
    return {
        "denial": denial,
        "status": denial.status,
        "title": title,
        "message": message,
        "back": back,
    }


def challenge(reply: Reply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        if name != "content-length":
            response[name] = value
    return response


def add_headers(response: HttpResponseBase, headers: tuple[tuple[str, str], ...]) -> None:
    """Headers the gate adds to the view's answer (a clearance cookie)."""
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            response.cookies.load({key: rest.split(";", 1)[0]})
            # The gate wrote the attributes; load() keeps only the value, so write them too.
            response.cookies[key].update(_attributes(rest))
        else:
            response[name] = value


def _attributes(cookie: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for piece in cookie.split(";")[1:]:
        name, _, value = piece.strip().partition("=")
        key = name.lower()
        if key in ("path", "domain", "max-age", "expires", "samesite"):
            out[key] = value
        elif key in ("secure", "httponly"):
            out[key] = True
    return out


__all__ = ["add_headers", "challenge", "refusal"]
