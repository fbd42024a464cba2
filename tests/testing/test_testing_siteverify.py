"""The siteverify emulators behave like the vendors, in-process and served for real."""

from __future__ import annotations

import httpx
import pytest

from captcha_guard import CaptchaGuard, Rule, Turnstile
from captcha_guard.testing import (
    HCaptchaEmulator,
    Outage,
    ReCaptchaEmulator,
    TurnstileEmulator,
)
from captcha_guard.testing._siteverify import (
    HCAPTCHA_TEST_SECRET,
    HCAPTCHA_TEST_TOKEN,
    RECAPTCHA_TEST_SECRET,
    TURNSTILE_TEST_TOKEN,
)
from tests import TLS

URL = "https://siteverify.test/siteverify"


def verify(emulator: object, **form: str) -> dict[str, object]:
    assert isinstance(emulator, ReCaptchaEmulator | HCaptchaEmulator | TurnstileEmulator)
    with httpx.Client(transport=emulator.transport()) as client:
        answer = client.post(URL, data=form)
    assert answer.status_code == 200
    document = answer.json()
    assert isinstance(document, dict)
    return document


def test_recaptcha_v3_answers_score_action_and_hostname_once() -> None:
    emulator = ReCaptchaEmulator(version=3, hostname="shop.example")
    token = emulator.token(score=0.3, action="checkout")
    first = verify(emulator, secret=emulator.secret, response=token)
    assert first["success"] is True
    assert (first["score"], first["action"], first["hostname"]) == (0.3, "checkout", "shop.example")
    assert isinstance(first["challenge_ts"], str) and first["challenge_ts"].endswith("Z")
    again = verify(emulator, secret=emulator.secret, response=token)
    assert again == {"success": False, "error-codes": ["timeout-or-duplicate"]}


def test_recaptcha_v2_answers_carry_no_score() -> None:
    emulator = ReCaptchaEmulator()
    answer = verify(emulator, secret=emulator.secret, response=emulator.token())
    assert answer["success"] is True
    assert "score" not in answer and "action" not in answer


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({}, "missing-input-secret"),
        ({"secret": "wrong", "response": "03Ax"}, "invalid-input-secret"),
        ({"secret": "@"}, "missing-input-response"),
        ({"secret": "@", "response": "03Anever-issued"}, "invalid-input-response"),
    ],
)
def test_recaptcha_refusals(form: dict[str, str], code: str) -> None:
    emulator = ReCaptchaEmulator()
    form = {k: emulator.secret if v == "@" else v for k, v in form.items()}
    assert verify(emulator, **form) == {"success": False, "error-codes": [code]}


def test_recaptcha_test_secret_passes_anything() -> None:
    answer = verify(ReCaptchaEmulator(), secret=RECAPTCHA_TEST_SECRET, response="anything")
    assert answer["success"] is True
    assert answer["hostname"] == "testkey.google.com"


def test_expiry_follows_the_injected_clock() -> None:
    now = [1000.0]
    emulator = HCaptchaEmulator(clock=lambda: now[0])
    token = emulator.token()
    now[0] += 120.0
    fresh = emulator.token()
    now[0] += 0.5
    assert verify(emulator, secret=emulator.secret, response=token)["error-codes"] == [
        "expired-input-response"
    ]
    assert verify(emulator, secret=emulator.secret, response=fresh)["success"] is True


def test_hcaptcha_refusals_and_test_keys() -> None:
    emulator = HCaptchaEmulator()
    spent = emulator.token()
    verify(emulator, secret=emulator.secret, response=spent)
    cases = [
        ({"response": spent}, "already-seen-response"),
        ({"response": "P1_unknown"}, "invalid-or-already-seen-response"),
        ({"response": HCAPTCHA_TEST_TOKEN}, "not-using-dummy-passcode"),
        ({"response": emulator.token(), "sitekey": "not-ours"}, "sitekey-secret-mismatch"),
    ]
    for form, code in cases:
        assert verify(emulator, secret=emulator.secret, **form)["error-codes"] == [code], form
    dummy = verify(emulator, secret=HCAPTCHA_TEST_SECRET, response=HCAPTCHA_TEST_TOKEN)
    assert dummy["success"] is True
    real = verify(emulator, secret=HCAPTCHA_TEST_SECRET, response=emulator.token())
    assert real["error-codes"] == ["not-using-dummy-passcode"]


def test_hcaptcha_enterprise_scores() -> None:
    emulator = HCaptchaEmulator(enterprise=True)
    answer = verify(
        emulator, secret=emulator.secret, response=emulator.token(score=0.9, score_reason=["x"])
    )
    assert (answer["score"], answer["score_reason"]) == (0.9, ["x"])


def test_turnstile_idempotency_key_lets_a_retry_verify_again() -> None:
    emulator = TurnstileEmulator()
    token = emulator.token(action="login", cdata="c")
    first = verify(emulator, secret=emulator.secret, response=token, idempotency_key="k-1")
    retry = verify(emulator, secret=emulator.secret, response=token, idempotency_key="k-1")
    other = verify(emulator, secret=emulator.secret, response=token, idempotency_key="k-2")
    bare = verify(emulator, secret=emulator.secret, response=token)
    assert first["success"] is True and first["action"] == "login" and first["cdata"] == "c"
    assert retry == first
    assert other["error-codes"] == bare["error-codes"] == ["timeout-or-duplicate"]


@pytest.mark.parametrize(
    ("secret", "response", "expected"),
    [
        ("1x0000000000000000000000000000000AA", TURNSTILE_TEST_TOKEN, True),
        ("2x0000000000000000000000000000000AA", TURNSTILE_TEST_TOKEN, ["invalid-input-response"]),
        ("3x0000000000000000000000000000000AA", TURNSTILE_TEST_TOKEN, ["timeout-or-duplicate"]),
        ("1x0000000000000000000000000000000AA", "0.real-token", ["invalid-input-secret"]),
        ("@", TURNSTILE_TEST_TOKEN, ["invalid-input-response"]),
    ],
)
def test_turnstile_test_secrets(secret: str, response: str, expected: object) -> None:
    emulator = TurnstileEmulator()
    answer = verify(
        emulator, secret=emulator.secret if secret == "@" else secret, response=response
    )
    if expected is True:
        assert answer["success"] is True
    else:
        assert answer["error-codes"] == expected


def test_turnstile_takes_json_as_cloudflare_does() -> None:
    emulator = TurnstileEmulator()
    with httpx.Client(transport=emulator.transport()) as client:
        answer = client.post(URL, json={"secret": emulator.secret, "response": emulator.token()})
    assert answer.json()["success"] is True


def test_force_error_answers_any_documented_code() -> None:
    emulator = TurnstileEmulator()
    emulator.force_error = ["internal-error"]
    token = emulator.token()
    assert verify(emulator, secret=emulator.secret, response=token)["error-codes"] == [
        "internal-error"
    ]
    emulator.force_error = None
    assert verify(emulator, secret=emulator.secret, response=token)["success"] is True


def test_in_process_outages_raise_what_httpx_would() -> None:
    emulator = ReCaptchaEmulator()
    expected: dict[Outage, type[Exception] | int] = {
        Outage.REFUSE: httpx.ConnectError,
        Outage.HANG: httpx.ReadTimeout,
        Outage.RESET: httpx.ReadError,
        Outage.HTTP_500: 500,
        Outage.HTTP_429: 429,
    }
    with httpx.Client(transport=emulator.transport()) as client:
        for outage, outcome in expected.items():
            emulator.outage = outage
            if isinstance(outcome, int):
                assert client.post(URL, data={}).status_code == outcome
            else:
                with pytest.raises(outcome):
                    client.post(URL, data={})


@pytest.mark.asyncio
async def test_an_app_under_test_can_use_the_in_process_transport() -> None:
    emulator = TurnstileEmulator()
    provider = Turnstile(emulator.secret, endpoint=URL)
    seen: list[object] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(scope["state"]["captcha"].outcome.value)  # type: ignore[index]
        await send({"type": "http.response.start", "status": 204, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    async with httpx.AsyncClient(transport=emulator.transport()) as upstream:
        guard = CaptchaGuard(app, rules=[Rule("/login")], provider=provider, http_client=upstream)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=guard), base_url="http://app.test"
        ) as browser:
            passed = await browser.post("/login", data=emulator.issue())
            refused = await browser.post("/login", data={"cf-turnstile-response": "0.forged"})
    assert (passed.status_code, refused.status_code) == (204, 403)
    assert seen == ["passed"]


def test_served_for_real_on_loopback() -> None:
    emulator = HCaptchaEmulator()
    with emulator.serve() as server:
        assert server.url.startswith("http://127.0.0.1:")
        answer = httpx.post(
            server.endpoint("/siteverify"),
            data={"secret": emulator.secret, "response": emulator.token()},
            verify=TLS,
        )
    assert answer.json()["success"] is True
    assert emulator.calls == 1
