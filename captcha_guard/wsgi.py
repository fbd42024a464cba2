"""WSGICaptchaGuard: the WSGI (PEP 3333) front door, for Flask, Django and the rest.

The twin of ``CaptchaGuard``, driving the same flow: it reads ``wsgi.input``, sends provider
calls with a pooled sync client (urllib3 unless given an httpx ``Client``), calls event hooks,
and calls the app or answers. Nothing async is wrapped in an event loop.
"""

from __future__ import annotations

import contextlib
import io
import socket
import time
from collections.abc import Callable, Generator, Iterable
from typing import IO, Any
from wsgiref.util import is_hop_by_hop

from ._door import FrontDoor
from ._effects import (
    INCOMPLETE,
    TIMED_OUT,
    TOO_LARGE,
    UNREADABLE,
    BodyProblem,
    Deny,
    Effect,
    Pass,
    ReadBody,
    Redeem,
)
from ._perform import T, run_flow
from ._request import from_environ
from ._responses import Denial, no_store, render, status_line, wants_json
from ._route import Route
from ._sync import SyncHttpxSender, Urllib3Sender
from ._types import Environ, StartResponse, WSGIApp

#: Where a request that reached the app finds its verdict.
VERDICT_KEY = "captcha_guard.verdict"

#: ``on_reject(denial, environ)`` returns the WSGI app (a Flask or Werkzeug Response) that answers.
WSGIRejectHandler = Callable[[Denial, Environ], WSGIApp]

_CHUNK = 65_536


class WSGICaptchaGuard(FrontDoor[WSGIApp, WSGIRejectHandler]):
    """WSGI middleware that demands a valid captcha on the routes its rules name.

    Takes the same arguments as ``CaptchaGuard``; ``http_client`` is an httpx/httpx2
    ``Client`` (by default the door keeps a urllib3 pool).
    """

    door = "wsgi"
    _sender: Urllib3Sender | SyncHttpxSender | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = _route_path(environ.get("PATH_INFO", ""))
        route = self.gate.route(method, path)
        if route is None:
            if path not in self.gate.challenge_paths:
                return self.app(environ, start_response)
            request = from_environ(environ, path, self.client_address.wsgi)
            reply = self.gate.challenge(method, path, request)
            if reply is None:
                return self.app(environ, start_response)
            if type(reply) is Redeem:  # the private-token path
                reply = self._drive(self.gate.redeem(request), environ, request)
            return _respond(start_response, reply.status, reply.headers, reply.body)  # type: ignore[union-attr]
        if type(route) is Denial:  # bad_path
            as_json = wants_json(environ.get("HTTP_ACCEPT", ""), environ.get("CONTENT_TYPE", ""))
            return self._deny(route, as_json, environ, start_response)
        return self._protect(route, path, environ, start_response)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the pooled HTTP client, if this middleware made it."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()
        self.state.close()

    def _drive(self, flow: Generator[Effect, Any, T], environ: Environ, request: Any) -> T:
        """Perform what ``flow`` yields until it returns; its return value."""
        declared = request.content_length
        return run_flow(
            flow, self.state, self._sender_for, lambda ask: _read_body(environ, declared, ask)
        )

    def _protect(
        self, route: Route, path: str, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        request = from_environ(environ, path, self.client_address.wsgi)
        decision = self._drive(self.gate.decide(route, request), environ, request)
        if type(decision) is Pass:
            environ[VERDICT_KEY] = decision.verdict
            if decision.body is not None:
                environ["wsgi.input"] = io.BytesIO(decision.body)
                environ["CONTENT_LENGTH"] = str(len(decision.body))
            if decision.headers:
                start_response = _adding(start_response, decision.headers)
            return self.app(environ, start_response)
        denial = decision.denial if type(decision) is Deny else None
        if denial is None:  # pragma: no cover - a WSGI client cannot leave mid-read unseen
            return []
        as_json = wants_json(request.accept, request.content_type)
        return self._deny(denial, as_json, environ, start_response)

    def _deny(
        self, denial: Denial, as_json: bool, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        if self.on_reject is not None:
            return self.on_reject(denial, environ)(environ, _no_store(start_response))
        headers, body = render(
            denial,
            as_json=as_json,
            request_headers=None if as_json else _page_headers(environ),
            scheme=environ.get("wsgi.url_scheme", "http"),
        )
        return _respond(start_response, denial.status, headers, body)

    def _sender_for(self) -> Urllib3Sender | SyncHttpxSender:
        sender = self._sender
        if sender is None:
            client = self.http_client
            sender = Urllib3Sender() if client is None else SyncHttpxSender(client)
            self._sender = sender
        return sender


#: Where servers put the client's socket in the environ: gunicorn (every worker class) and
#: the Werkzeug development server. Through it a blocking read can be bounded too.
_SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")
#: After a body timeout the socket keeps a short timeout: a server that drains the rest of
#: the body to reuse the connection (gunicorn's gthread worker) gives up on it and closes.
_AFTER_TIMEOUT = 1.0


def _client_socket(environ: Environ) -> socket.socket | None:
    for key in _SOCKET_KEYS:
        sock = environ.get(key)
        if isinstance(sock, socket.socket):
            return sock
    return None


def _read_body(environ: Environ, declared: str | None, ask: ReadBody) -> bytes | BodyProblem:
    """The whole body: ``CONTENT_LENGTH`` bytes, or to the end of a terminated input.

    Where the server says which socket the input reads from (gunicorn, Werkzeug), each read is
    bounded by what is left of the deadline, so a client trickling its body is cut off on
    time. Elsewhere the deadline is checked between chunks, and one blocking read is bounded
    only by the server's own timeouts (waitress reads the whole body before it calls the app).
    """
    limit = ask.limit
    stream: IO[bytes] | None = environ.get("wsgi.input")
    terminated = bool(environ.get("wsgi.input_terminated"))
    # The flow has vouched for ``declared``: digits, and at most ``limit``.
    expected = int(declared) if declared is not None else 0
    wanted = limit + 1 if terminated else expected
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + ask.timeout
    sock = _client_socket(environ) if wanted and stream is not None else None
    saved = sock.gettimeout() if sock is not None else None
    timed_out = False
    try:
        while size < wanted and stream is not None:
            if sock is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    return TIMED_OUT
                sock.settimeout(left)
            chunk = stream.read(min(_CHUNK, wanted - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size < wanted and time.monotonic() > deadline:
                timed_out = True
                return TIMED_OUT
    except TimeoutError:  # socket.timeout: the deadline ran out inside a read
        timed_out = True
        return TIMED_OUT
    except (OSError, ValueError):  # the client went away, or the server gave up on it
        return UNREADABLE
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(_AFTER_TIMEOUT if timed_out else saved)
    if size > limit:
        return TOO_LARGE
    if not terminated and size < expected:
        return INCOMPLETE
    return b"".join(chunks)


def _adding(start_response: StartResponse, headers: tuple[tuple[str, str], ...]) -> StartResponse:
    """A start_response that adds ``headers`` to the app's answer (a clearance cookie)."""

    def adding(
        status: str, response_headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        return start_response(status, [*response_headers, *headers], exc_info)

    return adding


def _no_store(start_response: StartResponse) -> StartResponse:
    """``start_response`` that keeps the gate's ``cache-control: no-store`` on an
    ``on_reject`` answer."""

    def starting(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is None:  # as the app called it: some start_response take two arguments
            return start_response(status, no_store(headers))
        return start_response(status, no_store(headers), exc_info)

    return starting


def _page_headers(environ: Environ) -> dict[str, str]:
    """The request headers the refusal page reads (its language, its way back)."""
    host = (
        environ.get("HTTP_HOST")
        or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    )
    return {
        "accept-language": environ.get("HTTP_ACCEPT_LANGUAGE", ""),
        "referer": environ.get("HTTP_REFERER", ""),
        "host": host,
    }


def _respond(
    start_response: StartResponse, status: int, headers: list[tuple[str, str]], body: bytes
) -> Iterable[bytes]:
    # PEP 3333 leaves hop-by-hop headers (connection: close) to the server; wsgiref asserts.
    start_response(status_line(status), [h for h in headers if not is_hop_by_hop(h[0])])
    return [body]


def _route_path(path_info: str) -> str:
    """PATH_INFO (already below SCRIPT_NAME) as the str an ASGI server would give: PEP 3333
    hands over the raw bytes as latin-1, ASGI decodes them as UTF-8."""
    if not path_info:
        return "/"
    if path_info.isascii():
        return path_info
    try:
        return path_info.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a server that decoded it already
        return path_info


__all__ = ["VERDICT_KEY", "WSGICaptchaGuard", "WSGIRejectHandler"]
