"""Every new provider through the WSGI door too (wsgiref on 127.0.0.1, emulators served for
real): the providers are shared, so a pass and a refusal each are enough here; DeepKnow's
``user_id`` callable gets the WSGI environ."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest

from captcha_guard import (
    AliyunCaptcha,
    Cap,
    DeepKnow,
    FriendlyCaptcha,
    HCaptcha,
    ReCaptcha,
    Rule,
    TencentCaptcha,
    Turnstile,
    WSGICaptchaGuard,
)
from captcha_guard.providers import Provider
from captcha_guard.testing import (
    AliyunCaptchaEmulator,
    CapEmulator,
    DeepKnowEmulator,
    Emulator,
    FriendlyCaptchaEmulator,
    HCaptchaEmulator,
    ReCaptchaEmulator,
    TencentCaptchaEmulator,
    TurnstileEmulator,
)
from tests import TLS
from tests.servers import serve_wsgi


def verdict_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    verdict = environ.get("captcha_guard.verdict")
    body = json.dumps({"outcome": verdict.outcome.value, "provider": verdict.provider}).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


def user_from_environ(environ: Any) -> str | None:
    user = environ.get("HTTP_X_USER_ID")
    return str(user) if user else None


Case = tuple[Emulator, Callable[[str], Provider], Callable[[], dict[str, str]], dict[str, str]]


def cases() -> dict[str, Callable[[], Case]]:
    def recaptcha() -> Case:
        e = ReCaptchaEmulator()
        return e, lambda url: ReCaptcha(e.secret, endpoint=url), e.issue, {e.field: "03Aforged"}

    def hcaptcha() -> Case:
        e = HCaptchaEmulator()
        return e, lambda url: HCaptcha(e.secret, endpoint=url), e.issue, {e.field: "P1_forged"}

    def turnstile() -> Case:
        e = TurnstileEmulator()
        return e, lambda url: Turnstile(e.secret, endpoint=url), e.issue, {e.field: "0.forged"}

    def deepknow() -> Case:
        e = DeepKnowEmulator()
        unknown = {"session_id": "0123456789abcdef0123456789abcdef"}
        return (
            e,
            lambda url: DeepKnow(e.secret, scene="login", user_id=user_from_environ, endpoint=url),
            e.issue,
            unknown,
        )

    def aliyun() -> Case:
        e = AliyunCaptchaEmulator()
        forged = json.dumps(
            {"sceneId": e.scene_id, "certifyId": "x", "deviceToken": "d", "data": "d"}
        )
        return (
            e,
            lambda url: AliyunCaptcha(
                e.access_key_id, e.access_key_secret, scene_id=e.scene_id, endpoint=url
            ),
            e.issue,
            {"captchaVerifyParam": forged},
        )

    def tencent() -> Case:
        e = TencentCaptchaEmulator()
        return (
            e,
            lambda url: TencentCaptcha(
                e.secret_id,
                e.secret_key,
                captcha_app_id=e.captcha_app_id,
                app_secret_key=e.app_secret_key,
                endpoint=url,
            ),
            e.issue,
            {"ticket": "tr03forged*", "randstr": "@abc"},
        )

    def friendly() -> Case:
        e = FriendlyCaptchaEmulator()
        return (
            e,
            lambda url: FriendlyCaptcha(e.api_key, endpoint=url + "api/v2/captcha/siteverify"),
            e.issue,
            {"frc-captcha-response": "forged.response"},
        )

    def cap() -> Case:
        e = CapEmulator()
        forged = {"cap-token": f"{e.site_key}:{'0' * 16}:{'0' * 30}"}
        return e, lambda url: Cap(e.site_key, e.secret, endpoint=url), e.issue, forged

    return {
        "tencent": tencent,
        "friendly-captcha": friendly,
        "cap": cap,
        "recaptcha": recaptcha,
        "hcaptcha": hcaptcha,
        "turnstile": turnstile,
        "deepknow": deepknow,
        "aliyun": aliyun,
    }


@contextmanager
def wsgi_site(
    name: str,
) -> Iterator[tuple[Emulator, Callable[[], dict[str, str]], dict[str, str], httpx.Client]]:
    emulator, make, issue, forged = cases()[name]()
    with emulator.serve() as upstream:
        guard = WSGICaptchaGuard(
            validator(verdict_app), rules=[Rule("/login")], provider=make(upstream.endpoint("/"))
        )
        try:
            with (
                serve_wsgi(guard) as url,
                httpx.Client(base_url=url, timeout=10, verify=TLS) as client,
            ):
                yield emulator, issue, forged, client
        finally:
            guard.close()


@pytest.mark.parametrize("name", sorted(cases()))
def test_each_provider_through_the_wsgi_door(name: str) -> None:
    headers = {"x-user-id": "ada", "accept": "application/json"}
    with wsgi_site(name) as (emulator, issue, forged, client):
        passed = client.post("/login", data=issue(), headers=headers)
        refused = client.post("/login", data=forged, headers=headers)
    assert passed.status_code == 200
    assert passed.json() == {"outcome": "passed", "provider": name}
    assert refused.status_code == 403
    assert emulator.calls == 2
    if isinstance(emulator, DeepKnowEmulator):
        assert emulator.claims[0]["user_id"] == "ada"  # from the environ
