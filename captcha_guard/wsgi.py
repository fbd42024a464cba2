"""WSGICaptchaGuard: the WSGI (PEP 3333) front door, for Flask, Django and the rest.

The twin of ``asgi.CaptchaGuard``: the same Gate, rules, fields, providers, breaker and
answers; only reading the body (``wsgi.input``) and sending the provider's request (a pooled
``httpx.Client``) differ. Nothing async is wrapped in an event loop.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import IO
from wsgiref.util import is_hop_by_hop

import httpx

from ._door import FrontDoor
from ._types import Environ, StartResponse, WSGIApp
from .gate import CLIENT_LIMITS, Call, Route, describe_error
from .providers.base import RequestInfo
from .responses import Denial, bad_request, render, status_line, too_large, wants_json
from .verdict import Verdict

#: Where a request that reached the app finds its verdict.
VERDICT_KEY = "captcha_guard.verdict"

#: ``on_reject(denial, environ)`` returns the WSGI app (a Flask or Werkzeug Response) that answers.
WSGIRejectHandler = Callable[[Denial, Environ], WSGIApp]

_CHUNK = 65_536


class WSGICaptchaGuard(FrontDoor[WSGIApp, httpx.Client, WSGIRejectHandler]):
    """WSGI middleware that demands a valid captcha on the routes its rules name.

    Takes the same arguments as ``CaptchaGuard``; ``http_client`` is an ``httpx.Client``.
    httpx's sync timeouts apply per phase (connect, write, each read, pool), each up to the
    provider's ``timeout``: unlike the ASGI door, the whole call is not bounded as one.
    """

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = _route_path(environ.get("PATH_INFO", ""))
        route = self.gate.match(method, path)
        if route is None:
            reply = self.gate.challenge(method, path)
            if reply is None:
                return self.app(environ, start_response)
            return _respond(start_response, reply.status, reply.headers, reply.body)
        if isinstance(route, Denial):  # bad_path
            as_json = wants_json(environ.get("HTTP_ACCEPT", ""), environ.get("CONTENT_TYPE", ""))
            return self._deny(route, as_json, environ, start_response)
        return self._protect(route, environ, start_response)

    def close(self) -> None:
        """Close the pooled HTTP client, if this middleware made it."""
        with self._client_lock:
            client, self._client = self._client, None
            if client is not None and not self._owns_client:
                self._client = client
                return
        if client is not None:
            client.close()

    def _protect(
        self, route: Route, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        content_type = environ.get("CONTENT_TYPE", "")
        as_json = wants_json(environ.get("HTTP_ACCEPT", ""), content_type)
        declared = environ.get("CONTENT_LENGTH", "").strip() or None
        early = self.gate.check_length(declared)
        body = self._read_body(environ, declared) if early is None else early
        if isinstance(body, Denial):
            return self._deny(body, as_json, environ, start_response)

        step = self.gate.begin(
            route,
            request=_request_info(environ),
            content_type=content_type,
            body=body,
            query_string=environ.get("QUERY_STRING", "").encode("latin-1", "replace"),
            header_value=environ.get("HTTP_X_CAPTCHA"),
        )
        if isinstance(step, Denial):
            return self._deny(step, as_json, environ, start_response)
        verdict = self._verify(step) if isinstance(step, Call) else step
        if isinstance(verdict, Denial):
            return self._deny(verdict, as_json, environ, start_response)
        denial = self.gate.judge(route, verdict)
        if denial is not None:
            return self._deny(denial, as_json, environ, start_response)
        environ[VERDICT_KEY] = verdict
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _read_body(self, environ: Environ, declared: str | None) -> bytes | Denial:
        """The whole body: ``CONTENT_LENGTH`` bytes, or to the end of a terminated input."""
        limit = self.gate.max_body_size
        stream: IO[bytes] | None = environ.get("wsgi.input")
        terminated = bool(environ.get("wsgi.input_terminated"))
        # check_length has vouched for ``declared``: digits, and at most ``limit``.
        expected = int(declared) if declared is not None else 0
        wanted = limit + 1 if terminated else expected
        chunks: list[bytes] = []
        size = 0
        try:
            while size < wanted and stream is not None:
                chunk = stream.read(min(_CHUNK, wanted - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except (OSError, ValueError):  # the client went away, or the server gave up on it
            return bad_request("body could not be read")
        if size > limit:
            return too_large(limit)
        if not terminated and size < expected:
            return bad_request("body shorter than content-length")
        return b"".join(chunks)

    def _verify(self, call: Call) -> Verdict | Denial:
        client = self._pooled_client()
        try:
            response = client.send(call.request)
        except httpx.PoolTimeout:  # every connection busy: our capacity, not the provider's
            return self.gate.busy(call)
        except Exception as exc:
            return self.gate.finish(call, error=describe_error(exc))
        except BaseException:
            self.gate.abandon(call)
            raise
        return self.gate.finish(call, response=response)

    def _pooled_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._client_lock:  # threads: make exactly one pool
                client = self._client
                if client is None:
                    client = self._client = httpx.Client(
                        limits=CLIENT_LIMITS, follow_redirects=False
                    )
        return client

    def _deny(
        self, denial: Denial, as_json: bool, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        if self.on_reject is not None:
            return self.on_reject(denial, environ)(environ, start_response)
        headers, body = render(denial, as_json=as_json)
        return _respond(start_response, denial.status, headers, body)


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


def _request_info(environ: Environ) -> RequestInfo:
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return RequestInfo(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=_route_path(path),
        client_host=environ.get("REMOTE_ADDR") or None,
        headers=headers,
        raw=environ,
    )


__all__ = ["VERDICT_KEY", "WSGICaptchaGuard", "WSGIRejectHandler"]
