"""CaptchaGuard: the ASGI front door."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import anyio
import httpx

from ._door import FrontDoor
from ._types import ASGIApp, Message, Receive, Scope, Send
from .gate import Call, Route, describe_error
from .providers.base import RequestInfo
from .responses import Denial, render, too_large, wants_json
from .rules import route_path
from .verdict import Verdict

logger = logging.getLogger("captcha_guard")

#: Provider connections: POOLS pools of POOL_SIZE each (see _Pools for why not one pool).
POOLS = 8
POOL_SIZE = 8

#: ``on_reject(denial, scope)`` returns the ASGI app (a Starlette Response, say) that answers.
RejectHandler = Callable[[Denial, Scope], ASGIApp]


class CaptchaGuard(FrontDoor[ASGIApp, httpx.AsyncClient, RejectHandler]):
    """ASGI middleware that demands a valid captcha on the routes its rules name.

    ``CaptchaGuard(app, rules=(), provider=None, providers=None, max_body_size=1_048_576,
    on_reject=None, http_client=None, *, replay_store=None, fallback_limit=None)``;
    ``http_client`` is an ``httpx.AsyncClient``.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                receive = self._watch_shutdown(receive)
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], route_path(scope["path"], scope.get("root_path", ""))
        route = self.gate.match(method, path)
        if route is None:
            reply = self.gate.challenge(method, path)
            if reply is None:
                await self.app(scope, receive, send)
            else:
                await _send(send, reply.status, reply.headers, reply.body)
            return
        if isinstance(route, Denial):  # bad_path
            head = _Head(scope["headers"])
            as_json = wants_json(head.accept, head.content_type)
            await self._deny(route, as_json, scope, receive, send)
            return
        await self._protect(route, scope, receive, send)

    _pools: _Pools | None = None

    async def aclose(self) -> None:
        """Close the pooled HTTP clients, if this middleware made them."""
        pools, self._pools = self._pools, None
        if pools is not None:
            await pools.aclose()
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()
        elif client is not None:
            self._client = client

    async def _protect(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        head = _Head(scope["headers"])
        as_json = wants_json(head.accept, head.content_type)
        limit = self.gate.max_body_size
        early = self.gate.check_length(head.content_length)
        if early is not None:
            await self._deny(early, as_json, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: no one to answer, and no reason to call the app
            if message["type"] != "http.request":
                continue
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._deny(too_large(limit), as_json, scope, receive, send)
                return
            if chunk:
                chunks.append(chunk)
            more_body = message.get("more_body", False)
        body = b"".join(chunks)

        step = self.gate.begin(
            route,
            request=_request_info(scope),
            content_type=head.content_type,
            body=body,
            query_string=scope.get("query_string", b""),
            header_value=head.captcha,
        )
        if isinstance(step, Denial):
            await self._deny(step, as_json, scope, receive, send)
            return
        verdict = await self._verify(step) if isinstance(step, Call) else step
        if isinstance(verdict, Denial):
            await self._deny(verdict, as_json, scope, receive, send)
            return
        denial = self.gate.judge(route, verdict)
        if denial is not None:
            await self._deny(denial, as_json, scope, receive, send)
            return
        scope.setdefault("state", {})["captcha"] = verdict
        await self.app(scope, _replay(body, receive), send)

    async def _verify(self, call: Call) -> Verdict | Denial:
        pools = self._pools
        if pools is None and self._client is None:
            # Made before the deadline starts: it is the middleware's cost, not the provider's.
            pools = self._pools = _Pools()
        try:
            if pools is None:  # the caller's own client, as it is
                assert self._client is not None
                client, slot = self._client, -1
            else:
                # Waiting for a connection is bounded apart from the call: a full pool is our
                # capacity (503, breaker untouched), never the provider's failure.
                slot = pools.take()
                if slot < 0:
                    with anyio.move_on_after(call.timeout):
                        slot = await pools.acquire()
                if slot < 0:
                    return self.gate.busy(call)
                client = pools.clients[slot]
            try:
                with anyio.move_on_after(call.timeout) as deadline:
                    response = await client.send(call.request)
            finally:
                if pools is not None:
                    pools.release(slot)
            if deadline.cancelled_caught:
                return self.gate.finish(call, error="timeout")
        except httpx.PoolTimeout:
            return self.gate.busy(call)
        except Exception as exc:
            return self.gate.finish(call, error=describe_error(exc))
        except BaseException:
            self.gate.abandon(call)
            raise
        return self.gate.finish(call, response=response)

    async def _deny(
        self, denial: Denial, as_json: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if self.on_reject is not None:
            await self.on_reject(denial, scope)(scope, receive, send)
            return
        headers, body = render(denial, as_json=as_json)
        await _send(send, denial.status, headers, body)

    def _watch_shutdown(self, receive: Receive) -> Receive:
        async def watched() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.aclose()
            return message

        return watched


class _Pools:
    """The provider connections, as several small httpx pools rather than one large one.

    httpcore (1.0) spends, on every request, time in proportion to the square of its pool's
    connections and to the requests queued in it: at 32 busy connections that is several
    milliseconds of CPU per request, more than everything else the gate does. So: ``count``
    clients of ``size`` connections each, every call sent by the least busy one, and the calls
    beyond ``count * size`` queued here, where waiting costs nothing.
    """

    def __init__(self, count: int = POOLS, size: int = POOL_SIZE) -> None:
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        # One TLS context for all: loading the CA bundle takes tens of milliseconds each time.
        tls = httpx.create_ssl_context()
        self.clients = [
            httpx.AsyncClient(limits=limits, verify=tls, follow_redirects=False)
            for _ in range(count)
        ]
        self.busy = [0] * count
        self.slots = anyio.Semaphore(count * size)

    async def acquire(self) -> int:
        """The index of the least busy client, once fewer than count * size calls are out;
        -1 until then (the caller bounds the wait)."""
        await self.slots.acquire()
        return self._least_busy()

    def take(self) -> int:
        """``acquire`` without waiting (nor a cancel scope for the wait, the usual case):
        -1 when count * size calls are out."""
        try:
            self.slots.acquire_nowait()
        except anyio.WouldBlock:
            return -1
        return self._least_busy()

    def _least_busy(self) -> int:
        # With at most count * size calls out, the least busy pool has a free connection.
        slot = self.busy.index(min(self.busy))
        self.busy[slot] += 1
        return slot

    def release(self, slot: int) -> None:
        self.busy[slot] -= 1
        self.slots.release()

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


class _Head:
    """The few request headers the gate reads, found in one pass."""

    __slots__ = ("accept", "captcha", "content_length", "content_type")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self.accept = ""
        self.content_type = ""
        self.content_length: str | None = None
        self.captcha: str | None = None
        for key, value in raw:
            name = key.lower()
            if name == b"content-type":
                # The first, as Starlette's Headers.get reads it: the gate and the app must
                # parse the body the same way.
                if not self.content_type:
                    self.content_type = value.decode("latin-1")
            elif name == b"content-length":
                self.content_length = value.decode("latin-1").strip()
            elif name == b"accept":
                self.accept = value.decode("latin-1")
            elif name == b"x-captcha":
                text = value.decode("latin-1")
                # Sent twice, both count: a field in each is a duplicate (403), not a silent pick.
                self.captcha = text if self.captcha is None else f"{self.captcha}&{text}"


def _request_info(scope: Scope) -> RequestInfo:
    client = scope.get("client")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return RequestInfo(
        method=scope["method"],
        path=scope["path"],
        client_host=client[0] if client else None,
        headers=headers,
        raw=scope,
    )


async def _send(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body we read, whole, then the real receive."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


__all__ = ["CaptchaGuard", "RejectHandler"]
