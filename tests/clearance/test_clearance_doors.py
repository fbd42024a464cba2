"""Clearance through both doors on real servers: a verified pass earns a cookie that clears the
rules of its scope, and nothing else (not a fallback, not another scope, not a tampered copy)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from captcha_guard import (
    CaptchaGuard,
    CircuitBreaker,
    Clearance,
    GeeTest,
    ProofOfWork,
    Rule,
    WSGICaptchaGuard,
)
from captcha_guard.testing import GeeTestEmulator, Outage
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.helpers import solve_pow as solve
from tests.servers import serve_asgi, serve_wsgi

SECRET = "clearance-test-secret-0123456789abcdef"
POW_SECRET = "pow-secret-for-clearance-tests-0123"

Door = Callable[..., Any]
DOORS: list[tuple[str, Door, Any, Callable[[Any], AbstractContextManager[str]]]] = [
    ("asgi", CaptchaGuard, echo_asgi, serve_asgi),
    ("wsgi", WSGICaptchaGuard, echo_wsgi, serve_wsgi),
]


@pytest.fixture(params=DOORS, ids=[d[0] for d in DOORS])
def site(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, GeeTestEmulator]]:
    _, door, app, serve = request.param
    emulator = GeeTestEmulator()
    with emulator.serve() as upstream:
        geetest = GeeTest(
            emulator.captcha_id,
            emulator.captcha_key,
            endpoint=upstream.endpoint("/validate"),
            timeout=0.3,
            breaker=CircuitBreaker(failure_threshold=100),
        )
        guard = door(
            app,
            rules=[
                Rule("/comments", clearance=True),
                Rule("/replies", clearance="talk", provider="geetest"),
                Rule("/threads", clearance="talk", provider="geetest"),
                Rule("/login"),
            ],
            provider=ProofOfWork(POW_SECRET, max_number=50),
            providers={"geetest": geetest},
            clearance=Clearance(SECRET, ttl=60, secure=False),  # plain HTTP on loopback
        )
        with serve(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
            yield client, emulator


def _post(client: httpx.Client, path: str, **options: Any) -> httpx.Response:
    """A post that carries exactly the cookies given (the client's jar would add its own)."""
    client.cookies.clear()
    try:
        return client.post(path, **options)
    finally:
        client.cookies.clear()


def _pow(client: httpx.Client) -> dict[str, str]:
    return {"altcha": solve(client.get("/captcha-guard/challenge").json())}


def _cookie(response: httpx.Response) -> tuple[str, str]:
    header = response.headers["set-cookie"]
    name, _, rest = header.partition("=")
    assert "HttpOnly" in header and "SameSite=Lax" in header
    return name, rest.split(";", 1)[0]


def _outcome(response: httpx.Response) -> Any:
    return json.loads(response.content)["outcome"]


def test_a_verified_pass_earns_a_cookie_that_clears_its_rule(
    site: tuple[httpx.Client, GeeTestEmulator],
) -> None:
    client, _ = site
    first = _post(client, "/comments", data=_pow(client))
    assert first.status_code == 200 and _outcome(first) == "passed"
    name, value = _cookie(first)
    again = _post(
        client, "/comments", data={"text": "no captcha"}, headers={"cookie": f"{name}={value}"}
    )
    assert again.status_code == 200 and _outcome(again) == "passed"
    assert "set-cookie" not in again.headers  # a clearance pass earns no new clearance
    # Without the cookie, the rule still wants a captcha.
    bare = _post(client, "/comments", data={"text": "x"})
    assert bare.status_code == 403


def test_a_cookie_clears_only_its_own_scope(site: tuple[httpx.Client, GeeTestEmulator]) -> None:
    client, emulator = site
    name, value = _cookie(_post(client, "/comments", data=_pow(client)))
    for path in ("/login", "/replies", "/threads"):
        assert (
            _post(client, path, data={}, headers={"cookie": f"{name}={value}"}).status_code == 403
        ), path
    # A named scope is shared by the rules that name it.
    talk = _post(client, "/threads", data=emulator.issue())
    assert talk.status_code == 200
    talk_name, talk_value = _cookie(talk)
    assert (
        _post(
            client, "/replies", data={}, headers={"cookie": f"{talk_name}={talk_value}"}
        ).status_code
        == 200
    )


def test_a_tampered_or_foreign_cookie_clears_nothing(
    site: tuple[httpx.Client, GeeTestEmulator],
) -> None:
    client, _ = site
    name, value = _cookie(_post(client, "/comments", data=_pow(client)))
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    assert (
        _post(client, "/comments", data={}, headers={"cookie": f"{name}={flipped}"}).status_code
        == 403
    )
    other_agent = _post(
        client,
        "/comments",
        data={},
        headers={"cookie": f"{name}={value}", "user-agent": "stolen/1.0"},
    )
    assert other_agent.status_code == 403


def test_a_fallback_never_earns_a_clearance(site: tuple[httpx.Client, GeeTestEmulator]) -> None:
    client, emulator = site
    emulator.outage = Outage.HTTP_500
    answer = _post(client, "/threads", data=emulator.issue())
    assert answer.status_code == 200 and _outcome(answer) == "fallback"
    assert "set-cookie" not in answer.headers


def test_clearance_is_checked_at_start_up() -> None:
    with pytest.raises(ValueError, match="clearance"):
        Rule("/x", clearance="no spaces please")
    with pytest.raises(TypeError, match="Clearance"):
        CaptchaGuard(
            echo_asgi,
            rules=[Rule("/x")],
            provider=ProofOfWork(POW_SECRET),
            clearance="secret",  # type: ignore[arg-type]
        )
