"""``captcha-guard emulate VENDOR`` as a real process on OS-chosen ports: what it prints, its
control endpoint (mint, outage modes, bad input), two workers sharing it as a site's would,
and a clean exit on SIGTERM and SIGINT."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from captcha_guard import (
    AliyunCaptcha,
    Cap,
    CaptchaGuard,
    DeepKnow,
    FriendlyCaptcha,
    GeeTest,
    HCaptcha,
    ReCaptcha,
    Rule,
    TencentCaptcha,
    Turnstile,
)
from captcha_guard._emulate_cli import VENDOR_NAMES
from captcha_guard.testing._standalone import VENDORS
from tests import TLS
from tests.servers import serve_asgi

# Real browsers and servers, real processes: seconds each.
pytestmark = pytest.mark.slow


@dataclass
class Emulated:
    process: subprocess.Popen[str]
    announced: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return str(self.announced["endpoint"])

    @property
    def control(self) -> str:
        return str(self.announced["control"])

    @property
    def credentials(self) -> dict[str, Any]:
        return dict(self.announced["credentials"])


@contextmanager
def emulate(vendor: str, *extra: str) -> Iterator[Emulated]:
    process = subprocess.Popen(
        [sys.executable, "-m", "captcha_guard", "emulate", vendor, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()  # the process prints it first, or exits
        assert line, f"emulate exited: {process.wait(10)}, {process.stderr.read()!r}"  # type: ignore[union-attr]
        yield Emulated(process, json.loads(line))
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


BUILD: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "geetest": lambda c, e: GeeTest(c["captcha_id"], c["captcha_key"], endpoint=e),
    "deepknow": lambda c, e: DeepKnow(
        c["secret"], scene="login", user_id=lambda raw: "user001", endpoint=e
    ),
    "aliyun": lambda c, e: AliyunCaptcha(
        c["access_key_id"], c["access_key_secret"], scene_id=c["scene_id"], endpoint=e
    ),
    "recaptcha": lambda c, e: ReCaptcha(c["secret"], endpoint=e),
    "hcaptcha": lambda c, e: HCaptcha(c["secret"], sitekey=c["sitekey"], endpoint=e),
    "turnstile": lambda c, e: Turnstile(c["secret"], sitekey=c["sitekey"], endpoint=e),
    "tencent": lambda c, e: TencentCaptcha(
        c["secret_id"],
        c["secret_key"],
        captcha_app_id=c["captcha_app_id"],
        app_secret_key=c["app_secret_key"],
        endpoint=e,
    ),
    "friendly_captcha": lambda c, e: FriendlyCaptcha(
        c["api_key"], sitekey=c["sitekey"], version=c.get("version", 2), endpoint=e
    ),
    "cap": lambda c, e: Cap(c["site_key"], c["secret"], endpoint=e),
}


def worker(provider: Any) -> CaptchaGuard:
    """One worker of a site: its own door, pool and in-memory state."""

    async def signup(request: Request) -> Response:
        return JSONResponse({"captcha": request.state.captcha.outcome.value})

    app = Starlette(routes=[Route("/signup", signup, methods=["POST"])])
    return CaptchaGuard(app, rules=[Rule("/signup", fail_open=False)], provider=provider)


def test_the_cli_knows_every_emulated_vendor() -> None:
    assert set(VENDOR_NAMES) == set(VENDORS) == set(BUILD)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_each_vendor_announces_mints_and_verifies(vendor: str) -> None:
    with emulate(vendor) as emulated, httpx.Client(timeout=10, verify=TLS) as client:
        assert emulated.announced["vendor"] == vendor
        for url in (emulated.endpoint, emulated.control):
            parts = urlsplit(url)
            assert parts.hostname == "127.0.0.1" and parts.port
        state = client.get(emulated.control + "/").json()
        assert (state["outage"], state["calls"]) == (None, 0)
        fields = client.post(emulated.control + "/issue").json()
        assert fields and all(isinstance(v, str) and v for v in fields.values())
        guard = worker(BUILD[vendor](emulated.credentials, emulated.endpoint))
        with serve_asgi(guard) as site:
            answer = client.post(site + "/signup", data=fields)
            assert (answer.status_code, answer.json()) == (200, {"captcha": "passed"})
        assert client.get(emulated.control + "/").json()["calls"] == 1


def test_friendly_captcha_v1_by_a_flag() -> None:
    """``--api-version 1``: the v1 path, credentials that say so, and v1's field from /issue;
    a version the emulator does not serve is exit code 2, naming those it does."""
    with emulate("friendly_captcha", "--api-version", "1") as emulated:
        assert urlsplit(emulated.endpoint).path == "/api/v1/siteverify"
        assert emulated.credentials["version"] == 1
        with httpx.Client(timeout=10, verify=TLS) as client:
            fields = client.post(emulated.control + "/issue").json()
            assert list(fields) == ["frc-captcha-solution"]
            guard = worker(BUILD["friendly_captcha"](emulated.credentials, emulated.endpoint))
            with serve_asgi(guard) as site:
                answer = client.post(site + "/signup", data=fields)
                assert (answer.status_code, answer.json()) == (200, {"captcha": "passed"})
                again = client.post(
                    site + "/signup", data=fields, headers={"accept": "application/json"}
                )
                assert again.status_code == 403
    for vendor, version in (("friendly_captcha", "3"), ("geetest", "1")):
        process = subprocess.run(
            [sys.executable, "-m", "captcha_guard", "emulate", vendor, "--api-version", version],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert process.returncode == 2, process.stderr
        assert f"no API version {version}" in process.stderr


def test_two_workers_share_one_emulator_and_its_outages() -> None:
    with emulate("geetest") as emulated, httpx.Client(timeout=10, verify=TLS) as client:
        credentials, endpoint = emulated.credentials, emulated.endpoint
        first = worker(
            GeeTest(credentials["captcha_id"], credentials["captcha_key"], endpoint=endpoint)
        )
        second = worker(
            GeeTest(credentials["captcha_id"], credentials["captcha_key"], endpoint=endpoint)
        )
        with serve_asgi(first) as a, serve_asgi(second) as b:
            fields = client.post(emulated.control + "/issue").json()
            assert client.post(a + "/signup", data=fields).status_code == 200
            # The other worker never saw it, but the vendor did: spent.
            again = client.post(b + "/signup", data=fields, headers={"accept": "application/json"})
            assert again.status_code == 403

            state = client.post(emulated.control + "/outage", json={"mode": "500"}).json()
            assert state["outage"] == "500"
            fresh = client.post(emulated.control + "/issue").json()
            down = client.post(b + "/signup", data=fresh, headers={"accept": "application/json"})
            assert (down.status_code, down.json()["error"]) == (503, "captcha_unavailable")

            assert (
                client.post(emulated.control + "/outage", json={"mode": None}).json()["outage"]
                is None
            )
            assert client.post(b + "/signup", data=fresh).status_code == 200


def test_refuse_mode_closes_the_port_and_reopens_it() -> None:
    with emulate("turnstile") as emulated, httpx.Client(timeout=10, verify=TLS) as client:
        port = urlsplit(emulated.endpoint).port
        assert port is not None
        client.post(emulated.control + "/outage", json={"mode": "refuse"})
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), 2),
        ):
            pass
        client.post(emulated.control + "/outage", json={"mode": None})
        socket.create_connection(("127.0.0.1", port), 2).close()


BAD_CONTROL = [
    ("/outage", b'{"mode": "down"}', 400, "modes: 500, 429"),
    ("/outage", b'{"mode": "slow", "delay": -1}', 400, "delay"),
    ("/outage", b'{"mode": "slow", "delay": "1"}', 400, "delay"),
    ("/outage", b"not json", 400, "JSON object"),
    ("/outage", b"[1, 2]", 400, "JSON object"),
    ("/issue", b'{"no_such_keyword": 1}', 400, "no_such_keyword"),
    ("/issue", b"{" + b" " * 20_000 + b"}", 400, "JSON object"),
    ("/nowhere", b"{}", 404, "not_found"),
]


def test_bad_control_requests_are_400s_and_slow_mode_takes_a_delay() -> None:
    with emulate("geetest") as emulated, httpx.Client(timeout=10, verify=TLS) as client:
        for path, body, status, says in BAD_CONTROL:
            answer = client.post(emulated.control + path, content=body)
            assert (answer.status_code, says in answer.text) == (status, True), (path, body[:40])
            assert client.get(emulated.control + "/").json()["outage"] is None  # still serving
        slow = {"mode": "slow", "delay": 0.5}
        state = client.post(emulated.control + "/outage", json=slow).json()
        assert (state["outage"], state["delay"]) == ("slow", 0.5)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_exits_cleanly_on_a_signal(number: int) -> None:
    with emulate("hcaptcha") as emulated:
        control_port = urlsplit(emulated.control).port
        assert control_port is not None
        emulated.process.send_signal(number)
        assert emulated.process.wait(10) == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", control_port), 2).close()


def test_ports_can_be_chosen_and_a_taken_one_is_an_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run(
            [sys.executable, "-m", "captcha_guard", "emulate", "geetest", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert process.returncode == 1
    assert "cannot listen" in process.stderr
