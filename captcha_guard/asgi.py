"""CaptchaGuard: the ASGI front door, a driver of the gate's flow.

It decides nothing. It matches the rule table, builds the request value, and runs the flow:
reading the body when asked, sending provider calls with its async client (aiohttp on
asyncio unless given another; httpx on anyio under trio), calling event hooks, and finally
calling the app or sending the gate's answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import Any

from ._aio import AiohttpSender, HttpxSender, cancelling, ours_alone
from ._door import FrontDoor
from ._effects import (
    DISCONNECTED,
    TIMED_OUT,
    TOO_LARGE,
    BodyProblem,
    Deny,
    Effect,
    Pass,
    ReadBody,
    Redeem,
)
from ._perform import T, arun_flow
from ._request import from_scope, read_headers
from ._responses import Denial, no_store, render, wants_json
from ._route import Route
from ._routing import route_path
from ._types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("captcha_guard")

#: ``on_reject(denial, scope)`` returns the ASGI app (a Starlette Response, say) that answers.
RejectHandler = Callable[[Denial, Scope], ASGIApp]


class CaptchaGuard(FrontDoor[ASGIApp, RejectHandler]):
    """ASGI middleware that demands a valid captcha on the routes its rules name.

    ``CaptchaGuard(app, *, rules=(), provider=None, providers=None, ...)``: every argument
    after ``app`` is a keyword (README, "Configuration reference"). ``http_client`` is an
    ``aiohttp.ClientSession`` or an ``httpx``/``httpx2`` ``AsyncClient``.
    """

    door = "asgi"
    _sender: AiohttpSender | HttpxSender | None = None
    _owned_httpx: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        method, path, root_path = scope["method"], scope["path"], scope.get("root_path", "")
        route = self.gate.route(method, path, root_path, scope.get("raw_path"))
        if route is None:
            below = route_path(path, root_path) if root_path else path
            if below not in self.gate.challenge_paths:
                await self.app(scope, receive, send)
                return
            request = from_scope(scope, below, self.client_address.asgi)
            reply = self.gate.challenge(method, below, request)
            if reply is None:
                await self.app(scope, receive, send)
                return
            if type(reply) is Redeem:  # the private-token path
                reply = await self._drive(self.gate.redeem(request), receive)
            await _send(send, reply.status, reply.headers, reply.body)  # type: ignore[union-attr]
            return
        if type(route) is Denial:  # bad_path
            headers = read_headers(scope["headers"])
            as_json = wants_json(headers.get("accept", ""), headers.get("content-type", ""))
            await self._deny(route, as_json, scope, receive, send)
            return
        below = route_path(path, root_path)
        await self._protect(route, below, scope, receive, send)  # type: ignore[arg-type]

    async def _drive(self, flow: Generator[Effect, Any, T], receive: Receive) -> T:
        """Perform what ``flow`` yields until it returns; its return value."""
        return await arun_flow(
            flow, self.state, self._sender_for, lambda ask: _read_body(receive, ask)
        )

    async def _protect(
        self, route: Route, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        request = from_scope(scope, path, self.client_address.asgi)
        decision = await self._drive(self.gate.decide(route, request), receive)
        if type(decision) is Pass:
            scope.setdefault("state", {})["captcha"] = decision.verdict
            if decision.body is not None:
                receive = _replay(decision.body, receive)
            if decision.headers:
                send = _adding(send, decision.headers)
            await self.app(scope, receive, send)
        elif type(decision) is Deny:
            as_json = wants_json(request.accept, request.content_type)
            await self._deny(decision.denial, as_json, scope, receive, send)

    def _sender_for(self) -> AiohttpSender | HttpxSender:
        sender = self._sender
        if sender is None:
            sender = self._sender = self._make_sender()
        return sender

    def _make_sender(self) -> AiohttpSender | HttpxSender:
        client = self.http_client
        if client is not None:
            if type(client).__module__.startswith("aiohttp"):
                return AiohttpSender(client)
            return HttpxSender(client)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio: httpx through anyio
            import httpx

            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            self._owned_httpx = httpx.AsyncClient(limits=limits, follow_redirects=False)
            return HttpxSender(self._owned_httpx)
        return AiohttpSender()

    async def aclose(self) -> None:
        """Close the HTTP client this middleware made (a given one is the caller's)."""
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()
        owned, self._owned_httpx = self._owned_httpx, None
        if owned is not None:
            await owned.aclose()
        await self.state.aclose()

    async def _deny(
        self, denial: Denial, as_json: bool, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if self.on_reject is not None:
            await self.on_reject(denial, scope)(scope, receive, _no_store(send))
            return
        request_headers = None if as_json else read_headers(scope["headers"])
        headers, body = render(
            denial,
            as_json=as_json,
            request_headers=request_headers,
            scheme=scope.get("scheme", "http"),
        )
        await _send(send, denial.status, headers, body)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, watched for shutdown to close our client. An app that does not
        speak lifespan (it returns or raises at once, as many plain apps do) would leave the
        client open at shutdown: then the door speaks the protocol for itself."""
        seen = False

        async def watched() -> Message:
            nonlocal seen
            seen = True
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.aclose()
            return message

        try:
            await self.app(scope, watched, send)
        except Exception:
            if seen:
                raise
        if seen:
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Receive, ask: ReadBody) -> bytes | BodyProblem:
    """The whole body, at most ``ask.limit`` bytes within ``ask.timeout`` seconds."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        import anyio

        with anyio.move_on_after(ask.timeout):
            return await _receive_all(receive, ask.limit)
        return TIMED_OUT
    task = asyncio.current_task()
    assert task is not None
    before = cancelling(task)
    fired = False

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    timer = loop.call_at(loop.time() + ask.timeout, expire)
    try:
        return await _receive_all(receive, ask.limit)
    except asyncio.CancelledError:
        if fired and ours_alone(task, before):
            return TIMED_OUT
        raise
    finally:
        timer.cancel()


async def _receive_all(receive: Receive, limit: int) -> bytes | BodyProblem:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.disconnect":
            return DISCONNECTED
        if kind != "http.request":
            continue
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return TOO_LARGE
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _no_store(send: Send) -> Send:
    """``send`` that keeps the gate's ``cache-control: no-store`` on an ``on_reject`` answer."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in no_store(raw)]
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def _send(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _adding(send: Send, headers: tuple[tuple[str, str], ...]) -> Send:
    """A send that adds ``headers`` to the app's response start (a clearance cookie)."""
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return adding


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
