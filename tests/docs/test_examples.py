"""Every example in ``examples/``, configured from its environment variables, served for real
(uvicorn for ASGI, a threaded wsgiref server for WSGI) against the emulators of
``captcha_guard.testing`` on loopback."""

from __future__ import annotations

import ast
import importlib.util
import itertools
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import altcha
import httpx
import pytest

from captcha_guard.testing import GeeTestEmulator, Outage, TurnstileEmulator
from tests import ROOT, TLS
from tests.servers import serve_asgi, serve_wsgi

EXAMPLES = ROOT / "examples"
_fresh = itertools.count()


def load_example(name: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """Import ``examples/<name>.py`` afresh with ``env`` set, as a server would import it."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(
        f"example_{name}_{next(_fresh)}", EXAMPLES / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # Django imports ROOT_URLCONF by name
    spec.loader.exec_module(module)
    return module


def environment_names(path: Path) -> set[str]:
    """The names the example reads with os.environ[...] or os.environ.get(...)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        target = None
        if isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "setdefault")
            and node.args
        ):
            target, key = node.func.value, node.args[0]
        if (
            target is not None
            and ast.unparse(target) == "os.environ"
            and isinstance(key, ast.Constant)
            and isinstance(key.value, str)
        ):
            names.add(key.value)
    return names


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_each_example_names_its_settings_at_the_top(path: Path) -> None:
    names = environment_names(path)
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert names, "an example takes its secrets from the environment"
    assert "environment variables" in docstring
    for name in names:
        assert name in docstring, f"{name} is read but not documented at the top"


@pytest.fixture
def geetest() -> Iterator[tuple[GeeTestEmulator, str]]:
    emulator = GeeTestEmulator()
    with emulator.serve() as server:
        yield emulator, server.endpoint("/validate")


def geetest_env(emulator: GeeTestEmulator, endpoint: str) -> dict[str, str]:
    return {
        "GEETEST_CAPTCHA_ID": emulator.captcha_id,
        "GEETEST_CAPTCHA_KEY": emulator.captcha_key,
        "GEETEST_ENDPOINT": endpoint,
    }


def test_starlette(monkeypatch: pytest.MonkeyPatch, geetest: tuple[GeeTestEmulator, str]) -> None:
    emulator, endpoint = geetest
    example = load_example("starlette_app", monkeypatch, **geetest_env(emulator, endpoint))
    with serve_asgi(example.app) as url, httpx.Client(base_url=url, verify=TLS) as client:
        fields = emulator.issue()
        signed_in = client.post("/login", data={"username": "ada", **fields})
        replayed = client.post("/login", data={"username": "ada", **fields})
        comment = client.post(
            "/posts/7/comments", json={"text": "hello", "captcha": emulator.issue()}
        )
        headered = client.post(
            "/posts/7/comments",
            json={"text": "hi"},
            headers={"X-Captcha": str(httpx.QueryParams(emulator.issue()))},
        )
        bare = client.post("/posts/7/comments", json={"text": "spam"})
        emulator.outage = Outage.HTTP_500
        during_outage = client.post("/login", data={"username": "ada", **emulator.issue()})
    assert (signed_in.status_code, signed_in.text) == (200, "welcome ada (passed)")
    assert replayed.status_code == 403
    assert comment.json() == {"post": 7, "text": "hello", "captcha": "passed"}
    assert headered.json() == {"post": 7, "text": "hi", "captcha": "passed"}
    assert bare.status_code == 403
    assert bare.json()["error"] == "captcha_rejected"
    assert (during_outage.status_code, during_outage.text) == (200, "welcome ada (fallback)")


def test_wsgi_app_in_an_asgi_server(
    monkeypatch: pytest.MonkeyPatch, geetest: tuple[GeeTestEmulator, str]
) -> None:
    emulator, endpoint = geetest
    example = load_example("wsgi_in_asgi", monkeypatch, **geetest_env(emulator, endpoint))
    with serve_asgi(example.app) as url, httpx.Client(base_url=url, verify=TLS) as client:
        signed = client.post("/sign", data={"name": "ada", **emulator.issue()})
        refused = client.post("/sign", data={"name": "bot"})
        forged = client.post("/sign", data={"name": "bot", **emulator.issue(), "pass_token": "x"})
        page = client.get("/")
        # One keep-alive connection, request after request: the pattern that trips WsgiToAsgi
        # when the WSGI app sets Content-Length (see the example).
        statuses = {client.get("/").status_code for _ in range(20)}
    assert (signed.status_code, signed.text) == (200, "signed by ada")
    assert refused.status_code == 403
    assert forged.status_code == 403
    assert page.text.startswith("guestbook")
    assert statuses == {200}
    assert emulator.calls == 2  # the request without fields never reached GeeTest


def solve(challenge: dict[str, object]) -> str:
    """What the ALTCHA widget posts, computed by the altcha package (the protocol's own)."""
    found = altcha.solve_challenge_v1(
        str(challenge["challenge"]),
        str(challenge["salt"]),
        "SHA-256",
        int(str(challenge["maxnumber"])),
    )
    assert found is not None
    return altcha.PayloadV1(
        "SHA-256",
        str(challenge["challenge"]),
        found.number,
        str(challenge["salt"]),
        str(challenge["signature"]),
    ).to_base64()


def test_flask(monkeypatch: pytest.MonkeyPatch) -> None:
    example = load_example("flask_app", monkeypatch, POW_SECRET="flask-example-secret-0123456789")
    with serve_wsgi(example.app) as url, httpx.Client(base_url=url, verify=TLS) as client:
        page = client.get("/")
        solution = solve(client.get("/captcha-guard/challenge").json())
        posted = client.post("/comments", data={"text": "first!", "altcha": solution})
        replayed = client.post("/comments", data={"text": "again", "altcha": solution})
        unsolved = client.post("/comments", data={"text": "spam"})
    assert (
        '<altcha-widget challenge="/captcha-guard/challenge"'
        ' challengeurl="/captcha-guard/challenge">'
    ) in page.text
    assert posted.json() == {"text": "first!", "captcha": "passed"}
    assert replayed.status_code == 403
    assert unsolved.status_code == 403


def test_django(monkeypatch: pytest.MonkeyPatch, geetest: tuple[GeeTestEmulator, str]) -> None:
    from django.conf import settings
    from django.utils.functional import empty

    # Django's settings are one per process, and other test modules (the differential
    # harnesses) configure them when collected: the example configures its own, as it would
    # in a process of its own, and the previous ones come back after the test.
    # (Swapped by hand: monkeypatch.setattr would first ask inspect.isclass(settings), which
    # reads settings.__class__ and so needs them configured.)
    saved = settings._wrapped
    settings._wrapped = empty
    try:
        emulator, endpoint = geetest
        example = load_example(
            "django_app",
            monkeypatch,
            DJANGO_SECRET_KEY="django-example-secret",
            **geetest_env(emulator, endpoint),
        )
        with (
            serve_wsgi(example.application) as url,
            httpx.Client(base_url=url, verify=TLS) as client,
        ):
            body = {"user": "ada", "captcha": emulator.issue()}
            signed_up = client.post("/api/signup", json=body)
            replayed = client.post("/api/signup", json=body)
            bare = client.post("/api/signup", json={"user": "bot"})
            wrong_method = client.get("/api/signup")
    finally:
        settings._wrapped = saved
    assert signed_up.json() == {"user": "ada", "captcha": "passed"}
    assert replayed.status_code == 403
    assert bare.status_code == 403
    assert json.loads(bare.text)["error"] == "captcha_rejected"
    assert wrong_method.status_code == 405  # not protected, so Django's own view answered


def test_fastapi(monkeypatch: pytest.MonkeyPatch, geetest: tuple[GeeTestEmulator, str]) -> None:
    emulator, endpoint = geetest
    turnstile = TurnstileEmulator(hostname="shop.example")
    with turnstile.serve() as siteverify:
        example = load_example(
            "fastapi_app",
            monkeypatch,
            **geetest_env(emulator, endpoint),
            TURNSTILE_SECRET=turnstile.secret,
            TURNSTILE_ENDPOINT=siteverify.endpoint("/turnstile/v0/siteverify"),
            TURNSTILE_HOSTNAMES="shop.example, www.shop.example",
        )
        with serve_asgi(example.app) as url, httpx.Client(base_url=url, verify=TLS) as client:
            login = client.post("/login", data={"username": "ada", **emulator.issue()})
            token = turnstile.issue()
            signup = client.post("/api/signup", json={"email": "ada@example.com", **token})
            spent = client.post("/api/signup", json={"email": "ada@example.com", **token})
            elsewhere = client.post(
                "/api/signup",
                json={"email": "x@example.com", **turnstile.issue(hostname="evil.example")},
            )
            no_token = client.post("/api/signup", json={"email": "bot@example.com"})
            emulator.outage = Outage.HTTP_500
            turnstile.outage = Outage.HTTP_500
            login_in_outage = client.post("/login", data={"username": "ada", **emulator.issue()})
            signup_in_outage = client.post(
                "/api/signup", json={"email": "ada@example.com", **turnstile.issue()}
            )
    assert login.json() == {"user": "ada", "captcha": "passed", "by": "geetest"}
    assert signup.json() == {"email": "ada@example.com", "captcha": "passed", "by": "turnstile"}
    assert spent.status_code == 403
    assert elsewhere.status_code == 403
    assert no_token.status_code == 403
    assert login_in_outage.json()["captcha"] == "fallback"
    assert signup_in_outage.status_code == 503
    assert signup_in_outage.json()["error"] == "captcha_unavailable"


def test_django_project(geetest: tuple[GeeTestEmulator, str]) -> None:
    """examples/django_project under gunicorn, and its manage.py check, each in a process of
    its own as a site would run them."""
    import subprocess

    from tests.adapter_servers import serve_gunicorn

    emulator, endpoint = geetest
    project = EXAMPLES / "django_project"
    env = {
        "DJANGO_SECRET_KEY": "django-project-secret",
        **geetest_env(emulator, endpoint),
        # The project, then this checkout (not whatever captcha_guard the venv has installed).
        "PYTHONPATH": os.pathsep.join([str(project), str(EXAMPLES.parent)]),
    }
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert "captcha_guard.fail-open-replay" in checked.stderr  # the checks of captcha-guard check
    with (
        serve_gunicorn("site_app.wsgi:application", env) as url,
        httpx.Client(base_url=url, timeout=60, verify=TLS) as client,
    ):
        form = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None
        csrf = {"csrfmiddlewaretoken": token.group(1)}
        signed_in = client.post(
            "/login/", data={**csrf, "username": "ada", "password": "lovelace", **emulator.issue()}
        )
        bare = client.post("/login/", data={**csrf, "username": "ada", "password": "lovelace"})
        forged_csrf = client.post(
            "/login/", data={"username": "ada", "password": "lovelace", **emulator.issue()}
        )
    assert (signed_in.status_code, signed_in.text) == (200, "welcome ada (passed)")
    assert bare.status_code == 403
    assert "The captcha could not be verified" in bare.text  # the gate's page, in English
    assert forged_csrf.status_code == 403 and "CSRF" in forged_csrf.text


def test_flask_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    turnstile = TurnstileEmulator(hostname="shop.example")
    with turnstile.serve() as siteverify:
        example = load_example(
            "flask_adapter",
            monkeypatch,
            TURNSTILE_SECRET=turnstile.secret,
            TURNSTILE_ENDPOINT=siteverify.endpoint("/turnstile/v0/siteverify"),
        )
        with serve_wsgi(example.app) as url, httpx.Client(base_url=url, verify=TLS) as client:
            reviewed = client.post(
                "/shop/orders/7/review", data={"text": "good", **turnstile.issue()}
            )
            bare = client.post("/shop/orders/7/review", data={"text": "spam"})
    assert reviewed.json() == {"order": 7, "text": "good", "captcha": "passed"}
    assert bare.status_code == 403


def test_fastapi_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    from captcha_guard.testing import HCaptchaEmulator

    hcaptcha = HCaptchaEmulator()
    with hcaptcha.serve() as siteverify:
        example = load_example(
            "fastapi_adapter",
            monkeypatch,
            HCAPTCHA_SECRET=hcaptcha.secret,
            HCAPTCHA_ENDPOINT=siteverify.endpoint("/siteverify"),
        )
        with serve_asgi(example.app) as url, httpx.Client(base_url=url, verify=TLS) as client:
            signed = client.post("/api/signup", json={"email": "a@example.com", **hcaptcha.issue()})
            bare = client.post("/api/signup", json={"email": "a@example.com"})
            schema = client.get("/openapi.json").json()
    assert signed.json() == {"email": "a@example.com", "captcha": "passed", "by": "hcaptcha"}
    assert bare.status_code == 403
    assert bare.json()["detail"]["error"] == "captcha_rejected"
    assert schema["paths"]["/api/signup"]["post"]["security"] == [{"captcha": []}]
    assert "h-captcha-response" in schema["components"]["securitySchemes"]["captcha"]["description"]
