"""Judging a Django request: the fields as Django parsed them, the verdict of a request judged
already, and the flow run sync (WSGI views) or from a coroutine (async views).

Async views hop to a worker thread for the provider call and for a shared store's operation:
an async view may run on a fresh event loop per request (``async_to_sync`` under WSGI), where
a pooled async client could not live, while the door's urllib3 pool lives anywhere.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.http.request import RawPostDataException

from .._adapter import is_judged, judge, read_fields, reused
from .._effects import CallProblem, Decision, ProviderCall
from .._fields import (
    DEFAULT_LIMITS,
    BodyError,
    Fields,
    ParseLimits,
    _opaque,
    is_json,
    media_type,
    parse_json,
)
from .._memory import MemoryState
from .._perform import arun_flow, run_flow
from .._request import ClientRequest, from_environ
from .._responses import Reply
from .._route import Route
from .._verdict import Verdict
from ..providers._wire import ProviderResponse
from ..wsgi import VERDICT_KEY
from ._core import DjangoGuard

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def earlier_verdict(request: HttpRequest) -> Verdict | None:
    """A verdict a door in front or this adapter's middleware put on the request."""
    seen = getattr(request, "captcha", None)
    if isinstance(seen, Verdict):
        return seen
    seen = request.META.get(VERDICT_KEY)
    if isinstance(seen, Verdict):
        return seen
    scope = getattr(request, "scope", None)  # Django's ASGI request
    if isinstance(scope, dict):
        seen = (scope.get("state") or {}).get("captcha")
        if isinstance(seen, Verdict):
            return seen
    return None


def client_request(core: DjangoGuard, request: HttpRequest) -> ClientRequest:
    value = from_environ(request.META, request.path_info, core.client_address.wsgi)
    limits = core.gate.parse_limits
    value.read_fields = lambda: django_fields(request, limits)
    return value


def django_fields(request: HttpRequest, limits: ParseLimits | None) -> Fields:
    """The fields as Django parsed them for the view: ``request.POST`` (or the same parsers
    for a PUT, PATCH or DELETE form), a JSON body as ``json.loads(request.body)`` reads it,
    ``request.GET`` and the ``X-Captcha`` header."""
    content_type = request.META.get("CONTENT_TYPE", "")
    kind = media_type(content_type)
    form: list[tuple[str, object]] = []
    opaque = None
    try:
        if kind in _FORMS:
            data = request.POST if request.method == "POST" else _other_form(request, kind)
            form = [(name, value) for name, values in data.lists() for value in values]
        elif is_json(kind):
            form = (
                parse_json(request.body, limits or DEFAULT_LIMITS) if request.body.strip() else []
            )
        if kind != "multipart/form-data":
            opaque = _opaque(content_type, request.body)
    except RequestDataTooBig:
        raise BodyError("body over the app's limits", status=413, code="body_too_large") from None
    except (
        BadRequest,
        SuspiciousOperation,
        MultiPartParserError,
        RawPostDataException,
        ValueError,
    ) as exc:
        if isinstance(exc, BodyError):
            raise
        raise BodyError("body could not be read as the view reads it") from None
    return read_fields(
        form=form,
        query=[(name, value) for name, values in request.GET.lists() for value in values],
        header=request.headers.get("X-Captcha"),
        opaque=opaque,
        limits=limits,
    )


def _other_form(request: HttpRequest, kind: str) -> QueryDict:
    # Django parses request.POST for POST only; a view taking a form by PUT parses the body
    # with the same parsers, which is what the provider must be asked about.
    if kind == "multipart/form-data":
        data, _files = request.parse_file_upload(request.META, BytesIO(request.body))
        return data
    return QueryDict(request.body, encoding=request.encoding)


def decide(core: DjangoGuard, route: Route, request: HttpRequest) -> Decision:
    earlier = earlier_verdict(request)
    if earlier is not None:
        return reused(earlier, route)
    return judge(core, route, client_request(core, request))


async def adecide(core: DjangoGuard, route: Route, request: HttpRequest) -> Decision:
    earlier = earlier_verdict(request)
    if earlier is not None:
        return reused(earlier, route)
    flow = core.gate.decide(route, client_request(core, request))
    return await arun_flow(flow, _threaded_state(core.state), lambda: _Threaded(core), _unread)


def redeem(core: DjangoGuard, request: HttpRequest) -> Reply:
    """The private-token path's answer (``Gate.challenge`` said ``REDEEM``)."""
    value = from_environ(request.META, request.path_info, core.client_address.wsgi)
    return run_flow(core.gate.redeem(value), core.state, core._sender_for, _empty)


async def aredeem(core: DjangoGuard, request: HttpRequest) -> Reply:
    value = from_environ(request.META, request.path_info, core.client_address.wsgi)
    state = _threaded_state(core.state)
    return await arun_flow(core.gate.redeem(value), state, lambda: _Threaded(core), _aempty)


def _empty(ask: Any) -> bytes:  # a GET: no body to read
    return b""


async def _aempty(ask: Any) -> bytes:
    return b""


def judged(method: str, route: Route) -> bool:
    return is_judged(method, route)


class _Threaded:
    """The door's sync client, called from a worker thread."""

    def __init__(self, core: DjangoGuard) -> None:
        self._send = sync_to_async(core._sender_for().send, thread_sensitive=False)

    async def send(self, call: ProviderCall) -> ProviderResponse | CallProblem:
        return await self._send(call)


class _ThreadedState:
    def __init__(self, state: Any) -> None:
        self._run = sync_to_async(state.run, thread_sensitive=False)

    async def arun(self, op: Any) -> Any:
        return await self._run(op)


def _threaded_state(state: Any) -> Any:
    # In-process state answers without I/O: no reason to leave the loop for it.
    if state is None or isinstance(state, MemoryState):
        return state
    return _ThreadedState(state)


async def _unread(ask: Any) -> Any:  # pragma: no cover - read_fields is set
    raise RuntimeError("an adapter's flow reads no body")


__all__ = [
    "adecide",
    "aredeem",
    "client_request",
    "decide",
    "django_fields",
    "earlier_verdict",
    "judged",
    "redeem",
]
