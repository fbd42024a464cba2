"""FastAPI: a dependency that judges the operation FastAPI's router chose.

    from captcha_guard.fastapi import Captcha

    captcha = Captcha(provider=GeeTest(...), providers={"turnstile": Turnstile(...)})

    @app.post("/signup")
    async def signup(body: Signup, verdict: Verdict = Depends(captcha)): ...

    @app.post("/api/pay", dependencies=[Depends(captcha.required(provider="turnstile",
                                                                 fail_open=False))])

``Captcha`` takes the door's keywords. The dependency returns the ``Verdict`` (None for a
method it does not judge) and refuses with an ``HTTPException`` carrying the gate's status,
its stable code (``detail={"error": ..., "reason": ...}``) and ``Cache-Control: no-store``.
It reads the fields as FastAPI reads the body for the operation (``request.form()`` or
``request.json()``, both cached on the request, so a Pydantic body model beside it parses the
same document), from the query, or from the ``X-Captcha`` header, which the operation's
OpenAPI schema documents. Given ``rules=``, it judges by path instead, as the doors do (a
dependency for the whole app: ``FastAPI(dependencies=[Depends(captcha)])``).
"""

from __future__ import annotations

import email.message
import inspect
import sys
from collections.abc import Iterable
from typing import Any, cast

from fastapi import HTTPException, Request, Response
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.security.base import SecurityBase
from starlette.formparsers import MultiPartException

from ._adapter import ajudge, is_judged, read_fields, reused, view_route
from ._effects import Deny, Pass
from ._fields import BodyError, Fields, _opaque, media_type
from ._request import from_scope
from ._responses import Denial
from ._route import Route
from ._rules import DEFAULT_METHODS
from ._verdict import Verdict
from .asgi import CaptchaGuard

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class _Core(CaptchaGuard):
    """The ASGI door's configuration and clients, with no app to wrap."""

    def __init__(self, app: Any = None, **keywords: Any) -> None:
        super().__init__(app, **keywords)


class Captcha(SecurityBase):
    """The dependency. ``Captcha(**keywords)``: the door's keywords (``provider=``,
    ``providers=``, ``state=``, ``clearance=``, ``event_hooks=``, ...).

    A FastAPI security scheme (an API key in the ``X-Captcha`` header), so the operation's
    OpenAPI schema and ``/docs`` say what a client must send, without a parameter for FastAPI
    to parse on every call."""

    def __init__(self, **keywords: Any) -> None:
        self._init(_Core(**keywords), {}, rules=True)

    @classmethod
    def from_file(cls, path: str, **overrides: Any) -> Captcha:
        """Configured by a TOML file, as ``CaptchaGuard.from_file``."""
        made = cls.__new__(cls)
        made._init(_Core.from_file(cast(Any, None), path, **overrides), {}, rules=True)
        return made

    def _init(self, core: _Core, options: dict[str, Any], *, rules: bool = False) -> None:
        self.core = core
        self._by_rules = rules and bool(core.gate.routes)
        self._options = options
        view_route(core.gate, "fastapi", **options)  # a bad option fails now, not per request
        #: One route per operation (FastAPI's route object): its label in events and metrics,
        #: and its own clearance scope.
        self._routes: dict[int, Route] = {}
        self.__signature__ = _signature(core)
        self.model = APIKey(
            **{"in": APIKeyIn.header},  # type: ignore[arg-type]
            name="X-Captcha",
            description=_description(core),
        )
        self.scheme_name = "captcha"

    def required(
        self,
        *,
        provider: str | None = None,
        fail_open: bool | None = None,
        clearance: bool | str = False,
        methods: Iterable[str] = DEFAULT_METHODS,
    ) -> Captcha:
        """A dependency with a rule's options (``provider`` a name from ``providers=``) that
        shares this one's configuration, state and clients."""
        options = {
            "provider": provider,
            "fail_open": fail_open,
            "clearance": clearance,
            "methods": tuple(methods),
        }
        made = Captcha.__new__(Captcha)
        made._init(self.core, options)
        return made

    def _route_for(self, operation: Any) -> Route:
        # By id: FastAPI's routes are not hashable, and live as long as the app.
        route = self._routes.get(id(operation))
        if route is None:
            path = getattr(operation, "path", None) or "fastapi"
            route = view_route(self.core.gate, path, **self._options)
            self._routes[id(operation)] = route
        return route

    async def aclose(self) -> None:
        """Close the HTTP client and state this dependency made (in the app's lifespan)."""
        await self.core.aclose()

    async def __call__(self, request: Request, response: Response | None = None) -> Verdict | None:
        core = self.core
        route = self._route_for(request.scope.get("route"))
        state = request.scope.setdefault("state", {})
        earlier = state.get("captcha")
        method = request.method
        if self._by_rules:
            scope = request.scope
            found = core.gate.route(
                method, scope["path"], scope.get("root_path", ""), scope.get("raw_path")
            )
            if found is None:
                return earlier if isinstance(earlier, Verdict) else None
            if isinstance(found, Denial):
                raise _refusal(found)
            route = found
        elif not is_judged(method, route):
            return earlier if isinstance(earlier, Verdict) else None
        if isinstance(earlier, Verdict):  # a door or another dependency judged it already
            decision: Any = reused(earlier, route)
        else:
            value = from_scope(request.scope, request.scope["path"], core.client_address.asgi)
            fields = await _fields(request, core.gate.parse_limits)
            value.read_fields = fields.get
            decision = await ajudge(core, route, value)
        if type(decision) is Pass:
            state["captcha"] = decision.verdict
            if response is not None:  # a clearance cookie (see _signature)
                for name, text in decision.headers:
                    response.headers.append(name, text)
            return decision.verdict
        assert type(decision) is Deny
        raise _refusal(decision.denial)


class _Read:
    """The fields read ahead (the reading is async, the flow's is not), or the error."""

    def __init__(self, fields: Fields | None, error: BodyError | None) -> None:
        self.fields, self.error = fields, error

    def get(self) -> Fields:
        if self.error is not None:
            raise self.error
        assert self.fields is not None
        return self.fields


async def _fields(request: Request, limits: Any) -> _Read:
    """The fields as FastAPI parses the body for an operation: a form by ``request.form()``,
    JSON by ``request.json()`` when the media type says JSON or there is none."""
    content_type = request.headers.get("content-type", "")
    kind = media_type(content_type)
    form: list[tuple[str, object]] = []
    document = None
    opaque = None
    try:
        if kind in _FORMS:
            # FastAPI parsed it already for Form parameters (the stream is spent then, and
            # the parsed form is what the operation reads): the cached form, or a parse now.
            parsed = await request.form()
            form = list(parsed.multi_items())
        else:
            body = await request.body()
            if body and _fastapi_json(content_type):
                try:
                    document = await request.json()
                except ValueError:
                    raise BodyError("body is not valid JSON") from None
                except RecursionError:
                    raise BodyError("JSON body nested too deep", code="json_too_deep") from None
            opaque = _opaque(content_type, body)
        fields = read_fields(
            form=form,
            document=document,
            query=request.query_params.multi_items(),
            header=_header(request),
            opaque=opaque,
            limits=limits,
        )
    except BodyError as error:
        return _Read(None, error)
    except MultiPartException:  # Starlette's form parser refusing the body
        return _Read(None, BodyError("body could not be read as the operation reads it"))
    return _Read(fields, None)


def _fastapi_json(content_type: str) -> bool:
    # FastAPI's own test: no content type, or application/json or application/*+json.
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _header(request: Request) -> str | None:
    # A repeated header counts every time, as the doors count it: "&" joins the fields.
    values = request.headers.getlist("x-captcha")
    return "&".join(values) if values else None


def _refusal(denial: Denial) -> HTTPException:
    headers = {"Cache-Control": "no-store"}
    if denial.status in (400, 408, 413):
        headers["Connection"] = "close"
    return HTTPException(
        status_code=denial.status,
        detail={"error": denial.error, "reason": denial.reason},
        headers=headers,
    )


def _description(core: _Core) -> str:
    """What a client must send, for this configuration's providers."""
    names = sorted(
        {
            name
            for provider in (core.gate.default_provider, *core.gate.named_providers.values())
            if provider is not None
            for name in _client_fields(provider)
        }
    )
    listed = ", ".join(names) if names else "the provider's fields"
    return (
        f"The captcha fields ({listed}), urlencoded (`name=value&name=value`) in the "
        "X-Captcha header; or in the body instead: as form fields, or in a JSON object at the "
        'top level or under "captcha".'
    )


def _signature(core: _Core) -> inspect.Signature:
    """``__call__``'s signature as FastAPI should see it: the request, and the response only
    where a clearance cookie may be set on it (each parameter costs FastAPI work per call)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter("request", kind, annotation=Request)]
    if core.gate.clearance is not None:
        parameters.append(inspect.Parameter("response", kind, annotation=Response))
    return inspect.Signature(parameters, return_annotation=Verdict | None)


def _client_fields(provider: Any) -> tuple[str, ...]:
    """The field names a provider reads from the client, where it says."""
    for attribute in ("client_fields", "CLIENT_FIELDS", "field", "session_field"):
        value = getattr(provider, attribute, None)
        if isinstance(value, str):
            return (value,)
        if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            return value
    # The module that defines the provider's check (a class's __module__ names where it is
    # exported from, which may be the package).
    module = sys.modules.get(getattr(type(provider).check, "__module__", ""))
    value = getattr(module, "CLIENT_FIELDS", None)
    if isinstance(value, tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


__all__ = ["Captcha"]
