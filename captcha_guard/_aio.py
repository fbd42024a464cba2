"""Sending a ProviderCall from the ASGI door: aiohttp by default, httpx when given one.

What a provider is charged for is the time it actually had: connection waits and our own
loop's stalls are kept out of it by ``_deadline.Deadline`` (its docstring says how).

Under trio (no asyncio loop) the call goes through httpx on anyio: connection waits are still
kept apart; loop lag is not measured, and need not be for the case that matters: after a stall,
trio wakes the tasks whose sockets became readable before it expires deadlines, so an answer
that arrived during the stall is read, not cancelled (tests/doors/test_trio.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import Any

from ._deadline import TIMEOUT, Deadline, LoopLag, cancelling, ours_alone
from ._effects import BUSY, CallProblem, ProviderCall
from ._proxy import env_proxy
from .providers._wire import ProviderResponse

#: Connections to providers per front door (aiohttp's pool), and calls in flight at most.
POOL_SIZE = 64

_NO_AUTO_HEADERS = ("Content-Type",)


class AiohttpSender:
    """Provider calls through one aiohttp session (made on first use, unless given)."""

    def __init__(self, session: Any = None, *, limit: int | None = None) -> None:
        self._session = session
        self._owned = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._lag: LoopLag | None = None
        if limit is None:
            limit = POOL_SIZE if session is None else _session_limit(session)
        self.limit = limit
        self._proxies: dict[str, Any] = {}

    @property
    def session(self) -> Any:
        """The aiohttp session in use (None until the first call)."""
        return self._session

    def slots(self) -> asyncio.Semaphore:
        """The calls-in-flight semaphore of the running loop (made with the session)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._bind(loop)
        assert self._slots is not None
        return self._slots

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        import aiohttp

        if self._owned:
            connector = aiohttp.TCPConnector(limit=self.limit, limit_per_host=0)
            # No trust_env: aiohttp would then look up proxies and netrc in a thread on every
            # request. The proxy environment is read once per provider origin instead.
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        else:
            # A caller's session may carry the site's other traffic: its pool can be full
            # whatever our own count says. aiohttp's tracing tells when a connection is had.
            configs = self._session.trace_configs
            if not any(getattr(c, "_captcha_guard", False) for c in configs):
                configs.append(_connection_trace())
        self._slots = asyncio.Semaphore(self.limit)
        self._lag = LoopLag(loop)
        self._loop = loop

    async def send(self, call: ProviderCall) -> ProviderResponse | CallProblem:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._bind(loop)
        assert self._slots is not None and self._lag is not None
        slots, session = self._slots, self._session
        request = call.request
        deadline = Deadline(loop, self._lag, call.timeout)
        taken = False
        try:
            await slots.acquire()
            taken = True
            if self._owned:  # our own pool: a free slot is a free connection
                deadline.start()
                proxy = self._proxies.get(request.url, _UNSET)
                if proxy is _UNSET:
                    proxy = self._proxies[request.url] = env_proxy(request.url)
                context = None
            else:  # the trace starts the deadline once a connection is had
                proxy, context = None, deadline
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                # Sent as built: no content-type of aiohttp's own (it would name a bare
                # body, as DeepKnow's, application/octet-stream).
                skip_auto_headers=_NO_AUTO_HEADERS,
                allow_redirects=False,
                proxy=proxy,
                trace_request_ctx=context,
            ) as response:
                body = await response.read()
                return ProviderResponse(response.status, response.headers, body)
        except asyncio.CancelledError:
            problem = deadline.swallow()
            if problem is None:
                raise
            return problem
        except Exception as exc:
            return describe_aiohttp(exc)
        finally:
            deadline.close()
            if taken:
                slots.release()

    async def aclose(self) -> None:
        session, self._loop = self._session, None
        if self._owned and session is not None:
            self._session = None
            await session.close()


class HttpxSender:
    """Provider calls through an httpx (or httpx2) AsyncClient. The wait for a connection is
    told apart from the call by httpx's ``trace`` extension: the provider's time starts when
    a connection is being opened or a request written, whichever comes first."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._module = sys.modules[type(client).__module__.partition(".")[0]]
        self._lags: dict[int, LoopLag] = {}

    async def send(self, call: ProviderCall) -> ProviderResponse | CallProblem:
        request = self._module.Request(
            call.request.method,
            call.request.url,
            headers=list(call.request.headers),
            content=call.request.body,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return await self._send_anyio(request, call.timeout)
        lag = self._lags.get(id(loop))
        if lag is None or lag._loop is not loop:
            lag = self._lags[id(loop)] = LoopLag(loop)
        deadline = Deadline(loop, lag, call.timeout)
        started = False

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            nonlocal started
            if not started and event.endswith(_STARTS):
                started = True
                deadline.start()

        request.extensions["trace"] = trace
        request.extensions["timeout"] = _NO_TIMEOUTS
        try:
            response = await self._client.send(request)
            return ProviderResponse(response.status_code, response.headers, response.content)
        except asyncio.CancelledError:
            problem = deadline.swallow()
            if problem is None:
                raise
            return problem
        except Exception as exc:
            return describe_httpx(exc, self._module)
        finally:
            deadline.close()

    async def _send_anyio(self, request: Any, timeout: float) -> ProviderResponse | CallProblem:
        import anyio

        started = False
        with anyio.move_on_after(timeout) as scope:

            async def trace(event: str, info: Mapping[str, Any]) -> None:
                nonlocal started
                if not started and event.endswith(_STARTS):
                    started = True
                    scope.deadline = anyio.current_time() + timeout

            request.extensions["trace"] = trace
            request.extensions["timeout"] = _NO_TIMEOUTS
            try:
                response = await self._client.send(request)
                return ProviderResponse(response.status_code, response.headers, response.content)
            except Exception as exc:
                return describe_httpx(exc, self._module)
        return TIMEOUT if started else BUSY

    async def aclose(self) -> None:
        return None  # the caller's client: the caller closes it


def _connection_trace() -> Any:
    import aiohttp

    async def had_connection(session: Any, context: Any, params: Any) -> None:
        deadline = context.trace_request_ctx
        if isinstance(deadline, Deadline):
            deadline.start()

    config = aiohttp.TraceConfig()
    config.on_connection_create_start.append(had_connection)
    config.on_connection_reuseconn.append(had_connection)
    config._captcha_guard = True  # type: ignore[attr-defined]
    config.freeze()
    return config


_STARTS = ("connect_tcp.started", "send_request_headers.started")
_UNSET: Any = object()


_NO_TIMEOUTS = {"connect": None, "read": None, "write": None, "pool": None}


def _session_limit(session: Any) -> int:
    """Calls in flight through a caller's aiohttp session: its connector's limit, so a full
    pool is seen here (bounded, BUSY) and never waited for inside a provider's time."""
    connector = getattr(session, "connector", None)
    limits = [getattr(connector, "limit", 0) or 0, getattr(connector, "limit_per_host", 0) or 0]
    positive = [n for n in limits if n > 0]
    return min(positive) if positive else POOL_SIZE


def describe_aiohttp(exc: BaseException) -> CallProblem:
    """An aiohttp error, by kind only: exception texts may carry URLs and bodies."""
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError):
        return TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return CallProblem("connect_error")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return CallProblem("protocol_error")
    if isinstance(exc, aiohttp.ClientResponseError):
        return CallProblem("protocol_error")
    return CallProblem("transport_error")


def describe_httpx(exc: BaseException, module: Any) -> CallProblem:
    """An httpx error, by kind only."""
    if isinstance(exc, module.PoolTimeout):
        return BUSY
    if isinstance(exc, module.TimeoutException):
        return TIMEOUT
    if isinstance(exc, module.ConnectError):
        return CallProblem("connect_error")
    if isinstance(exc, module.RemoteProtocolError):
        return CallProblem("protocol_error")
    return CallProblem("transport_error")


# TIMEOUT, cancelling and ours_alone are re-exported: the doors and redis.py import them here.
__all__ = [
    "POOL_SIZE",
    "TIMEOUT",
    "AiohttpSender",
    "Deadline",
    "HttpxSender",
    "LoopLag",
    "cancelling",
    "describe_aiohttp",
    "describe_httpx",
    "ours_alone",
]
