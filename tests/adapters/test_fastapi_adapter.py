"""captcha_guard.fastapi: the dependency beside Pydantic models and forms, def and async def,
APIRouter prefixes and mounts, through FastAPI's TestClient and uvicorn, against the GeeTest
emulator on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from captcha_guard import Clearance, GeeTest, Rule
from captcha_guard.asgi import CaptchaGuard
from captcha_guard.fastapi import Captcha
from captcha_guard.testing import GeeTestEmulator, Outage
from tests import TLS
from tests.adapter_servers import raw
from tests.adapters import adapter_kit
from tests.adapters.adapter_apps import fastapi_app
from tests.servers import serve_asgi

# The kit's fixtures, used by name.
emulator = adapter_kit.emulator
served = adapter_kit.served


@pytest.fixture
def app(served: tuple[GeeTestEmulator, str]) -> Any:
    emulator, endpoint = served
    return fastapi_app(endpoint, emulator.captcha_id, emulator.captcha_key)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def test_a_def_endpoint_with_a_form(client: TestClient, emulator: GeeTestEmulator) -> None:
    fields = emulator.issue()
    passed = client.post("/login", data={"user": "ada", **fields})
    replayed = client.post("/login", data={"user": "ada", **fields})
    bare = client.post("/login", data={"user": "bot"})
    assert passed.json() == {"view": "login", "verdict": "passed", "user": "ada"}
    assert replayed.status_code == 403
    assert bare.status_code == 403
    assert bare.json() == {"detail": {"error": "captcha_rejected", "reason": "missing lot_number"}}
    assert bare.headers["cache-control"] == "no-store"


def test_beside_a_pydantic_body_model(client: TestClient, emulator: GeeTestEmulator) -> None:
    top = emulator.issue()
    at_top = client.post("/signup", json={"email": "a@example.com", **top})
    nested = client.post("/signup", json={"email": "a@example.com", "captcha": emulator.issue()})
    header = client.post(
        "/signup",
        json={"email": "a@example.com"},
        headers={"X-Captcha": urlencode(emulator.issue())},
    )
    bare = client.post("/signup", json={"email": "a@example.com"})
    bad = client.post("/signup", content=b"{", headers={"Content-Type": "application/json"})
    assert at_top.json()["verdict"] == "passed"
    assert at_top.json()["lot_number"] == top["lot_number"]  # the model read what was judged
    assert nested.json()["verdict"] == "passed"
    assert header.json()["verdict"] == "passed"
    assert bare.status_code == 403
    assert bad.status_code in (400, 422)  # FastAPI's own 422 for the body, or the gate's 400


def test_methods_not_judged(client: TestClient, emulator: GeeTestEmulator) -> None:
    assert client.get("/any").json() == {"view": "any", "verdict": None}
    assert client.post("/any").status_code == 403


def test_a_named_provider_that_does_not_fail_open(
    client: TestClient, emulator: GeeTestEmulator
) -> None:
    emulator.outage = Outage.HTTP_500
    strict = client.post("/strict", data=emulator.issue())
    lenient = client.post("/login", data=emulator.issue())
    assert strict.status_code == 503
    assert strict.json()["detail"]["error"] == "captcha_unavailable"
    assert lenient.json()["verdict"] == "fallback"


def test_rules_by_path_and_routers_and_mounts(
    client: TestClient, emulator: GeeTestEmulator
) -> None:
    assert client.post("/ruled").status_code == 403
    assert client.post("/ruled", data=emulator.issue()).json()["verdict"] == "passed"
    assert client.post("/api/v1/orders/3").status_code == 403
    assert client.post("/api/v1/orders/3", data=emulator.issue()).json()["verdict"] == "passed"
    assert client.post("/sub/comments").status_code == 403
    assert client.post("/sub/comments", data=emulator.issue()).json()["verdict"] == "passed"


def test_the_openapi_schema_says_what_to_send(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["captcha"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Captcha")
    assert "lot_number" in scheme["description"] and "captcha_output" in scheme["description"]
    for path in ("/signup", "/login", "/api/v1/orders/{order}", "/strict"):
        assert {"captcha": []} in schema["paths"][path]["post"]["security"], path
    assert "requestBody" in schema["paths"]["/signup"]["post"]  # the model is still the body


def test_a_request_is_judged_once(served: tuple[GeeTestEmulator, str]) -> None:
    emulator, endpoint = served
    app = fastapi_app(endpoint, emulator.captcha_id, emulator.captcha_key)
    gated = CaptchaGuard(
        app,
        rules=[Rule("/login")],
        provider=GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint=endpoint),
    )
    with TestClient(gated) as client:
        before = len(emulator.requests)
        passed = client.post("/login", data=emulator.issue())
    assert passed.json()["verdict"] == "passed"
    assert len(emulator.requests) == before + 1


def test_under_uvicorn(app: Any, emulator: GeeTestEmulator) -> None:
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=60, verify=TLS) as http:
        fields = emulator.issue()
        passed = http.post("/signup", json={"email": "a@example.com", **fields})
        form = http.post("/login", data={"user": "ada", **emulator.issue()})
        refused = http.post("/sub/comments")
    assert passed.json()["lot_number"] == fields["lot_number"]
    assert passed.json()["verdict"] == "passed"
    assert form.json()["verdict"] == "passed"
    assert refused.status_code == 403


# The differential: every path FastAPI routes to a protected operation is refused.

SPELLINGS = [
    "/login",
    "/login/",
    "/LOGIN",
    "//login",
    "/%6Cogin",
    "/signup",
    "/api/v1/orders/3",
    "/api/v1/orders/03",
    "/api/v1/orders/+3",
    "/api/v1/orders/%33",
    "/api/v1//orders/3",
    "/api/v1/orders/3/",
    "/API/v1/orders/3",
    "/sub/comments",
    "/sub/comments/",
    "/sub//comments",
    "/sub/%63omments",
    "/ruled",
    "/strict",
]


def routed(app: Any, path: str) -> bool:
    """Whether Starlette's router (through mounts) runs a protected operation for POST path."""
    from urllib.parse import unquote

    from starlette.routing import Match, Mount

    def search(routes: Any, scope: dict[str, Any]) -> bool:
        for route in routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                if isinstance(route, Mount):
                    inner = {**scope, **child}
                    rest = inner["path"][len(inner.get("root_path", "")) :] or "/"
                    return search(route.routes, {**inner, "path": rest, "root_path": ""})
                return True
        return False

    scope = {"type": "http", "method": "POST", "path": unquote(path), "root_path": ""}
    return search(app.router.routes, scope)


def test_every_path_fastapi_routes_to_a_protected_operation_is_refused(
    app: Any, emulator: GeeTestEmulator
) -> None:
    reached = set()
    with serve_asgi(app) as url:
        for spelling in SPELLINGS:
            head = f"POST {quote(spelling, safe='/%+')} HTTP/1.1\r\nHost: 127.0.0.1"
            status, body = raw(url, head)
            if routed(app, spelling):
                reached.add(spelling)
                assert status == 403, (spelling, status, body)
                assert json.loads(body)["detail"]["error"] == "captcha_rejected"
            assert b'"view"' not in body, (spelling, status, body)
    assert {"/api/v1/orders/03", "/api/v1/orders/%33", "/sub/%63omments", "/%6Cogin"} <= reached


def test_clearance_spares_the_next_captcha(served: tuple[GeeTestEmulator, str]) -> None:
    emulator, endpoint = served
    captcha = Captcha(
        provider=GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint=endpoint),
        clearance=Clearance("fastapi-clearance-secret-0123456789", secure=False),
    )
    cleared = captcha.required(clearance=True)
    app = FastAPI()

    async def comment(request: Request) -> str:
        return str(request.state.captcha.reason)

    app.post("/comment", dependencies=[Depends(cleared)])(comment)
    app.post("/other", dependencies=[Depends(cleared)])(comment)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        first = client.post("/comment", data=emulator.issue())
        again = client.post("/comment")
        elsewhere = client.post("/other")  # an operation's own scope: not cleared
    assert first.status_code == 200 and "set-cookie" in first.headers
    assert again.json() == "clearance"
    assert elsewhere.status_code == 403


@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b'{"a": "\xff"}', b"\x00" * 10, b'{"captcha": []}', b"[1, 2]"]
)
@pytest.mark.parametrize("path", ["/any", "/signup", "/login"])
def test_bad_json_is_a_4xx_never_a_500(client: TestClient, path: str, body: bytes) -> None:
    answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500
