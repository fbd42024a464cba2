"""Cap end to end: the emulator of Cap Standalone's siteverify served for real, every error
text of ``standalone/src/siteverify.js`` (``tiagozip/cap``) in its bin, and the provider on its
own."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from captcha_guard import Cap
from captcha_guard._fields import Fields
from captcha_guard._verdict import Fault, ProviderFailure, Verdict
from captcha_guard.providers._base import Claim, ClientRequest
from captcha_guard.providers._faults import CAP
from captcha_guard.testing import CapEmulator
from tests.providers.guarded import Stage, patient, staged
from tests.wire import from_httpx, send_in_process

#: Every answer siteverify.js gives but success, with its status, and the bin it must land in.
#: The statuses alone cannot tell: 404 and 403 are each in two bins.
SITEVERIFY_JS = [
    ("Missing required parameters", 400, Fault.OPERATOR),
    ("Invalid site key or secret", 404, Fault.OPERATOR),
    ("Invalid site key or secret", 403, Fault.OPERATOR),
    ("Token not found", 404, Fault.USER),
    ("Token expired", 403, Fault.USER),
]


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    emulator = CapEmulator()
    emulator.site_keys["0th3rk3y"] = "the-other-keys-secret"
    with emulator.serve() as upstream:

        def make(**options: Any) -> Cap:
            return Cap(
                options.pop("site_key", emulator.site_key),
                options.pop("secret", emulator.secret),
                endpoint=options.pop("endpoint", upstream.url),
                breaker=patient(),
                **options,
            )

        main = make()
        providers = {
            "cap": main,
            "cap-closed": main,
            "wrong-secret": make(secret="not-the-secret"),
            "unknown-key": make(site_key="n0b0dy"),
            "trailing-slash": make(endpoint=upstream.url + "/"),
            "wrong-path": make(endpoint=upstream.url + "/cap"),
        }
        with staged(emulator, upstream, **providers) as stage:
            yield stage


@pytest.fixture
def emulator(stage: Stage) -> Iterator[CapEmulator]:
    emulator = stage.emulator
    assert isinstance(emulator, CapEmulator)
    stage.reset()
    yield emulator
    stage.reset()
    emulator.force_error = None


def test_a_solved_widget_passes(stage: Stage, emulator: CapEmulator) -> None:
    answer = stage.post("cap", {**emulator.issue(), "comment": "hi"})
    assert answer.status_code == 200
    assert (answer.json()["outcome"], answer.json()["reason"]) == ("passed", "ok")


def test_the_request_is_what_cap_standalone_documents(stage: Stage, emulator: CapEmulator) -> None:
    fields = emulator.issue()
    stage.post("trailing-slash", fields)
    (request,) = emulator.requests
    assert (request.method, request.url.path) == ("POST", f"/{emulator.site_key}/siteverify")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "secret": emulator.secret,
        "response": fields["cap-token"],
    }


def test_a_token_verifies_once(stage: Stage, emulator: CapEmulator) -> None:
    fields = emulator.issue()
    assert stage.post("cap", fields).status_code == 200
    again = stage.post("cap", fields)
    assert again.status_code == 403
    assert again.json()["reason"] == "cap: Token not found (HTTP 404)"


def test_an_expired_token_is_403(stage: Stage, emulator: CapEmulator) -> None:
    issued_at = time.time() - emulator.token_lifetime - 1
    emulator.clock = lambda: issued_at
    fields = emulator.issue()
    emulator.clock = time.time
    answer = stage.post("cap", fields)
    assert answer.json()["reason"] == "cap: Token expired (HTTP 403)"


def test_a_token_of_another_site_key_is_403_without_a_call(
    stage: Stage, emulator: CapEmulator
) -> None:
    # Cap would answer "Invalid site key or secret", as it does for our own wrong secret.
    answer = stage.post("cap", emulator.issue(site_key="0th3rk3y"))
    assert answer.status_code == 403
    assert answer.json()["reason"] == "cap-token is for another site key"
    assert emulator.calls == 0


@pytest.mark.parametrize(
    ("route", "status"), [("wrong-secret", 403), ("unknown-key", 404), ("wrong-path", 404)]
)
def test_our_wrong_secret_site_key_or_url_falls_back_and_is_logged(
    stage: Stage, emulator: CapEmulator, route: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    site_key = "n0b0dy" if route == "unknown-key" else None
    answer = stage.post(route, emulator.issue(site_key=site_key))
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"]["fault"] == "operator"
    assert answer.json()["reason"].endswith(f"(HTTP {status})")
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    assert "not-the-secret" not in caplog.text


@pytest.mark.parametrize(("text", "status", "fault"), SITEVERIFY_JS)
def test_every_answer_of_siteverify_js_is_sorted_by_its_text(
    stage: Stage, emulator: CapEmulator, text: str, status: int, fault: Fault
) -> None:
    emulator.force_error = (text, status)
    answer = stage.post("cap", emulator.issue())
    if fault is Fault.USER:
        assert answer.status_code == 403
        assert answer.json()["reason"] == f"cap: {text} (HTTP {status})"
    else:
        assert answer.json()["outcome"] == "fallback"
        assert answer.json()["details"] == {"fault": fault.value, "code": text}


def test_an_unknown_error_text_is_the_clients(stage: Stage, emulator: CapEmulator) -> None:
    emulator.force_error = ("Something new", 400)
    assert stage.post("cap", emulator.issue()).status_code == 403


@pytest.mark.parametrize(
    "value",
    [
        "",
        "d9256640cb53",
        "d9256640cb53:abc",
        "d9256640cb53:abc:def:ghi",
        "d9256640cb53:abc:",
        "d9256640cb53:a c:def",
        "d9256640cb53:abc:def\n",
        "d9256640cb53:" + "a" * 257 + ":def",
    ],
)
def test_a_malformed_token_is_403_without_a_call(
    stage: Stage, emulator: CapEmulator, value: str
) -> None:
    answer = stage.post("cap", {"cap-token": value})
    assert answer.status_code == 403
    assert emulator.calls == 0


# The emulator answers as siteverify.js does, in its order.


def _raw(emulator: CapEmulator, path: str, body: object) -> httpx.Response:
    with httpx.Client(transport=emulator.transport()) as client:
        return client.post("http://cap.test" + path, content=json.dumps(body).encode())


def test_the_emulator_follows_siteverify_js() -> None:
    emulator = CapEmulator()
    token = emulator.token()
    key = emulator.site_key
    cases = [
        (f"/{key}/siteverify", {"secret": "s", "response": "a:b"}, 400),
        (f"/{key}/siteverify", {"secret": "s", "response": "other:b:c"}, 404),
        (f"/{key}/siteverify", {"response": token}, 400),
        (f"/{key}/siteverify", {"secret": "wrong", "response": token}, 403),
        (f"/{key}/siteverify", {"secret": emulator.secret, "response": f"{key}:x:y"}, 404),
        ("/siteverify", {"secret": emulator.secret, "response": token}, 200),  # key from token
        ("/siteverify", {"secret": emulator.secret, "response": token}, 404),  # getdel: spent
        ("/nowhere", {}, 404),
    ]
    for path, body, status in cases:
        assert _raw(emulator, path, body).status_code == status, (path, body)


# The provider on its own.


def _claim(provider: Cap, token: str) -> Claim:
    fields = Fields()
    fields.add("cap-token", token)
    claim = provider.check(fields, ClientRequest("POST", "/", "127.0.0.1", {}, raw={}))
    assert isinstance(claim, Claim)
    return claim


def test_in_process_the_provider_and_emulator_agree() -> None:
    emulator = CapEmulator()
    provider = Cap(emulator.site_key, emulator.secret, endpoint="https://cap.example.com")
    assert provider.endpoint == f"https://cap.example.com/{emulator.site_key}/siteverify"
    claim = _claim(provider, emulator.token())
    result = provider.read_response(claim, send_in_process(emulator, provider.build_request(claim)))
    assert isinstance(result, Verdict) and result.passed


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"success": "yes"}, Fault.PROVIDER),
        (201, {"success": True}, Fault.PROVIDER),
        (500, {"success": False, "error": "Internal server error"}, Fault.PROVIDER),
        (429, {"success": False, "error": "Token not found"}, Fault.PROVIDER),
        (404, {"success": False, "error": "NOT_FOUND"}, Fault.OPERATOR),
        (200, [], Fault.PROVIDER),
    ],
)
def test_odd_answers(status: int, body: object, expected: Fault) -> None:
    provider = Cap("k3y", "secret", endpoint="https://cap.example.com")
    answer = from_httpx(httpx.Response(status, json=body))
    result = provider.read_response(_claim(provider, "k3y:a:b"), answer)
    assert isinstance(result, ProviderFailure) and result.fault is expected


def test_the_table_defaults_to_the_client() -> None:
    assert CAP.lookup("A text Cap adds one day").fault is Fault.USER
    assert CAP.lookup(None).fault is Fault.USER


@pytest.mark.parametrize(
    "build",
    [
        lambda: Cap("", "s", endpoint="https://cap.example.com"),
        lambda: Cap("a/b", "s", endpoint="https://cap.example.com"),
        lambda: Cap("k", " ", endpoint="https://cap.example.com"),
        lambda: Cap("k", "s", endpoint=""),
        lambda: Cap("k", "s", endpoint="cap.example.com"),
    ],
)
def test_bad_configuration_fails_at_construction(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_repr_keeps_the_secret() -> None:
    assert "TopSecret" not in repr(Cap("k", "TopSecret", endpoint="https://cap.example.com"))
