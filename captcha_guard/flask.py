"""Flask: the gate inside the app, judging the view Flask's router chose.

    from captcha_guard.flask import CaptchaGuard, captcha_required

    guard = CaptchaGuard(app, provider=GeeTest(...))      # or CaptchaGuard(...).init_app(app)

    @app.post("/login")
    @captcha_required                                      # or captcha_required(provider="x")
    def login(): ...                                       # the verdict is flask.g.captcha

``CaptchaGuard`` takes the door's keywords, or ``app.config["CAPTCHA_GUARD"]`` (a dict of them,
or the path of a TOML file); its ``rules=`` are matched by path before any view runs, the
decorator protects a view wherever it is routed (blueprints, converters). The fields are read
from Flask's own ``request.form``, ``request.get_json()``, ``request.args`` and the ``X-Captcha``
header, so the provider judges what the view reads.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast, overload

from flask import Flask, current_app, g, make_response, request
from flask import Response as FlaskResponse
from werkzeug.exceptions import HTTPException

from ._adapter import is_judged, judge, read_fields, reused, view_route
from ._effects import Deny, Pass, Redeem
from ._fields import BodyError, Fields, _opaque, media_type
from ._request import from_environ
from ._responses import Denial, Reply, render, wants_json
from ._route import Route
from ._rules import DEFAULT_METHODS
from ._verdict import Verdict
from .wsgi import VERDICT_KEY, WSGICaptchaGuard, _route_path

F = TypeVar("F", bound=Callable[..., Any])

#: ``on_reject(denial)`` returns what a Flask view may return (a Response, a tuple, ...).
FlaskRejectHandler = Callable[[Denial], Any]

_EXTENSION = "captcha_guard"


class _Core(WSGICaptchaGuard):
    """The door's configuration and clients, driven from inside Flask (no app to wrap)."""

    def __init__(self, app: Any = None, **keywords: Any) -> None:
        super().__init__(app, **keywords)
        self.view_routes: dict[Any, Route] = {}


class CaptchaGuard:
    """The Flask extension: ``CaptchaGuard(app=None, **keywords)`` with the door's keywords."""

    def __init__(self, app: Flask | None = None, **keywords: Any) -> None:
        self.keywords = keywords
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        configured = app.config.get("CAPTCHA_GUARD")
        if isinstance(configured, (str, os.PathLike)):
            core = _Core.from_file(cast(Any, None), configured, **self.keywords)
        else:
            core = _Core(**{**dict(cast(Mapping[str, Any], configured or {})), **self.keywords})
        app.extensions[_EXTENSION] = core
        app.before_request(_by_rules)

    @staticmethod
    def core(app: Flask | None = None) -> WSGICaptchaGuard:
        """The configured door behind ``app`` (default: the current app)."""
        found = (app or current_app).extensions.get(_EXTENSION)
        if found is None:
            raise RuntimeError("captcha_guard.flask.CaptchaGuard was not set up on this app")
        return cast(WSGICaptchaGuard, found)


def _by_rules() -> Any:
    """``rules=``: matched by path before the view, as the WSGI door matches them."""
    core = cast(_Core, CaptchaGuard.core())
    g.captcha = None  # every view may read it; a verdict replaces it when one is made
    earlier = request.environ.get(VERDICT_KEY)
    if earlier is not None:  # a WSGI door in front judged it
        g.captcha = earlier
        return None
    method = request.method
    path = _route_path(request.environ.get("PATH_INFO", ""))
    found = core.gate.route(method, path)
    if found is None:
        if path not in core.gate.challenge_paths:
            return None
        # The sender too, as the doors pass it: proof of work prices a challenge by its
        # network and the policy's signals.
        value = from_environ(request.environ, path, core.client_address.wsgi)
        reply = core.gate.challenge(method, path, value)
        if isinstance(reply, Redeem):  # the private-token path
            return _reply(core._drive(core.gate.redeem(value), request.environ, value))
        return None if reply is None else _reply(reply)
    if isinstance(found, Denial):
        return _refuse(core, found)
    return _judged(core, found)


@overload
def captcha_required(view: F) -> F: ...
@overload
def captcha_required(
    view: None = None,
    *,
    provider: str | None = None,
    fail_open: bool | None = None,
    clearance: bool | str = False,
    methods: tuple[str, ...] | frozenset[str] = DEFAULT_METHODS,
) -> Callable[[F], F]: ...


def captcha_required(
    view: F | None = None,
    *,
    provider: str | None = None,
    fail_open: bool | None = None,
    clearance: bool | str = False,
    methods: tuple[str, ...] | frozenset[str] = DEFAULT_METHODS,
) -> F | Callable[[F], F]:
    """Demand a captcha on this view for ``methods`` (default POST, PUT, PATCH, DELETE); other
    methods run it with ``g.captcha`` None. Options are a ``Rule``'s; ``provider`` is a name
    from ``providers=``."""

    def decorate(function: F) -> F:
        label = f"{function.__module__}.{function.__qualname__}"
        options = {
            "provider": provider,
            "fail_open": fail_open,
            "clearance": clearance,
            "methods": methods,
        }

        @functools.wraps(function)
        def protected(*args: Any, **kwargs: Any) -> Any:
            core = cast(_Core, CaptchaGuard.core())
            route = core.view_routes.get(function)
            if route is None:
                route = view_route(core.gate, label, **options)  # type: ignore[arg-type]
                core.view_routes[function] = route
            if not is_judged(request.method, route):
                g.captcha = g.get("captcha")
                return function(*args, **kwargs)
            refusal = _judged(core, route)
            if refusal is not None:
                return refusal
            return function(*args, **kwargs)

        return cast(F, protected)

    return decorate(view) if view is not None else decorate


def _judged(core: _Core, route: Route) -> Any:
    """Judge the current request on ``route``: None to go on (``g.captcha`` set), or the
    refusal to return."""
    earlier = g.get("captcha") or request.environ.get(VERDICT_KEY)
    if isinstance(earlier, Verdict):
        decision: Any = reused(earlier, route)
    else:
        value = from_environ(request.environ, request.path, core.client_address.wsgi)
        limits = core.gate.parse_limits
        value.read_fields = lambda: _fields(limits)
        decision = judge(core, route, value)
    if type(decision) is Pass:
        g.captcha = decision.verdict
        if decision.headers:
            headers = decision.headers

            from flask import after_this_request

            @after_this_request
            def add(response: FlaskResponse) -> FlaskResponse:
                for name, text in headers:
                    response.headers.add(name, text)
                return response

        return None
    assert type(decision) is Deny
    return _refuse(core, decision.denial)


def _fields(limits: Any) -> Fields:
    """The fields as Flask parsed them for the view."""
    kind = media_type(request.content_type or "")
    try:
        form = list(request.form.items(multi=True))
        document = None
        if request.is_json:
            document = request.get_json(silent=False)
    except RecursionError:  # Flask's JSON loading catches ValueError only
        raise BodyError("JSON body nested too deep", code="json_too_deep") from None
    except HTTPException as exc:
        if exc.code == 413:
            raise BodyError(
                "body over the app's limits", status=413, code="body_too_large"
            ) from None
        reason = "body is not valid JSON" if request.is_json else "body could not be read"
        raise BodyError(reason) from None
    opaque = None
    if kind != "multipart/form-data":
        opaque = _opaque(request.content_type or "", request.get_data(cache=True))
    return read_fields(
        form=form,
        document=document,
        query=request.args.items(multi=True),
        header=request.headers.get("X-Captcha"),
        opaque=opaque,
        limits=limits,
    )


def _refuse(core: WSGICaptchaGuard, denial: Denial) -> Any:
    if core.on_reject is not None:
        answer = make_response(core.on_reject(denial))  # type: ignore[call-arg]
        answer.headers["Cache-Control"] = "no-store"  # a refusal is about this request only
        return answer
    as_json = wants_json(request.headers.get("Accept", ""), request.content_type or "")
    headers, body = render(
        denial,
        as_json=as_json,
        request_headers={name.lower(): value for name, value in request.headers.items()},
        scheme=request.scheme,
    )
    # PEP 3333 leaves hop-by-hop headers (connection: close) to the server.
    kept = [(k, v) for k, v in headers if k != "connection"]
    return FlaskResponse(body, status=denial.status, headers=kept)


def _reply(reply: Reply) -> FlaskResponse:
    return FlaskResponse(reply.body, status=reply.status, headers=reply.headers)


__all__ = ["CaptchaGuard", "FlaskRejectHandler", "captcha_required"]
