"""reCAPTCHA, hCaptcha and Turnstile end to end: a guarded app under uvicorn, each vendor's
emulator served for real on 127.0.0.1, and every row of the siteverify fault table."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from captcha_guard import HCaptcha, ReCaptcha, Turnstile
from captcha_guard._fields import Fields
from captcha_guard._verdict import Fault, Outcome, ProviderFailure, Verdict
from captcha_guard.providers._base import ClientRequest
from captcha_guard.providers.siteverify import Siteverify
from captcha_guard.testing import (
    HCaptchaEmulator,
    Outage,
    ReCaptchaEmulator,
    SiteverifyEmulator,
    TurnstileEmulator,
)
from tests.providers.guarded import Stage, guarded, patient, post, staged
from tests.wire import as_httpx, from_httpx


@dataclass(frozen=True)
class Vendor:
    name: str
    emulator: Callable[[], SiteverifyEmulator]
    provider: type[Siteverify]
    #: Options of the "strict" route's provider, and issue() options that pass it.
    strict: dict[str, Any] = field(default_factory=dict)
    strict_pass: dict[str, Any] = field(default_factory=dict)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


VENDORS = {
    "recaptcha": Vendor(
        "recaptcha",
        lambda: ReCaptchaEmulator(version=3),
        ReCaptcha,
        strict={"min_score": 0.5, "action": "login", "hostnames": ["LOCALHOST"]},
        strict_pass={"score": 0.7, "action": "login"},
    ),
    "hcaptcha": Vendor(
        "hcaptcha",
        lambda: HCaptchaEmulator(enterprise=True),
        HCaptcha,
        strict={"max_score": 0.5, "sitekey": "e0000000-1111-2222-3333-444444444444"},
        strict_pass={"score": 0.2},
    ),
    "turnstile": Vendor(
        "turnstile",
        lambda: TurnstileEmulator(),
        Turnstile,
        strict={"action": ["login", "signup"], "hostnames": ["localhost"]},
        strict_pass={"action": "signup", "cdata": "session-42"},
    ),
}

USER_CODES = [
    "missing-input-response",
    "invalid-input-response",
    "timeout-or-duplicate",
    "expired-input-response",
    "already-seen-response",
    "invalid-or-already-seen-response",
    "bad-request",
    "a-code-no-vendor-has-documented-yet",
]
OPERATOR_CODES = ["missing-input-secret", "invalid-input-secret"]
SUSPECT_CODES = ["sitekey-secret-mismatch", "not-using-dummy-passcode"]


@dataclass
class SiteStage:
    vendor: Vendor
    stage: Stage

    @property
    def emulator(self) -> SiteverifyEmulator:
        emulator = self.stage.emulator
        assert isinstance(emulator, SiteverifyEmulator)
        return emulator

    def post(self, route: str, data: dict[str, str], **kwargs: Any) -> httpx.Response:
        return self.stage.post(route.replace("@", self.vendor.name), data, **kwargs)


@pytest.fixture(scope="module", params=sorted(VENDORS))
def site(request: pytest.FixtureRequest) -> Iterator[SiteStage]:
    vendor = VENDORS[request.param]
    emulator = vendor.emulator()
    with emulator.serve() as upstream:
        endpoint = upstream.endpoint("/siteverify")

        def make(secret: str = emulator.secret, **options: Any) -> Siteverify:
            options.setdefault("timeout", 5.0)
            return vendor.provider(secret, endpoint=endpoint, breaker=patient(), **options)

        main = make()
        hurried = make(timeout=0.25)
        providers = {
            vendor.name: main,
            f"{vendor.name}-closed": main,
            "hurried": hurried,
            "hurried-closed": hurried,
            "strict": make(**vendor.strict),
            "elsewhere": make(hostnames=["www.example.org"]),
            "wrong-secret": make("0xNotTheSecretOfThisSite"),
        }
        with staged(emulator, upstream, **providers) as stage:
            yield SiteStage(vendor, stage)


@pytest.fixture(autouse=True)
def normal_service(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test that uses the stage finds the vendor in normal service, and leaves it so."""
    if "site" not in request.fixturenames:
        yield
        return
    site: SiteStage = request.getfixturevalue("site")
    site.stage.reset()
    site.emulator.force_error = None
    yield
    site.stage.reset()
    site.emulator.force_error = None


def test_a_solved_widget_passes_and_the_app_gets_the_verdict(site: SiteStage) -> None:
    fields = site.emulator.issue()
    answer = site.post("@", {**fields, "username": "ada"})
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["outcome"] == "passed"
    assert seen["provider"] == site.vendor.name
    assert seen["details"]["hostname"] == "localhost"
    assert "username=ada" in seen["body"]  # the app gets the body it was sent


def test_a_token_verifies_once(site: SiteStage) -> None:
    fields = site.emulator.issue()
    assert site.post("@", fields).status_code == 200
    again = site.post("@", fields)
    assert again.status_code == 403
    assert again.json()["reason"] == f"{site.vendor.name}: {site.emulator.duplicate_code}"


def test_the_vendor_gets_the_secret_the_token_and_the_client_address(site: SiteStage) -> None:
    fields = site.emulator.issue()
    site.post("@", fields)
    (request,) = site.emulator.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form["secret"] == site.emulator.secret
    assert form["response"] == fields[site.emulator.field]
    assert form["remoteip"] == "127.0.0.1"
    if site.vendor.name == "turnstile":
        assert uuid.UUID(form["idempotency_key"]).version == 4
    else:
        assert "idempotency_key" not in form


def test_the_field_name_can_be_changed(site: SiteStage) -> None:
    emulator = site.emulator
    provider = site.vendor.provider(
        emulator.secret, field="captcha", endpoint=site.stage.upstream.endpoint("/siteverify")
    )
    with guarded(provider) as url:
        refused = post(url + "/login", emulator.issue())
        passed = post(url + "/login", {"captcha": emulator.token()})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "missing captcha"
    assert passed.status_code == 200


@pytest.mark.parametrize("code", USER_CODES)
def test_a_refusal_of_the_token_is_403(site: SiteStage, code: str) -> None:
    site.emulator.force_error = [code]
    answer = site.post("@", site.emulator.issue())
    assert answer.status_code == 403
    assert answer.json() == {"error": "captcha_rejected", "reason": f"{site.vendor.name}: {code}"}


@pytest.mark.parametrize("code", OPERATOR_CODES)
def test_a_refusal_of_our_secret_falls_back_and_is_logged(
    site: SiteStage, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    site.emulator.force_error = [code, "invalid-input-response"]
    answer = site.post("@", site.emulator.issue())
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["outcome"] == "fallback"
    assert seen["details"] == {"fault": "operator", "code": code}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert code in errors[0].getMessage()
    assert site.emulator.secret not in caplog.text
    closed = site.post("@-closed", site.emulator.issue())
    assert closed.status_code == 503


@pytest.mark.parametrize("code", SUSPECT_CODES)
def test_a_key_mixup_a_client_can_provoke_is_403_and_logged(
    site: SiteStage, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    site.emulator.force_error = [code]
    answer = site.post("@", site.emulator.issue())
    assert answer.status_code == 403
    # Logged, but at WARNING: a client can provoke it at will, so it must never page anyone.
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert code in caplog.records[0].getMessage()


def test_the_vendors_internal_error_falls_back(
    site: SiteStage, caplog: pytest.LogCaptureFixture
) -> None:
    site.emulator.force_error = ["internal-error"]
    answer = site.post("@", site.emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "provider", "code": "internal-error"}
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert site.post("@-closed", site.emulator.issue()).status_code == 503


@pytest.mark.parametrize("outage", list(Outage))
def test_every_outage_falls_back_or_503(site: SiteStage, outage: Outage) -> None:
    site.emulator.outage = outage
    site.emulator.delay = 2.0  # SLOW: beyond the provider's 0.25 s timeout
    opened = site.post("hurried", site.emulator.issue())
    closed = site.post("hurried-closed", site.emulator.issue())
    assert opened.status_code == 200
    assert opened.json()["outcome"] == "fallback"
    assert opened.json()["details"]["fault"] == "provider"
    assert closed.status_code == 503
    assert closed.json()["error"] == "captcha_unavailable"


def test_a_slow_answer_within_the_timeout_passes(site: SiteStage) -> None:
    site.emulator.outage = Outage.SLOW
    site.emulator.delay = 0.05
    assert site.post("@", site.emulator.issue()).json()["outcome"] == "passed"


def test_a_wrong_secret_falls_back_as_the_operators_fault(
    site: SiteStage, caplog: pytest.LogCaptureFixture
) -> None:
    answer = site.post("wrong-secret", site.emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "operator", "code": "invalid-input-secret"}
    assert "0xNotTheSecretOfThisSite" not in caplog.text


def test_a_token_the_vendor_never_issued_is_403(site: SiteStage) -> None:
    forged = site.emulator.token_prefix + "A" * 400
    answer = site.post("@", {site.emulator.field: forged})
    assert answer.status_code == 403
    assert answer.json()["reason"] == f"{site.vendor.name}: {site.emulator.unknown_code}"


def test_an_expired_token_is_403(site: SiteStage) -> None:
    emulator = site.emulator
    clock = Clock()
    emulator.clock = clock
    try:
        fields = emulator.issue()
        clock.now += emulator.token_lifetime + 1
        answer = site.post("@", fields)
    finally:
        emulator.clock = time.time
    assert answer.status_code == 403
    assert answer.json()["reason"] == f"{site.vendor.name}: {emulator.expired_code}"


def test_a_token_from_another_site_key_is_403(site: SiteStage) -> None:
    emulator = site.emulator
    emulator.keys["attackers-own-secret"] = {"attackers-own-sitekey"}
    fields = emulator.issue(sitekey="attackers-own-sitekey")
    answer = site.post("@", fields)
    assert answer.status_code == 403


def test_a_hostname_outside_the_list_is_403(site: SiteStage) -> None:
    answer = site.post("elsewhere", site.emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"] == f"{site.vendor.name}: hostname not allowed"
    assert (
        site.post("elsewhere", site.emulator.issue(hostname="www.example.org")).status_code == 200
    )


def test_the_strict_checks_pass_a_good_token(site: SiteStage) -> None:
    answer = site.post("strict", site.emulator.issue(**site.vendor.strict_pass))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "passed"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "has space",
        "tab\there",
        "new\nline",
        "nul\x00",
        "é-not-ascii",
        "x" * 4097,
    ],
    ids=["empty", "space", "tab", "newline", "nul", "non-ascii", "too-long"],
)
def test_a_malformed_token_is_403_without_a_call(site: SiteStage, value: str) -> None:
    answer = site.post("@", {site.emulator.field: value})
    assert answer.status_code == 403
    assert answer.json()["reason"] == f"malformed {site.emulator.field}"
    assert site.emulator.calls == 0


def test_a_missing_duplicated_or_non_string_token_is_403_without_a_call(site: SiteStage) -> None:
    name = site.emulator.field
    token = site.emulator.token()
    missing = site.post("@", {"other": "x"})
    twice = site.post(f"@?{name}={token}", {name: token})
    not_text = site.stage.client.post(f"{site.stage.url}/{site.vendor.name}", json={name: 12345})
    assert [missing.status_code, twice.status_code, not_text.status_code] == [403, 403, 403]
    assert missing.json()["reason"] == f"missing {name}"
    assert twice.json()["reason"] == f"duplicated {name}"
    assert not_text.json()["reason"] == f"{name} is not a string"
    assert site.emulator.calls == 0


def test_a_json_api_may_send_the_token_under_captcha(site: SiteStage) -> None:
    token = site.emulator.token()
    answer = site.stage.client.post(
        f"{site.stage.url}/{site.vendor.name}",
        json={"email": "ada@example.org", "captcha": {site.emulator.field: token}},
    )
    assert answer.json()["outcome"] == "passed"


# Vendor-specific checks, each on its own vendor's stage.


@pytest.mark.parametrize("site", ["recaptcha"], indirect=True)
def test_recaptcha_score_action_and_hostname(site: SiteStage) -> None:
    emulator = site.emulator
    cases = [
        ({"score": 0.5, "action": "login"}, 200, None),
        ({"score": 0.3, "action": "login"}, 403, "recaptcha: score 0.3 below 0.5"),
        ({"score": 0.9, "action": "comment"}, 403, "recaptcha: unexpected action"),
        ({"score": 0.9, "action": "login", "hostname": "evil.test"}, 403, "hostname not allowed"),
    ]
    for options, status, reason in cases:
        answer = site.post("strict", emulator.issue(**options))
        assert answer.status_code == status, options
        if reason:
            assert reason in answer.json()["reason"]
        else:
            assert answer.json()["details"]["score"] == 0.5
            assert answer.json()["details"]["action"] == "login"


@pytest.mark.parametrize("site", ["hcaptcha"], indirect=True)
def test_hcaptcha_enterprise_score_and_pinned_sitekey(site: SiteStage) -> None:
    emulator = site.emulator
    high = site.post("strict", emulator.issue(score=0.8, score_reason=["bot"]))
    assert high.status_code == 403
    assert high.json()["reason"] == "hcaptcha: score 0.8 above 0.5"
    low = site.post("strict", emulator.issue(score=0.5, score_reason=["fine"]))
    assert low.json()["details"]["score"] == 0.5
    assert low.json()["details"]["score_reason"] == ["fine"]
    assert "sitekey=e0000000-1111-2222-3333-444444444444" in emulator.requests[-1].content.decode()
    # A token of another of the secret's site keys fails where sitekey= pins ours.
    other_key = "e0000000-9999-9999-9999-999999999999"
    emulator.keys[emulator.secret].add(other_key)
    try:
        assert site.post("strict", emulator.issue(sitekey=other_key)).status_code == 403
        assert site.post("hcaptcha", emulator.issue(sitekey=other_key)).status_code == 200
    finally:
        emulator.keys[emulator.secret].discard(other_key)


@pytest.mark.parametrize("site", ["turnstile"], indirect=True)
def test_turnstile_action_and_cdata(site: SiteStage) -> None:
    emulator = site.emulator
    good = site.post("strict", emulator.issue(action="login", cdata="order-7"))
    assert good.json()["details"]["cdata"] == "order-7"
    assert good.json()["details"]["action"] == "login"
    bad = site.post("strict", emulator.issue(action="comment"))
    assert bad.json()["reason"] == "turnstile: unexpected action"
    assert site.post("strict", emulator.issue()).status_code == 403  # no action at all


# Checks that need their own configuration.


def test_min_score_on_a_v2_secret_is_403_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    emulator = ReCaptchaEmulator(version=2)
    with emulator.serve() as upstream:
        provider = ReCaptcha(
            emulator.secret, min_score=0.5, endpoint=upstream.endpoint("/siteverify")
        )
        with guarded(provider) as url:
            answer = post(url + "/login", emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"] == "recaptcha: no score"
    assert "v2 secret" in caplog.text


def test_max_score_without_enterprise_is_403_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    emulator = HCaptchaEmulator(enterprise=False)
    with emulator.serve() as upstream:
        provider = HCaptcha(
            emulator.secret, max_score=0.5, endpoint=upstream.endpoint("/siteverify")
        )
        with guarded(provider) as url:
            answer = post(url + "/login", emulator.issue())
    assert answer.status_code == 403
    assert "Enterprise" in caplog.text


# The provider on its own: construction, claims and answers that no emulator sends.


def _request(host: str | None = "203.0.113.9") -> ClientRequest:
    return ClientRequest("POST", "/login", host, {}, raw={})


def _fields(**values: object) -> Fields:
    fields = Fields()
    fields.extend(values.items())
    return fields


def test_the_replay_key_is_a_hash_never_the_token() -> None:
    provider = Turnstile("secret")
    token = "0." + "t" * 300
    claim = provider.check(_fields(**{"cf-turnstile-response": token}), _request())
    assert claim.replay_key == "turnstile:" + hashlib.sha256(token.encode()).hexdigest()


def test_remoteip_is_sent_only_for_an_ip_address() -> None:
    provider = ReCaptcha("secret")
    token = {"g-recaptcha-response": "03Atoken"}
    assert provider.check(_fields(**token), _request("::1")).values["remoteip"] == "::1"
    assert "remoteip" not in provider.check(_fields(**token), _request("unix-socket")).values
    assert "remoteip" not in provider.check(_fields(**token), _request(None)).values


def test_each_turnstile_request_gets_its_own_idempotency_key() -> None:
    provider = Turnstile("secret")
    fields = _fields(**{"cf-turnstile-response": "0.abc"})
    first = provider.check(fields, _request())
    second = provider.check(fields, _request())
    assert first.values["idempotency_key"] != second.values["idempotency_key"]
    request = as_httpx(provider.build_request(first))
    assert f"idempotency_key={first.values['idempotency_key']}" in request.content.decode()


def test_defaults_endpoints_and_repr() -> None:
    assert ReCaptcha("s").endpoint == "https://www.google.com/recaptcha/api/siteverify"
    assert HCaptcha("s").endpoint == "https://api.hcaptcha.com/siteverify"
    assert Turnstile("s").endpoint == "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    assert [ReCaptcha("s").field, HCaptcha("s").field, Turnstile("s").field] == [
        "g-recaptcha-response",
        "h-captcha-response",
        "cf-turnstile-response",
    ]
    assert "very-secret" not in repr(Turnstile("very-secret"))


@pytest.mark.parametrize(
    "build",
    [
        lambda: ReCaptcha(""),
        lambda: ReCaptcha("s", min_score=1.5),
        lambda: ReCaptcha("s", min_score=True),
        lambda: ReCaptcha("s", action=""),
        lambda: ReCaptcha("s", action=[]),
        lambda: HCaptcha("s", max_score=-0.1),
        lambda: HCaptcha("s", sitekey=""),
        lambda: Turnstile("s", hostnames=[]),
        lambda: Turnstile("s", hostnames=[""]),
        lambda: Turnstile("s", field=""),
        lambda: Turnstile("s", endpoint="ftp://example.org/"),
        lambda: Turnstile("s", timeout=0),
    ],
)
def test_bad_configuration_fails_at_construction(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize(
    ("status", "body", "fault"),
    [
        (200, b"[]", Fault.PROVIDER),
        (200, b'{"success": "yes"}', Fault.PROVIDER),
        (200, b"{}", Fault.PROVIDER),
        (404, b"<html>not found</html>", Fault.PROVIDER),
        (503, b'{"success": false, "error-codes": ["invalid-input-response"]}', Fault.PROVIDER),
        (429, b"", Fault.PROVIDER),
    ],
)
def test_answers_that_are_not_a_judgement_are_the_providers_fault(
    status: int, body: bytes, fault: Fault
) -> None:
    provider = ReCaptcha("s")
    claim = provider.check(_fields(**{"g-recaptcha-response": "03A"}), _request())
    result = provider.read_response(claim, from_httpx(httpx.Response(status, content=body)))
    assert isinstance(result, ProviderFailure)
    assert result.fault is fault


def test_error_codes_are_bounded_and_a_bare_string_is_read() -> None:
    provider = Turnstile("s")
    claim = provider.check(_fields(**{"cf-turnstile-response": "0.x"}), _request())
    many = {"success": False, "error-codes": ["x" * 500] + ["bad-request"] * 20}
    result = provider.read_response(claim, from_httpx(httpx.Response(200, json=many)))
    assert isinstance(result, Verdict)
    assert result.outcome is Outcome.REJECTED
    assert len(result.reason) < 64 * 8 + 40
    single = {"success": False, "error-codes": "timeout-or-duplicate"}
    result = provider.read_response(claim, from_httpx(httpx.Response(200, json=single)))
    assert isinstance(result, Verdict)
    assert result.reason == "turnstile: timeout-or-duplicate"
