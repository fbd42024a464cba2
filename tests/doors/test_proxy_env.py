"""Provider calls honour HTTP_PROXY / NO_PROXY with each door's default client, through a real
forwarding proxy on 127.0.0.1 (neither aiohttp without trust_env nor urllib3 reads them
itself, so the doors do)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from captcha_guard import CaptchaGuard, GeeTest, Rule, WSGICaptchaGuard
from captcha_guard.testing import GeeTestEmulator
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.servers import serve_asgi, serve_wsgi


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.seen: list[str] = []


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:  # an absolute-form request, as a client sends a proxy
        self.server.seen.append(self.path)
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=5)
        path = target.path + (f"?{target.query}" if target.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        upstream.request("POST", path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        self.send_header("content-type", answer.getheader("content-type", "text/plain"))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    server = _Proxy()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
@pytest.mark.parametrize("bypass", [False, True])
def test_provider_calls_go_through_the_environments_proxy(
    proxy: _Proxy, monkeypatch: pytest.MonkeyPatch, door: str, bypass: bool
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    if bypass:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    emulator = GeeTestEmulator()
    with emulator.serve() as upstream:
        provider = GeeTest(
            emulator.captcha_id, emulator.captcha_key, endpoint=upstream.endpoint("/validate")
        )
        if door == "asgi":
            guard: Any = CaptchaGuard(echo_asgi, rules=[Rule("/login")], provider=provider)
            serve: Any = serve_asgi
        else:
            guard = WSGICaptchaGuard(echo_wsgi, rules=[Rule("/login")], provider=provider)
            serve = serve_wsgi
        with serve(guard) as url:
            answer = httpx.post(
                url + "/login",
                content=urlencode(emulator.issue()),
                headers={"content-type": "application/x-www-form-urlencoded"},
                trust_env=False,  # the test's own client goes straight to the app
                verify=TLS,
            )
    assert answer.json()["outcome"] == "passed"
    assert emulator.calls == 1
    if bypass:
        assert proxy.seen == []
    else:
        assert [urlsplit(p).path for p in proxy.seen] == ["/validate"]
