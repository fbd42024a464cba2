"""captcha_guard.flask: the decorator and the extension's rules, through Flask's test client,
the Werkzeug server and gunicorn, against the GeeTest emulator on loopback."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from flask import Flask, g

from captcha_guard import GeeTest, Rule, WSGICaptchaGuard
from captcha_guard.flask import CaptchaGuard, captcha_required
from captcha_guard.testing import GeeTestEmulator, Outage
from tests import TLS
from tests.adapter_servers import raw, serve_gunicorn, serve_werkzeug
from tests.adapters import adapter_kit
from tests.adapters.adapter_apps import flask_app
from tests.adapters.adapter_kit import check_identity, emulator_env

# The kit's fixtures, used by name.
emulator = adapter_kit.emulator
served = adapter_kit.served


@pytest.fixture
def app(served: tuple[GeeTestEmulator, str]) -> Flask:
    emulator, endpoint = served
    return flask_app(endpoint, emulator.captcha_id, emulator.captcha_key)


def test_a_protected_view_runs_with_a_solved_captcha_and_sees_the_verdict(
    app: Flask, emulator: GeeTestEmulator
) -> None:
    client = app.test_client()
    fields = emulator.issue()
    passed = client.post("/login", data={"user": "ada", **fields})
    replayed = client.post("/login", data={"user": "ada", **fields})
    bare = client.post("/login", data={"user": "bot"}, headers={"Accept": "application/json"})
    assert passed.json == {
        "view": "login",
        "verdict": "passed",
        "lot_number": fields["lot_number"],
        "user": "ada",
    }
    assert replayed.status_code == 403
    assert bare.status_code == 403
    assert bare.json == {"error": "captcha_rejected", "reason": "missing lot_number"}
    assert bare.headers["Cache-Control"] == "no-store"


def test_json_fields_at_the_top_level_under_captcha_or_in_the_header(
    app: Flask, emulator: GeeTestEmulator
) -> None:
    client = app.test_client()
    top = client.post("/login", json=emulator.issue())
    nested = client.post("/login", json={"user": "ada", "captcha": emulator.issue()})
    header = client.post(
        "/login", json={"user": "ada"}, headers={"X-Captcha": urlencode(emulator.issue())}
    )
    bad_json = client.post("/login", data=b"{", content_type="application/json")
    assert [r.json["verdict"] for r in (top, nested, header)] == ["passed"] * 3
    assert bad_json.status_code == 400
    assert bad_json.json["error"] == "bad_request"


def test_methods_not_judged_run_the_view_with_no_verdict(
    app: Flask, emulator: GeeTestEmulator
) -> None:
    client = app.test_client()
    got = client.get("/shop/orders/7")
    unjudged_post = client.post("/any")
    judged_get = client.get("/any")
    assert got.json["verdict"] is None
    assert unjudged_post.json["verdict"] is None
    assert judged_get.status_code == 403


def test_blueprint_views_and_converters_are_protected(
    app: Flask, emulator: GeeTestEmulator
) -> None:
    client = app.test_client()
    ok = client.post("/shop/orders/7", data=emulator.issue())
    refused = client.post("/shop/orders/7")
    assert ok.json["verdict"] == "passed" and ok.json["order"] == 7
    assert refused.status_code == 403


def test_a_named_provider_that_does_not_fail_open_answers_503_in_an_outage(
    app: Flask, emulator: GeeTestEmulator
) -> None:
    client = app.test_client()
    emulator.outage = Outage.HTTP_500
    strict = client.post("/strict", data=emulator.issue(), headers={"Accept": "application/json"})
    lenient = client.post("/login", data=emulator.issue())
    assert strict.status_code == 503
    assert strict.json["error"] == "captcha_unavailable"
    assert lenient.json["verdict"] == "fallback"


def test_rules_are_matched_by_path_before_the_view(app: Flask, emulator: GeeTestEmulator) -> None:
    client = app.test_client()
    assert client.post("/ruled").status_code == 403
    assert client.post("/ruled", data=emulator.issue()).json["verdict"] == "passed"
    assert client.get("/").text == "home"


def test_a_request_is_judged_once(served: tuple[GeeTestEmulator, str]) -> None:
    """A WSGI door in front, and the extension's rules, both before the decorator: the token
    goes to the vendor once."""
    emulator, endpoint = served
    app = flask_app(endpoint, emulator.captcha_id, emulator.captcha_key)
    wrapped = WSGICaptchaGuard(
        app.wsgi_app,
        rules=[Rule("/login")],
        provider=GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint=endpoint),
    )
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    client = app.test_client()
    before = len(emulator.requests)
    fields = emulator.issue()
    passed = client.post("/login", data=fields)
    assert passed.json["verdict"] == "passed"
    assert len(emulator.requests) == before + 1
    wrapped.close()


def test_init_app_and_the_config_dict_and_on_reject(served: tuple[GeeTestEmulator, str]) -> None:
    emulator, endpoint = served
    from flask import Response

    app = Flask(__name__)
    app.config["CAPTCHA_GUARD"] = {
        "provider": GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint=endpoint)
    }
    guard = CaptchaGuard(on_reject=lambda denial: Response(f"no: {denial.error}", 418))
    guard.init_app(app)

    @app.post("/signup")
    @captcha_required
    def signup() -> str:
        return f"hello {g.captcha.outcome.value}"

    client = app.test_client()
    refused = client.post("/signup")
    assert (refused.status_code, refused.text) == (418, "no: captcha_rejected")
    assert refused.headers["Cache-Control"] == "no-store"
    assert client.post("/signup", data=emulator.issue()).text == "hello passed"


def test_a_captcha_toml_file(
    tmp_path: Any, served: tuple[GeeTestEmulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, endpoint = served
    config = tmp_path / "captcha.toml"
    monkeypatch.setenv("ADAPTER_CAPTCHA_KEY", emulator.captcha_key)
    config.write_text(
        'environment = "test"\nprovider = "geetest"\n[providers.geetest]\n'
        f'captcha_id = "{emulator.captcha_id}"\ncaptcha_key = "env:ADAPTER_CAPTCHA_KEY"\n'
        f'endpoint = "{endpoint}"\n'
    )
    app = Flask(__name__)
    app.config["CAPTCHA_GUARD"] = str(config)
    CaptchaGuard(app)

    @app.post("/signup")
    @captcha_required
    def signup() -> str:
        return g.captcha.outcome.value  # type: ignore[no-any-return]

    client = app.test_client()
    assert client.post("/signup").status_code == 403
    assert client.post("/signup", data=emulator.issue()).text == "passed"


# Real servers.


def exercise(url: str, emulator: GeeTestEmulator) -> None:
    with httpx.Client(base_url=url, timeout=60, verify=TLS) as client:
        fields = emulator.issue()
        passed = client.post("/shop/orders/9", data=fields)
        refused = client.post("/shop/orders/9", headers={"Accept": "application/json"})
        ruled = client.post("/ruled", json={"captcha": emulator.issue()})
    assert passed.json() == {
        "view": "order",
        "verdict": "passed",
        "lot_number": fields["lot_number"],
        "order": 9,
    }
    assert refused.status_code == 403 and refused.json()["error"] == "captcha_rejected"
    assert ruled.json()["verdict"] == "passed"


def test_under_the_werkzeug_server(app: Flask, emulator: GeeTestEmulator) -> None:
    with serve_werkzeug(app) as url:
        exercise(url, emulator)


def test_under_gunicorn(served: tuple[GeeTestEmulator, str]) -> None:
    with serve_gunicorn(
        "tests.adapters.adapter_apps:flask_from_env()", emulator_env(served)
    ) as url:
        exercise(url, served[0])


def test_identity_under_werkzeug(app: Flask, emulator: GeeTestEmulator) -> None:
    with serve_werkzeug(app) as url:
        assert "plain form" in check_identity(url, emulator, "/login")


def test_identity_under_gunicorn(served: tuple[GeeTestEmulator, str]) -> None:
    with serve_gunicorn(
        "tests.adapters.adapter_apps:flask_from_env()", emulator_env(served)
    ) as url:
        assert "plain form" in check_identity(url, served[0], "/login")


# The differential: every path Flask's router maps to a protected view is refused without a
# captcha, however it is spelled.

PROTECTED = {"shop.order", "login", "strict"}
SPELLINGS = [
    "/shop/orders/7",
    "/shop/orders/\u0667",  # ARABIC-INDIC DIGIT SEVEN
    "/shop/orders/\uff17",  # FULLWIDTH DIGIT SEVEN
    "/shop/orders/\U0001d7d5",  # MATHEMATICAL BOLD DIGIT SEVEN
    "/shop/orders/007",
    "/shop/orders/7/",
    "/shop//orders/7",
    "/shop/orders/%37",
    "/SHOP/orders/7",
    "/shop/orders/7;x",
    "/shop/./orders/7",
    "/shop/orders/../orders/7",
    "/login",
    "/login/",
    "/LOGIN",
    "/login%2F",
    "//login",
    "/strict",
    "/strict ",
]


def routed(app: Flask, path: str) -> str | None:
    from urllib.parse import unquote

    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import RequestRedirect

    try:
        endpoint, _ = app.url_map.bind("127.0.0.1").match(unquote(path), "POST")
    except (HTTPException, RequestRedirect):
        return None
    return str(endpoint)


def test_every_path_flask_routes_to_a_protected_view_is_refused(
    app: Flask, emulator: GeeTestEmulator
) -> None:
    from urllib.parse import quote

    reached = set()
    with serve_werkzeug(app) as url:
        for spelling in SPELLINGS:
            target = quote(spelling, safe="/%;.")
            head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json"
            status, body = raw(url, head)
            endpoint = routed(app, spelling)
            if endpoint in PROTECTED:
                reached.add(spelling)
                assert status == 403, (spelling, status, body)
                assert json.loads(body)["error"] == "captcha_rejected"
            assert b'"view"' not in body, (spelling, status, body)
    # The spellings a middleware in front would have to imitate Flask to catch.
    assert {"/shop/orders/\u0667", "/shop/orders/007"} <= reached


def test_clearance_spares_the_next_captcha(served: tuple[GeeTestEmulator, str]) -> None:
    from captcha_guard import Clearance

    emulator, endpoint = served
    app = Flask(__name__)
    CaptchaGuard(
        app,
        provider=GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint=endpoint),
        clearance=Clearance("flask-clearance-secret-0123456789", secure=False),
    )

    @app.post("/comment")
    @captcha_required(clearance=True)
    def comment() -> str:
        return f"{g.captcha.outcome.value} {g.captcha.reason}"

    @app.post("/other")
    @captcha_required(clearance=True)
    def other() -> str:
        return "other"

    client = app.test_client()
    first = client.post("/comment", data=emulator.issue())
    again = client.post("/comment")
    elsewhere = client.post("/other")  # a view's own scope: this one was not cleared
    assert first.status_code == 200 and "set-cookie" in first.headers
    assert again.text == "passed clearance"
    assert elsewhere.status_code == 403


@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b'{"a": "\xff"}', b"\x00" * 10, b'{"captcha": []}', b"[1, 2]"]
)
def test_bad_json_is_a_4xx_never_a_500(app: Flask, body: bytes) -> None:
    answer = app.test_client().post("/login", data=body, content_type="application/json")
    assert 400 <= answer.status_code < 500
