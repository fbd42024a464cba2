"""What the gate says and logs: no client input makes it log at ERROR, and no answer tells a
prober what state the provider is in. Every vendor, both doors, real servers, the emulators of
captcha_guard.testing; the "client" is this test sending what any client could send."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from captcha_guard import (
    CaptchaGuard,
    MemoryState,
    ProofOfWork,
    Rule,
    WSGICaptchaGuard,
)
from captcha_guard._responses import FALLBACK_REJECTED_REASON, UNAVAILABLE_REASON
from captcha_guard._verdict import Fault
from captcha_guard.providers._faults import (
    ALIYUN,
    CAP,
    DEEPKNOW,
    FRIENDLY,
    GEETEST,
    SITEVERIFY,
    TENCENT,
    TENCENT_CAPTCHA,
)
from captcha_guard.testing import Outage
from captcha_guard.testing._siteverify import HCAPTCHA_TEST_TOKEN, TURNSTILE_TEST_TOKEN
from tests import TLS
from tests.hardening_kit import CASES, DOORS, RecordingWSGIApp, Site, guarded_site
from tests.helpers import RecordingApp
from tests.servers import serve_asgi, serve_wsgi

#: One client-provokable request: it is given the site and sends whatever it likes.
Attack = Callable[[Site], Any]


def _field(s: Site) -> str:
    (name, *_) = s.issue()
    return name


def _common() -> dict[str, Attack]:
    return {
        "nothing": lambda s: s.post(data={"name": "x"}),
        "junk": lambda s: s.post(data={k: "\x00<script>" for k in s.issue()}),
        "huge": lambda s: s.post(data={k: "A" * 20_000 for k in s.issue()}),
        "twice": lambda s: s.post(content=_twice(s.issue()), headers=_FORM),
        "not json": lambda s: s.post(
            content=b"{nope", headers={"content-type": "application/json"}
        ),
        "nested": lambda s: s.post(json={"captcha": {k: [v] for k, v in s.issue().items()}}),
        "refused": lambda s: s.post(data=s.case.refused(s.emulator)),
        "replayed": _replayed,
    }


_FORM = {"content-type": "application/x-www-form-urlencoded"}
_JSON = {"content-type": "application/json"}


def _twice(fields: dict[str, str]) -> bytes:
    pairs = [f"{k}={v}" for k, v in fields.items()]
    return "&".join(pairs + pairs).encode()


def _replayed(s: Site) -> Any:
    fields = s.issue()
    s.post(data=fields)
    return s.post(data=fields)


def _user_codes(s: Site, codes: list[Any], knob: str) -> None:
    """The vendor answering each of its user-bin codes: what a client's input provokes."""
    for code in codes:
        setattr(s.emulator, knob, code)
        s.post(data=s.issue())
    setattr(s.emulator, knob, None)


def _geetest() -> dict[str, Attack]:
    user = sorted(GEETEST.codes(Fault.USER))
    return {
        "unknown lot": lambda s: s.post(data={**s.issue(), "lot_number": "ab" * 16}),
        "upper lot": lambda s: s.post(data={**s.issue(), "lot_number": "AB" * 16}),
        "gen_time": lambda s: s.post(data={**s.issue(), "gen_time": "1"}),
        "user codes": lambda s: _user_codes(s, user, "force_error"),
    }


def _siteverify(name: str) -> dict[str, Attack]:
    user = [[code] for code in sorted(SITEVERIFY.codes(Fault.USER))] + [["brand-new-code"]]
    attacks: dict[str, Attack] = {
        "other site key": lambda s: s.post(data=s.emulator.issue(sitekey="someone-elses-key")),
        "other hostname": lambda s: s.post(data=s.emulator.issue(hostname="evil.example")),
        "user codes": lambda s: _user_codes(s, user, "force_error"),
        "hcaptcha dummy": lambda s: s.post(data={_field(s): HCAPTCHA_TEST_TOKEN}),
        "turnstile dummy": lambda s: s.post(data={_field(s): TURNSTILE_TEST_TOKEN}),
    }
    return attacks


def _deepknow() -> dict[str, Attack]:
    user = [int(code) for code in sorted(DEEPKNOW.codes(Fault.USER))]
    return {
        "unknown session": lambda s: s.post(data={"session_id": "f" * 32}),
        "blocking action": lambda s: s.post(data=s.emulator.issue(action="block")),
        "other scene": lambda s: s.post(data=s.emulator.issue(scene="pay")),
        "user statuses": lambda s: _user_codes(s, user, "force_status"),
    }


def _aliyun() -> dict[str, Attack]:
    # F004 (test mode), F005/F006 (scene unknown) with our scene_id pinned are the console's
    # state, not anything a client sends: the emulator's knob stands for the operator there.
    verify = [f"F{n:03d}" for n in range(1, 25) if n not in (4, 5, 6)]
    params = sorted(ALIYUN.codes(Fault.USER))
    return {
        "verify codes": lambda s: [s.post(data=s.emulator.issue(verify_code=c)) for c in verify],
        "other scene": lambda s: s.post(data=s.emulator.issue(scene_id="n0tours")),
        "parameter codes": lambda s: _user_codes(s, params, "force_error"),
        "unknown param": lambda s: s.post(data={_field(s): json.dumps({"certifyId": "x"})}),
    }


def _tencent() -> dict[str, Attack]:
    codes = [int(code) for code in sorted(TENCENT_CAPTCHA.codes(Fault.USER))] + [42]
    params = sorted(TENCENT.codes(Fault.USER))
    return {
        "captcha codes": lambda s: _user_codes(s, codes, "force_code"),
        "parameter codes": lambda s: _user_codes(s, params, "force_error"),
        "ticket of another app": lambda s: s.post(data=s.emulator.issue(app_id=190000001)),
        "disaster ticket": lambda s: s.post(data=s.emulator.disaster_ticket()),
        "evil": lambda s: s.post(data=s.emulator.issue(evil_level=100)),
        "wrong randstr": lambda s: s.post(data={**s.issue(), "randstr": "@xyz"}),
    }


def _friendly() -> dict[str, Attack]:
    codes = [*sorted(FRIENDLY.codes(Fault.USER)), "brand_new_code"]
    return {
        "user codes": lambda s: _user_codes(s, codes, "force_error"),
        "other site key": lambda s: s.post(data=s.emulator.issue(sitekey="FCMSOMEONEELSE")),
    }


def _cap() -> dict[str, Attack]:
    codes = [(text, 403) for text in sorted(CAP.codes(Fault.USER))] + [("Brand new", 400)]
    return {
        "user errors": lambda s: _user_codes(s, codes, "force_error"),
        "other site key": lambda s: s.post(data=s.emulator.issue(site_key="0th3rk3y")),
    }


EXTRA: dict[str, Callable[[], dict[str, Attack]]] = {
    "geetest": _geetest,
    "recaptcha": lambda: _siteverify("recaptcha"),
    "hcaptcha": lambda: _siteverify("hcaptcha"),
    "turnstile": lambda: _siteverify("turnstile"),
    "deepknow": _deepknow,
    "aliyun": _aliyun,
    "tencent": _tencent,
    "friendly-captcha": _friendly,
    "cap": _cap,
}


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("captcha_guard") and r.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_no_client_input_makes_an_error_line(
    case: Any, door: str, caplog: pytest.LogCaptureFixture
) -> None:
    attacks = {**_common(), **EXTRA[case.name]()}
    found: dict[str, list[str]] = {}
    with caplog.at_level(logging.DEBUG), guarded_site(case, door=door) as s:
        for name, send in attacks.items():
            caplog.clear()
            send(s)
            if _errors(caplog):
                found[name] = _errors(caplog)
        # The same site still passes an honest user: each attack was judged, none was fatal.
        honest = s.post(data=s.issue())
    assert found == {}
    assert honest.json()["outcome"] == "passed"
    assert s.breaker.state.value == "closed"  # and none of them counted as a provider failure


@pytest.mark.parametrize("door", DOORS)
def test_flooding_the_fallback_guard_in_an_outage_makes_no_error_line(
    door: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = MemoryState(max_entries=3, max_buckets=1)
    with (
        caplog.at_level(logging.DEBUG),
        guarded_site(CASES[0], door=door, client_ip=1, fallback_limit=2, state=state) as s,
    ):
        s.emulator.outage = Outage.HTTP_500
        for n in range(6):  # over one network's budget, then a second network: budget full
            s.post(data=s.issue(), headers={"x-forwarded-for": f"198.51.100.{n // 3}"})
    assert _errors(caplog) == []
    assert any(r.levelno == logging.WARNING for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# No hint in the answers


OUTAGES = [Outage.HTTP_500, Outage.HTTP_429, Outage.GARBAGE, Outage.RESET, Outage.REFUSE]


@pytest.mark.parametrize("door", DOORS)
def test_every_503_reads_the_same_whatever_the_cause(door: str) -> None:
    """HTTP 500, 429, garbage, a reset, a refused connection, an open circuit, an operator
    fault, a full fallback guard: one code, one text. The cause is in the verdict."""
    answers: list[Any] = []
    with guarded_site(CASES[0], door=door, timeout=0.5, failure_threshold=100) as s:
        for outage in OUTAGES:
            s.emulator.outage = outage
            answers.append(s.post("/pay", data=s.issue()))
        s.emulator.outage = None
        s.emulator.force_error = "-50103"  # our captcha id unknown: the operator's fault
        answers.append(s.post("/pay", data=s.issue()))
        s.emulator.force_error = None
        ran = list(s.app.verdicts)
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json() == {"error": "captcha_unavailable", "reason": UNAVAILABLE_REASON}
    assert ran == []  # fail closed: the app never ran


@pytest.mark.parametrize("door", DOORS)
def test_an_open_circuit_and_a_full_guard_read_like_any_outage(door: str) -> None:
    with guarded_site(
        CASES[0], door=door, failure_threshold=1, state=MemoryState(max_entries=1)
    ) as s:
        s.emulator.outage = Outage.HTTP_500
        first = s.post(data=s.issue())  # falls back, fills the guard, opens the circuit
        open_closed = s.post("/pay", data=s.issue())  # circuit open, fail closed
        full = s.post(data=s.issue())  # circuit open, fail open, guard full
        html = s.post(data=s.issue(), headers={"accept": "text/html"})
    assert first.json()["outcome"] == "fallback"
    for answer in (open_closed, full):
        assert answer.status_code == 503
        assert answer.json() == {"error": "captcha_unavailable", "reason": UNAVAILABLE_REASON}
    assert html.status_code == 503
    for word in ("circuit", "open", "HTTP", "timeout", "full", "guard"):
        assert word not in html.text
    assert UNAVAILABLE_REASON in html.text


@pytest.mark.parametrize("door", DOORS)
def test_a_fallback_refusal_403_says_nothing_of_the_outage_or_the_budget(door: str) -> None:
    with guarded_site(CASES[0], door=door, fallback_limit=1, failure_threshold=1000) as s:
        s.emulator.outage = Outage.HTTP_500
        fields = s.issue()
        assert s.post(data=fields).json()["outcome"] == "fallback"
        over = s.post(data=s.issue())  # this network's budget is spent
        html = s.post(data=s.issue(), headers={"accept": "text/html"})
    assert over.status_code == 403
    assert over.json() == {"error": "captcha_rejected", "reason": FALLBACK_REJECTED_REASON}
    for word in ("network", "address", "budget", "fallback", "already"):
        assert word not in html.text.lower()


# ---------------------------------------------------------------------------------------------
# ProofOfWork with a shared store that raises: a 503, never a 500


class _DownStore(MemoryState):
    def remember(self, namespace: str, key: str, ttl: float) -> Any:
        raise ConnectionError("redis: connection refused")


def _solve(challenge: dict[str, Any]) -> str:
    for number in range(challenge["maxnumber"] + 1):
        digest = hashlib.sha256(f"{challenge['salt']}{number}".encode()).hexdigest()
        if digest == challenge["challenge"]:
            payload = {k: challenge[k] for k in ("algorithm", "challenge", "salt", "signature")}
            return base64.b64encode(json.dumps({**payload, "number": number}).encode()).decode()
    raise AssertionError("unsolvable")


@pytest.mark.parametrize("door", DOORS)
def test_a_proof_of_work_store_that_raises_is_a_503(
    door: str, caplog: pytest.LogCaptureFixture
) -> None:
    pow_ = ProofOfWork("s" * 32, max_number=200)
    rules = [Rule("/login")]
    app: Any
    if door == "asgi":
        app = RecordingApp()
        server = serve_asgi(CaptchaGuard(app, rules=rules, provider=pow_, state=_DownStore()))
    else:
        app = RecordingWSGIApp()
        server = serve_wsgi(WSGICaptchaGuard(app, rules=rules, provider=pow_, state=_DownStore()))
    with caplog.at_level(logging.DEBUG), server as url, httpx.Client(verify=TLS) as client:
        challenge = client.get(url + "/captcha-guard/challenge").json()
        answer = client.post(
            url + "/login",
            data={"altcha": _solve(challenge)},
            headers={"accept": "application/json"},
        )
    assert answer.status_code == 503
    assert answer.json() == {"error": "captcha_unavailable", "reason": UNAVAILABLE_REASON}
    assert app.calls == 0
    # A store down is ours to fix: ERROR, with the kind of failure and nothing of the client.
    assert any("ConnectionError" in m for m in _errors(caplog))
