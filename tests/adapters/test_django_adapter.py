"""captcha_guard.django: the middleware, the decorator on function, class-based and DRF views,
sync and async, through Django's test clients, uvicorn (ASGI) and gunicorn (WSGI), against the
GeeTest emulator on loopback."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from captcha_guard.testing import GeeTestEmulator, Outage
from tests import TLS
from tests.adapter_servers import serve_gunicorn
from tests.adapters import adapter_kit, django_harness
from tests.adapters.adapter_kit import check_identity
from tests.adapters.django_harness import gunicorn_env
from tests.adapters.django_site import site_settings
from tests.servers import serve_asgi

# The kit's fixtures, used by name.
emulator = adapter_kit.emulator
served = django_harness.served


@pytest.fixture
def client(emulator: GeeTestEmulator) -> Any:
    from django.test import Client

    return Client(HTTP_ACCEPT="application/json")


def test_a_function_view_runs_with_a_solved_captcha(client: Any, emulator: GeeTestEmulator) -> None:
    fields = emulator.issue()
    passed = client.post("/login/", fields)
    replayed = client.post("/login/", fields)
    bare = client.post("/login/", {"user": "bot"})
    assert passed.json() == {
        "view": "login",
        "verdict": "passed",
        "lot_number": fields["lot_number"],
    }
    assert replayed.status_code == 403
    assert bare.status_code == 403
    assert bare.json() == {"error": "captcha_rejected", "reason": "missing lot_number"}
    assert bare["Cache-Control"] == "no-store"


def test_json_bodies_and_the_header(client: Any, emulator: GeeTestEmulator) -> None:
    nested = client.post(
        "/login/", {"user": "ada", "captcha": emulator.issue()}, content_type="application/json"
    )
    header = client.post(
        "/login/",
        {"user": "ada"},
        content_type="application/json",
        headers={"X-Captcha": urlencode(emulator.issue())},
    )
    bad = client.post("/login/", "{", content_type="application/json")
    assert nested.json()["verdict"] == "passed"
    assert header.json()["verdict"] == "passed"
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


def test_put_forms_are_read_with_django_s_parsers(client: Any, emulator: GeeTestEmulator) -> None:
    put = client.put(
        "/login/", urlencode(emulator.issue()), content_type="application/x-www-form-urlencoded"
    )
    assert put.json()["verdict"] == "passed"


def test_methods_not_judged_run_the_view_with_no_verdict(
    client: Any, emulator: GeeTestEmulator
) -> None:
    assert client.get("/login/").json()["verdict"] is None
    assert client.post("/any/").json()["verdict"] is None
    assert client.get("/any/").status_code == 403


def test_async_views(emulator: GeeTestEmulator) -> None:
    import asyncio

    from django.test import AsyncClient

    async def go() -> list[Any]:
        client = AsyncClient(HTTP_ACCEPT="application/json")
        return [
            await client.post("/alogin/", emulator.issue()),
            await client.post("/alogin/"),
            await client.post("/afeedback/", emulator.issue()),
            await client.post("/login/", emulator.issue()),
        ]

    passed, refused, cbv, sync_view = asyncio.run(go())
    assert passed.json()["verdict"] == "passed"
    assert refused.status_code == 403
    assert cbv.json()["view"] == "afeedback" and cbv.json()["verdict"] == "passed"
    assert sync_view.json()["verdict"] == "passed"


def test_class_based_and_drf_views(client: Any, emulator: GeeTestEmulator) -> None:
    cbv = client.post("/feedback/", emulator.issue())
    drf_form = client.post("/api/signup", emulator.issue())
    drf_json = client.post(
        "/api/signup", {"captcha": emulator.issue()}, content_type="application/json"
    )
    viewset = client.post("/api/comments/", emulator.issue())
    listing = client.get("/api/comments/")
    function = client.post("/api/ping", emulator.issue())
    refused = [client.post(p) for p in ("/feedback/", "/api/signup", "/api/comments/", "/api/ping")]
    assert cbv.json()["verdict"] == "passed"
    assert drf_form.json()["verdict"] == "passed"
    assert drf_json.json()["verdict"] == "passed"
    assert viewset.json()["view"] == "comments-create" and viewset.json()["verdict"] == "passed"
    assert listing.json() == {"view": "comments-list", "verdict": None}
    assert function.json()["verdict"] == "passed"
    assert [r.status_code for r in refused] == [403] * 4
    assert all(r.json()["error"] == "captcha_rejected" for r in refused)


def test_a_named_provider_that_does_not_fail_open(client: Any, emulator: GeeTestEmulator) -> None:
    emulator.outage = Outage.HTTP_500
    strict = client.post("/strict/", emulator.issue())
    lenient = client.post("/login/", emulator.issue())
    assert strict.status_code == 503 and strict.json()["error"] == "captcha_unavailable"
    assert lenient.json()["verdict"] == "fallback"


def test_the_middleware_applies_rules_by_path(client: Any, emulator: GeeTestEmulator) -> None:
    assert client.post("/ruled").status_code == 403
    assert client.post("/ruled", emulator.issue()).json()["verdict"] == "passed"


def test_a_request_is_judged_once(served: tuple[GeeTestEmulator, str]) -> None:
    """A WSGI door in front judged it: the decorator reuses the verdict."""
    from django.core.wsgi import get_wsgi_application

    from captcha_guard import GeeTest, Rule, WSGICaptchaGuard
    from tests.servers import serve_wsgi

    emulator, endpoint = served
    app = WSGICaptchaGuard(
        get_wsgi_application(),
        rules=[Rule("/login/")],
        provider=GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint=endpoint),
    )
    with serve_wsgi(app) as url, httpx.Client(base_url=url, verify=TLS) as http:
        before = len(emulator.requests)
        passed = http.post("/login/", data=emulator.issue())
    assert passed.json()["verdict"] == "passed"
    assert len(emulator.requests) == before + 1
    app.close()


def test_the_refusal_page_is_the_gate_s_translated_page(emulator: GeeTestEmulator) -> None:
    from django.test import Client

    page = Client().post(
        "/login/", HTTP_REFERER="http://testserver/form/", HTTP_ACCEPT_LANGUAGE="fr"
    )
    text = page.content.decode()
    assert page.status_code == 403
    assert page["Content-Type"] == "text/html; charset=utf-8"
    assert page["Cache-Control"] == "no-store"
    assert '<html lang="fr">' in text and "captcha" in text
    assert 'href="/form/"' in text  # a relative way back, to this site only
    elsewhere = Client().post("/login/", HTTP_REFERER="https://evil.example/")
    assert "evil.example" not in elsewhere.content.decode()


def test_a_site_template_overrides_the_refusal_page(
    tmp_path: Any, emulator: GeeTestEmulator
) -> None:
    from django.conf import settings
    from django.test import Client, override_settings

    (tmp_path / "captcha_guard").mkdir()
    (tmp_path / "captcha_guard" / "rejected.html").write_text(
        "{{ status }} {{ denial.error }}: {{ title }}{% if back %} ({{ back }}){% endif %}"
    )
    engine = {**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}
    with override_settings(TEMPLATES=[engine]):
        page = Client().post("/login/", HTTP_REFERER="http://testserver/form/")
    assert page.status_code == 403
    assert page.content.decode() == (
        "403 captcha_rejected: Captcha not accepted (http://testserver/form/)"
    )
    assert page["Cache-Control"] == "no-store"


def test_on_reject_may_return_an_http_response(served: tuple[GeeTestEmulator, str]) -> None:
    from django.http import HttpResponse
    from django.test import Client, override_settings

    emulator, endpoint = served
    config = site_settings(endpoint, emulator.captcha_id, emulator.captcha_key)["CAPTCHA_GUARD"]
    with override_settings(
        CAPTCHA_GUARD={
            **config,
            "on_reject": lambda denial, request: HttpResponse("no", status=429),
        }
    ):
        answer = Client().post("/login/")
    assert (answer.status_code, answer.content) == (429, b"no")
    assert answer["Cache-Control"] == "no-store"


def test_manage_py_check_runs_captcha_guard_check(
    tmp_path: Any, served: tuple[GeeTestEmulator, str]
) -> None:
    import io

    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.test import override_settings

    from captcha_guard._cli import check

    config = tmp_path / "captcha.toml"
    config.write_text(
        'environment = "production"\nprovider = "turnstile"\n'
        '[providers.turnstile]\nsecret = "literal:1x0000000000000000000000000000000AA"\n'
        '[[rules]]\npattern = "/login"\n[[rules]]\npattern = "/login"\n'
    )
    out = io.StringIO()
    check(str(config), probe=False, allow=(), out=out)
    codes = {
        line.rsplit("[", 1)[1].rstrip("]")
        for line in out.getvalue().splitlines()
        if line.startswith("warning:")
    }
    assert codes  # the file has findings
    with override_settings(CAPTCHA_GUARD=str(config)):
        from captcha_guard.django._checks import check_settings

        found = {message.id.removeprefix("captcha_guard.") for message in check_settings()}
        assert found == codes
        with pytest.raises(SystemCheckError):
            call_command(
                "check", "--fail-level", "WARNING", stdout=io.StringIO(), stderr=io.StringIO()
            )
    broken = tmp_path / "broken.toml"
    broken.write_text('provider = "nope"\n')
    with override_settings(CAPTCHA_GUARD=str(broken)):
        from captcha_guard.django._checks import check_settings

        assert [m.id for m in check_settings()] == ["captcha_guard.config"]


# Real servers.


def exercise(url: str, emulator: GeeTestEmulator) -> None:
    with httpx.Client(
        base_url=url, timeout=60, headers={"Accept": "application/json"}, verify=TLS
    ) as http:
        fields = emulator.issue()
        passed = http.post("/login/", data=fields)
        drf = http.post("/api/comments.json", json=emulator.issue())
        refused = http.post("/api/comments.json", json={})
        ruled = http.post("/ruled", data=emulator.issue())
    assert passed.json() == {
        "view": "login",
        "verdict": "passed",
        "lot_number": fields["lot_number"],
    }
    assert drf.json()["verdict"] == "passed"
    assert refused.status_code == 403 and refused.json()["error"] == "captcha_rejected"
    assert ruled.json()["verdict"] == "passed"


def test_under_uvicorn_asgi(emulator: GeeTestEmulator) -> None:
    from django.core.asgi import get_asgi_application

    with serve_asgi(get_asgi_application()) as url:
        exercise(url, emulator)
        with httpx.Client(base_url=url, timeout=60, verify=TLS) as http:
            assert http.post("/alogin/", data=emulator.issue()).json()["verdict"] == "passed"


def test_under_gunicorn(served: tuple[GeeTestEmulator, str]) -> None:
    spec = "django.core.wsgi:get_wsgi_application()"
    with serve_gunicorn(spec, gunicorn_env(served)) as url:
        exercise(url, served[0])


def test_identity_asgi(emulator: GeeTestEmulator) -> None:
    from django.core.asgi import get_asgi_application

    with serve_asgi(get_asgi_application()) as url:
        assert "plain form" in check_identity(url, emulator, "/login/")
        assert "plain form" in check_identity(url, emulator, "/api/signup")


def test_identity_wsgi(served: tuple[GeeTestEmulator, str]) -> None:
    spec = "django.core.wsgi:get_wsgi_application()"
    with serve_gunicorn(spec, gunicorn_env(served)) as url:
        assert "plain form" in check_identity(url, served[0], "/login/")
        assert "plain form" in check_identity(url, served[0], "/api/signup")


def test_clearance_spares_the_next_captcha(served: tuple[GeeTestEmulator, str]) -> None:
    from django.test import RequestFactory, override_settings

    from captcha_guard import Clearance
    from tests.adapters.django_site import views

    emulator, endpoint = served
    config = site_settings(endpoint, emulator.captcha_id, emulator.captcha_key)["CAPTCHA_GUARD"]
    cleared = views.captcha_required(clearance=True)(views.ruled)
    with override_settings(
        CAPTCHA_GUARD={
            **config,
            "clearance": Clearance("django-clearance-secret-0123456789", secure=False),
        }
    ):
        # RequestFactory: a loopback Host over plain HTTP, where a clearance cookie is set.
        factory = RequestFactory(HTTP_HOST="127.0.0.1")
        first = cleared(factory.post("/x", emulator.issue()))
        cookie = first.cookies
        assert first.status_code == 200 and cookie
        request = factory.post("/x")
        request.META["HTTP_COOKIE"] = "; ".join(f"{k}={m.value}" for k, m in cookie.items())
        again = cleared(request)
    assert json.loads(again.content)["verdict"] == "passed"


@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b'{"a": "\xff"}', b"\x00" * 10, b'{"captcha": []}', b"[1, 2]"]
)
@pytest.mark.parametrize("path", ["/login/", "/api/signup"])
def test_bad_json_is_a_4xx_never_a_500(client: Any, path: str, body: bytes) -> None:
    answer = client.post(path, body, content_type="application/json")
    assert 400 <= answer.status_code < 500
