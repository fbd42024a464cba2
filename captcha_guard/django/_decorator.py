"""``captcha_required``: the view the router chose is judged, wherever it is routed.

Function views (sync and async), class-based views (the class is returned as a subclass whose
``dispatch`` judges first) and Django REST framework views and viewsets (judged in ``initial``,
after authentication, permissions and throttling, from DRF's own ``request.data``, so what the
provider is asked about is what the serializer will read). A refusal is the gate's answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest

from .._adapter import read_fields, view_route
from .._effects import Decision, Pass
from .._fields import BodyError
from .._route import Route
from .._rules import DEFAULT_METHODS
from ._core import DjangoGuard, guard
from ._judge import adecide, decide, judged
from ._respond import add_headers, refusal

V = TypeVar("V")


@overload
def captcha_required(view: V) -> V: ...
@overload
def captcha_required(
    view: None = None,
    *,
    provider: str | None = None,
    fail_open: bool | None = None,
    clearance: bool | str = False,
    methods: Any = DEFAULT_METHODS,
) -> Callable[[V], V]: ...


def captcha_required(
    view: Any = None,
    *,
    provider: str | None = None,
    fail_open: bool | None = None,
    clearance: bool | str = False,
    methods: Any = DEFAULT_METHODS,
) -> Any:
    """Demand a captcha on this view for ``methods`` (default POST, PUT, PATCH, DELETE); other
    methods run it with ``request.captcha`` None. The options are a ``Rule``'s; ``provider``
    is a name from ``providers=`` in ``settings.CAPTCHA_GUARD``."""
    options = {"provider": provider, "fail_open": fail_open, "clearance": clearance}
    options["methods"] = methods

    def decorate(target: Any) -> Any:
        drf = _drf_view_class(target)
        if drf is not None:  # an @api_view function or a DRF as_view() result
            protected = _protect_drf(drf, options)
            actions = getattr(target, "actions", None)
            initkwargs = getattr(target, "initkwargs", {})
            if actions is not None:
                return protected.as_view(actions, **initkwargs)  # type: ignore[attr-defined]
            return protected.as_view(**initkwargs)  # type: ignore[attr-defined]
        if isinstance(target, type):
            if _is_drf(target):
                return _protect_drf(target, options)
            return _protect_class(target, options)
        return _protect_function(target, options)

    return decorate(view) if view is not None else decorate


class _Routes:
    """One view's route per guard (a test that changes the setting builds a new guard)."""

    def __init__(self, label: str, options: dict[str, Any]) -> None:
        self.label = label
        self.options = options

    def get(self) -> tuple[DjangoGuard, Route]:
        core = guard()
        route = core.view_routes.get(self)
        if route is None:
            route = view_route(core.gate, self.label, **self.options)
            core.view_routes[self] = route
        return core, route


def _label(target: Any) -> str:
    return f"{target.__module__}.{getattr(target, '__qualname__', repr(target))}"


def _protect_function(view: Callable[..., Any], options: dict[str, Any]) -> Any:
    routes = _Routes(_label(view), options)
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def aprotected(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            core, route = routes.get()
            if not judged(request.method or "GET", route):
                _unjudged(request)
                return await view(request, *args, **kwargs)
            decision = await adecide(core, route, request)
            if type(decision) is not Pass:
                return refusal(request, decision.denial, core.on_reject)  # type: ignore[union-attr]
            request.captcha = decision.verdict
            return _adding(await view(request, *args, **kwargs), decision)

        return markcoroutinefunction(aprotected)

    @functools.wraps(view)
    def protected(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        core, route = routes.get()
        if not judged(request.method or "GET", route):
            _unjudged(request)
            return view(request, *args, **kwargs)
        decision = decide(core, route, request)
        if type(decision) is not Pass:
            return refusal(request, decision.denial, core.on_reject)  # type: ignore[union-attr]
        request.captcha = decision.verdict
        return _adding(view(request, *args, **kwargs), decision)

    return protected


def _unjudged(request: Any) -> None:
    if not hasattr(request, "captcha"):
        request.captcha = None


def _adding(response: Any, decision: Decision) -> Any:
    if type(decision) is Pass and decision.headers:
        add_headers(response, decision.headers)
    return response


def _protect_class(cls: type, options: dict[str, Any]) -> type:
    routes = _Routes(_label(cls), options)
    parent_dispatch = cast(Any, cls).dispatch
    if getattr(cls, "view_is_async", False):

        async def adispatch(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            core, route = routes.get()
            if not judged(request.method or "GET", route):
                _unjudged(request)
                return await parent_dispatch(self, request, *args, **kwargs)
            decision = await adecide(core, route, request)
            if type(decision) is not Pass:
                return refusal(request, decision.denial, core.on_reject)  # type: ignore[union-attr]
            request.captcha = decision.verdict
            return _adding(await parent_dispatch(self, request, *args, **kwargs), decision)

        body: dict[str, Any] = {"dispatch": adispatch}
    else:

        def dispatch(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            core, route = routes.get()
            if not judged(request.method or "GET", route):
                _unjudged(request)
                return parent_dispatch(self, request, *args, **kwargs)
            decision = decide(core, route, request)
            if type(decision) is not Pass:
                return refusal(request, decision.denial, core.on_reject)  # type: ignore[union-attr]
            request.captcha = decision.verdict
            return _adding(parent_dispatch(self, request, *args, **kwargs), decision)

        body = {"dispatch": dispatch}
    body["__module__"] = cls.__module__
    body["__qualname__"] = cls.__qualname__
    body["__doc__"] = cls.__doc__
    return type(cls.__name__, (cls,), body)


# Django REST framework, imported only when the site uses it.


def _is_drf(cls: type) -> bool:
    import sys

    views = sys.modules.get("rest_framework.views")
    return views is not None and issubclass(cls, views.APIView)


def _drf_view_class(target: Any) -> type | None:
    cls = getattr(target, "cls", None)
    if callable(target) and isinstance(cls, type) and _is_drf(cls):
        return cls
    return None


class _Refused(Exception):
    def __init__(self, response: Any) -> None:
        super().__init__("captcha refused")
        self.response = response


def _protect_drf(cls: type, options: dict[str, Any]) -> type:
    routes = _Routes(_label(cls), options)
    parent: Any = cls

    def initial(self: Any, request: Any, *args: Any, **kwargs: Any) -> None:
        parent.initial(self, request, *args, **kwargs)  # authentication, permissions, throttles
        django_request = request._request
        core, route = routes.get()
        if not judged(request.method or "GET", route):
            _unjudged(django_request)
            request.captcha = django_request.captcha
            return
        decision = _decide_drf(core, route, request)
        if type(decision) is not Pass:
            denial = decision.denial  # type: ignore[union-attr]
            raise _Refused(refusal(django_request, denial, core.on_reject))
        django_request.captcha = request.captcha = decision.verdict
        self._captcha_headers = decision.headers

    def handle_exception(self: Any, exc: Exception) -> Any:
        if isinstance(exc, _Refused):
            return exc.response
        return parent.handle_exception(self, exc)

    def finalize_response(self: Any, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = parent.finalize_response(self, request, response, *args, **kwargs)
        headers = getattr(self, "_captcha_headers", ())
        if headers:
            add_headers(response, headers)
        return response

    body = {
        "initial": initial,
        "handle_exception": handle_exception,
        "finalize_response": finalize_response,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    return type(cls.__name__, (cls,), body)


def _decide_drf(core: DjangoGuard, route: Route, request: Any) -> Decision:
    from .._adapter import judge, reused
    from ._judge import client_request, earlier_verdict

    earlier = earlier_verdict(request._request)
    if earlier is not None:
        return reused(earlier, route)
    value = client_request(core, request._request)
    limits = core.gate.parse_limits

    def drf_fields() -> Any:
        try:
            data = request.data  # DRF's parsers: what the serializer will read
        except RecursionError:  # DRF's JSON parser catches ValueError only
            raise BodyError("JSON body nested too deep", code="json_too_deep") from None
        lists = getattr(data, "lists", None)
        form = [(k, v) for k, vs in lists() for v in vs] if lists is not None else []
        document = None if lists is not None else data
        query = request.query_params
        return read_fields(
            form=form,
            document=document,
            query=[(k, v) for k, vs in query.lists() for v in vs],
            header=request.headers.get("X-Captcha"),
            limits=limits,
        )

    value.read_fields = drf_fields
    return judge(core, route, value)


__all__ = ["captcha_required"]
