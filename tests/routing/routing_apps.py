"""Real framework apps for the routing differential (tests/routing/test_routing_differential.py).

Each framework serves the same protected views, in its own route syntax, and each view
answers ``{"view": NAME, "verdict": OUTCOME or null}``: a response with "view" in it proves
the framework's router ran that view. ``gated(...)`` wraps an app in the front door with
``RULES`` and a provider that refuses every request (no captcha fields are ever sent, so
GeeTest's local shape check says 403; its endpoint is never called), so a request the gate
matched shows as a 403 ``captcha_rejected`` and one it refused as a 400 ``bad_path``.

Importable without Django configured; ``django_setup()`` configures it once per process
(tests/routing/routing_zoo.py runs these apps in a subprocess of their own, so a Django settings
object here never meets another test's).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

# FastAPI reads view annotations by name from this module's globals (postponed annotations).
from fastapi import Request

from captcha_guard import CaptchaGuard, GeeTest, Rule, WSGICaptchaGuard

#: The gate's rules: the same table in front of every framework, in Starlette syntax.
RULES = [
    Rule("/login"),
    Rule("/posts/{id:int}/comments"),
    # The compiled-regex escape hatch, written as wide as the widest router (README): `*`,
    # not `+`, since Falcon's `{name}` takes an empty segment (`POST /reports/` runs it).
    Rule(re.compile(r"/reports/[^/]*")),
    Rule("/legacy"),
    Rule("/users/{name}/follow"),  # a `{name}` segment inside the path
    # Django REST framework's DefaultRouter: an @action on a ViewSet, /accounts/login/.
    Rule("/accounts/login"),
]

#: Where each framework's views live: (view name, a request path that reaches it).
VIEWS = {
    "login": "/login",
    "comments": "/posts/1/comments",
    "reports": "/reports/x",
    "legacy": "/legacy/",  # Django only: re_path(r"^legacy/$"), with the `$` users write
    "follow": "/users/x/follow",
    "accounts-login": "/accounts/login/",  # Django REST framework only
}


def provider() -> GeeTest:
    return GeeTest("0" * 32, "routing-differential", endpoint="http://127.0.0.1:9/validate")


def gated(app: Any, door: str) -> Any:
    if door == "asgi":
        return CaptchaGuard(app, rules=RULES, provider=provider())
    return WSGICaptchaGuard(app, rules=RULES, provider=provider())


def _answer(view: str, verdict: Any) -> dict[str, Any]:
    return {"view": view, "verdict": verdict.outcome.value if verdict is not None else None}


# ---------------------------------------------------------------- Starlette


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def view(name: str) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            verdict = request.scope.get("state", {}).get("captcha")
            return JSONResponse(_answer(name, verdict))

        return endpoint

    return Starlette(
        routes=[
            Route("/login", view("login"), methods=["POST"]),
            Route("/posts/{id:int}/comments", view("comments"), methods=["POST"]),
            Route("/reports/{name}", view("reports"), methods=["POST"]),
            Route("/users/{name}/follow", view("follow"), methods=["POST"]),
        ]
    )


# ---------------------------------------------------------------- FastAPI


def fastapi_app(root_path: str = "") -> Any:
    import warnings

    from fastapi import FastAPI

    with warnings.catch_warnings():  # root_path= is deprecated, and still routes so
        warnings.simplefilter("ignore")
        app = FastAPI(root_path=root_path) if root_path else FastAPI()

    def verdict_of(request: Request) -> Any:
        return request.scope.get("state", {}).get("captcha")

    @app.post("/login")
    async def login(request: Request) -> dict[str, Any]:
        return _answer("login", verdict_of(request))

    # The FastAPI way: `{id}` in the path, the type from the annotation (pydantic, lax).
    @app.post("/posts/{id}/comments")
    async def comments(id: int, request: Request) -> dict[str, Any]:
        return _answer("comments", verdict_of(request))

    @app.post("/reports/{name}")
    async def reports(name: str, request: Request) -> dict[str, Any]:
        return _answer("reports", verdict_of(request))

    @app.post("/users/{name}/follow")
    async def follow(name: str, request: Request) -> dict[str, Any]:
        return _answer("follow", verdict_of(request))

    return app


# ---------------------------------------------------------------- Flask


def flask_app() -> Any:
    from flask import Flask, jsonify, request

    app = Flask("routing_flask")

    def verdict_of() -> Any:
        return request.environ.get("captcha_guard.verdict")

    @app.post("/login")
    def login() -> Any:
        return jsonify(_answer("login", verdict_of()))

    @app.post("/posts/<int:id>/comments")
    def comments(id: int) -> Any:
        return jsonify(_answer("comments", verdict_of()))

    @app.post("/reports/<name>")
    def reports(name: str) -> Any:
        return jsonify(_answer("reports", verdict_of()))

    @app.post("/users/<name>/follow")
    def follow(name: str) -> Any:
        return jsonify(_answer("follow", verdict_of()))

    return app


# ---------------------------------------------------------------- Django

urlpatterns: list[Any] = []


def django_setup() -> None:
    """Configure Django for this process (ROOT_URLCONF is this module), once."""
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="routing-differential",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        # One Django per process: the Django REST framework and django-ninja apps are the
        # same Django with another URLconf, chosen per request by routing_urlconf().
        MIDDLEWARE=[f"{__name__}.routing_urlconf"],
        INSTALLED_APPS=[],
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
        FORCE_SCRIPT_NAME=os.environ.get("ROUTING_FORCE_SCRIPT_NAME") or None,
    )
    import django
    from django.http import HttpRequest, HttpResponse
    from django.urls import path, re_path

    django.setup()

    def view(name: str) -> Any:
        def endpoint(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method != "POST":
                return HttpResponse(status=405)
            scope = getattr(request, "scope", None)
            if scope is not None:
                verdict = scope.get("state", {}).get("captcha")
            else:
                verdict = request.META.get("captcha_guard.verdict")
            body = json.dumps(_answer(name, verdict))
            return HttpResponse(body, content_type="application/json")

        return endpoint

    urlpatterns[:] = [
        path("login", view("login")),
        path("posts/<int:id>/comments", view("comments")),
        path("reports/<str:name>", view("reports")),
        path("users/<str:name>/follow", view("follow")),
        re_path(r"^legacy/$", view("legacy")),
    ]


def _django_verdict(request: Any) -> Any:
    scope = getattr(request, "scope", None)
    if scope is not None:
        return scope.get("state", {}).get("captcha")
    return request.META.get("captcha_guard.verdict")


#: The URLconf key in the WSGI environ / ASGI scope that routing_urlconf() reads.
URLCONF_KEY = "routing.urlconf"


def routing_urlconf(get_response: Any) -> Any:
    """Django middleware: the URLconf the wrapping app asked for (``with_urlconf``)."""

    def middleware(request: Any) -> Any:
        scope = getattr(request, "scope", None)
        chosen = (scope or {}).get(URLCONF_KEY) or request.META.get(URLCONF_KEY)
        if chosen:
            request.urlconf = chosen
        return get_response(request)

    return middleware


def with_urlconf(app: Any, door: str, urlconf: str) -> Any:
    if door == "wsgi":

        def wsgi(environ: Any, start_response: Any) -> Any:
            environ[URLCONF_KEY] = urlconf
            return app(environ, start_response)

        return wsgi

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, URLCONF_KEY: urlconf}, receive, send)

    return asgi


def django_asgi(urlconf: str = "") -> Any:
    django_setup()
    from django.core.asgi import get_asgi_application

    app = get_asgi_application()
    return with_urlconf(app, "asgi", urlconf) if urlconf else app


def django_wsgi(urlconf: str = "") -> Any:
    django_setup()
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    return with_urlconf(app, "wsgi", urlconf) if urlconf else app


# ---------------------------------------------------------------- Falcon


def _falcon_routes(app: Any, resource: Any) -> None:
    # Falcon's own converter syntax; `{name}` is one non-empty segment, as Starlette's.
    app.add_route("/login", resource("login"))
    app.add_route("/posts/{id:int}/comments", resource("comments"))
    app.add_route("/reports/{name}", resource("reports"))
    app.add_route("/users/{name}/follow", resource("follow"))


def falcon_wsgi() -> Any:
    import falcon

    class View:
        def __init__(self, name: str) -> None:
            self.name = name

        def on_post(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
            resp.media = _answer(self.name, req.env.get("captcha_guard.verdict"))

    app = falcon.App()  # strip_url_path_trailing_slash: False, Falcon 4's default
    _falcon_routes(app, View)
    return app


def falcon_asgi() -> Any:
    import falcon.asgi

    class View:
        def __init__(self, name: str) -> None:
            self.name = name

        async def on_post(
            self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: Any
        ) -> None:
            resp.media = _answer(self.name, req.scope.get("state", {}).get("captcha"))

    app = falcon.asgi.App()
    _falcon_routes(app, View)
    return app


# ---------------------------------------------------------------- Litestar


def litestar_app() -> Any:
    from litestar import Litestar, post
    from litestar.types import Scope

    def view(name: str, path: str) -> Any:
        # status_code=200: Litestar answers a POST 201 by default. The scope, not a Request:
        # this module's `Request` is FastAPI's, and Litestar resolves annotations by name.
        async def endpoint(scope: Scope) -> dict[str, Any]:
            return _answer(name, scope.get("state", {}).get("captcha"))

        endpoint.__annotations__ = {"scope": Scope, "return": dict[str, Any]}
        return post(path, status_code=200, name=name)(endpoint)

    return Litestar(
        route_handlers=[
            view("login", "/login"),
            view("comments", "/posts/{id:int}/comments"),
            view("reports", "/reports/{name:str}"),
            view("follow", "/users/{name:str}/follow"),
        ],
        logging_config=None,
    )


# ---------------------------------------------------------------- Quart


def quart_app() -> Any:
    from quart import Quart, jsonify, request

    app = Quart("routing_quart")

    def verdict_of() -> Any:
        return request.scope.get("state", {}).get("captcha")

    # Werkzeug's routing, as Flask's.
    @app.post("/login")
    async def login() -> Any:
        return jsonify(_answer("login", verdict_of()))

    @app.post("/posts/<int:id>/comments")
    async def comments(id: int) -> Any:
        return jsonify(_answer("comments", verdict_of()))

    @app.post("/reports/<name>")
    async def reports(name: str) -> Any:
        return jsonify(_answer("reports", verdict_of()))

    @app.post("/users/<name>/follow")
    async def follow(name: str) -> Any:
        return jsonify(_answer("follow", verdict_of()))

    return app


# ---------------------------------------------------------------- BlackSheep


def blacksheep_app() -> Any:
    from blacksheep import Application
    from blacksheep import Request as BSRequest
    from blacksheep import json as bs_json
    from blacksheep.server.routing import Router

    # Case-insensitive routes, matched on the undecoded raw_path. A router of its own: by
    # default every Application in a process shares BlackSheep's module router, and each
    # new one resets it, so the zoo's apps raced (RouteDuplicate at one's start-up).
    app = Application(router=Router(), show_error_details=False)

    def view(name: str) -> Any:
        async def endpoint(request: BSRequest) -> Any:
            return bs_json(_answer(name, request.scope.get("state", {}).get("captcha")))

        # Resolved, as Litestar's above: BlackSheep reads the hints to bind the request.
        endpoint.__annotations__ = {"request": BSRequest, "return": Any}
        return endpoint

    app.router.add_post("/login", view("login"))
    app.router.add_post("/posts/{int:id}/comments", view("comments"))
    app.router.add_post("/reports/{name}", view("reports"))
    app.router.add_post("/users/{name}/follow", view("follow"))
    return app


# ---------------------------------------------------------------- Sanic


def sanic_app() -> Any:
    from sanic import Sanic
    from sanic.response import json as sanic_json

    # Sanic routes the undecoded raw_path under ASGI too.
    app = Sanic(f"routing_sanic_{os.getpid()}_{len(Sanic._app_registry)}")
    app.config.TOUCHUP = False

    def view(name: str) -> Any:
        async def endpoint(request: Any, **params: Any) -> Any:
            return sanic_json(_answer(name, request.scope.get("state", {}).get("captcha")))

        endpoint.__name__ = name
        return endpoint

    app.add_route(view("login"), "/login", methods=["POST"])
    app.add_route(view("comments"), "/posts/<id:int>/comments", methods=["POST"])
    app.add_route(view("reports"), "/reports/<name>", methods=["POST"])
    app.add_route(view("follow"), "/users/<name>/follow", methods=["POST"])
    return app


#: name -> (door, factory)
FRAMEWORKS: dict[str, tuple[str, Any]] = {
    "starlette": ("asgi", starlette_app),
    "fastapi": ("asgi", fastapi_app),
    "django-asgi": ("asgi", django_asgi),
    "fastapi-root": ("asgi", lambda: fastapi_app(root_path="/app")),
    "flask": ("wsgi", flask_app),
    "django-wsgi": ("wsgi", django_wsgi),
    "falcon-wsgi": ("wsgi", falcon_wsgi),
    "falcon-asgi": ("asgi", falcon_asgi),
    "litestar": ("asgi", litestar_app),
    "drf-asgi": ("asgi", lambda: django_asgi("tests.routing.routing_drf")),
    "drf-wsgi": ("wsgi", lambda: django_wsgi("tests.routing.routing_drf")),
    "ninja-asgi": ("asgi", lambda: django_asgi("tests.routing.routing_ninja")),
    "quart": ("asgi", quart_app),
    "blacksheep": ("asgi", blacksheep_app),
    "sanic": ("asgi", sanic_app),
}


def build(framework: str, gate: bool) -> Any:
    door, factory = FRAMEWORKS[framework]
    app = factory()
    return gated(app, door) if gate else app


def from_env() -> Any:
    """For gunicorn: ``tests.routing.routing_apps:from_env()``, the app named by ROUTING_APP
    (``flask``, ``django-wsgi``) and ROUTING_GATED (``1`` or ``0``)."""
    return build(os.environ["ROUTING_APP"], os.environ.get("ROUTING_GATED") == "1")
