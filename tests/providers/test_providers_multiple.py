"""Several providers in one app: named providers, their names in verdicts and logs, and one
breaker each, so one vendor's outage leaves the other's circuit closed."""

from __future__ import annotations

import logging

import pytest

from captcha_guard import CaptchaGuard, CircuitBreaker, ReCaptcha, Rule, Turnstile
from captcha_guard._breaker import State
from captcha_guard.testing import Outage, ReCaptchaEmulator, TurnstileEmulator
from tests.providers.guarded import guarded, post, verdict_echo


def test_one_vendors_outage_does_not_open_the_others_circuit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    google, cloudflare = ReCaptchaEmulator(), TurnstileEmulator()
    with google.serve() as google_server, cloudflare.serve() as cloudflare_server:
        recaptcha = ReCaptcha(
            google.secret,
            endpoint=google_server.endpoint("/recaptcha/api/siteverify"),
            breaker=CircuitBreaker(failure_threshold=2, reset_timeout=3600),
        )
        turnstile = Turnstile(
            cloudflare.secret,
            endpoint=cloudflare_server.endpoint("/turnstile/v0/siteverify"),
            breaker=CircuitBreaker(failure_threshold=2, reset_timeout=3600),
        )
        rules = [Rule("/signup", provider="signup-captcha"), Rule("/login")]
        with guarded(recaptcha, providers={"signup-captcha": turnstile}, rules=rules) as url:
            cloudflare.outage = Outage.HTTP_500
            signups = [post(url + "/signup", cloudflare.issue()).json() for _ in range(3)]
            logins = [post(url + "/login", google.issue()).json() for _ in range(3)]

    assert [s["outcome"] for s in signups] == ["fallback"] * 3
    assert [s["reason"] for s in signups] == ["HTTP 500", "HTTP 500", "circuit open"]
    assert {s["provider"] for s in signups} == {"signup-captcha"}
    assert cloudflare.calls == 2  # the open circuit spared the third call
    assert turnstile.breaker.state is State.OPEN

    assert [s["outcome"] for s in logins] == ["passed"] * 3
    assert {s["provider"] for s in logins} == {"recaptcha"}
    assert google.calls == 3
    assert recaptcha.breaker.state is State.CLOSED

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # One line per provider per interval during an outage (issue 11), naming the cause; the
    # other vendor's healthy calls log nothing.
    assert warnings == ["captcha provider signup-captcha unavailable: HTTP 500"]


def test_an_unknown_provider_name_fails_at_construction() -> None:
    with pytest.raises(ValueError, match=r"unknown provider 'hcaptcha' \(turnstile\)"):
        CaptchaGuard(
            verdict_echo,
            rules=[Rule("/login"), Rule("/signup", provider="hcaptcha")],
            provider=ReCaptcha("secret"),
            providers={"turnstile": Turnstile("secret")},
        )


def test_a_rule_for_the_default_provider_needs_one() -> None:
    with pytest.raises(ValueError, match="provider= is not set"):
        CaptchaGuard(
            verdict_echo, rules=[Rule("/login")], providers={"turnstile": Turnstile("secret")}
        )


def test_a_named_provider_must_be_a_provider() -> None:
    with pytest.raises(TypeError, match="turnstile"):
        CaptchaGuard(
            verdict_echo,
            rules=[Rule("/login", provider="turnstile")],
            providers={"turnstile": "1x0000000000000000000000000000000AA"},  # type: ignore[dict-item]
        )
