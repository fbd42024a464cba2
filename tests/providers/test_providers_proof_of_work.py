"""ProofOfWork, judged against the altcha package's own solver (the independent other side),
directly and through the front doors."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any
from urllib.parse import urlencode
from wsgiref.validate import validator

import httpx
import pytest
from altcha import PayloadV1, solve_challenge_v1, verify_solution_v1

from captcha_guard import (
    CaptchaGuard,
    GeeTest,
    MemoryState,
    Outcome,
    ProofOfWork,
    Rule,
    Verdict,
    WSGICaptchaGuard,
)
from captcha_guard._effects import Pass
from captcha_guard._fields import FieldError, Fields
from captcha_guard._flow import Gate
from captcha_guard.providers._base import ClientRequest
from captcha_guard.providers.proof_of_work import derive_key
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.helpers import judge_pow
from tests.servers import serve_asgi, serve_wsgi
from tests.wire import client_request, run_flow

SECRET = "test-secret-0123456789abcdef"
START = 1_700_000_000.0
REQUEST = ClientRequest(method="POST", path="/login", client_host=None, headers={}, raw={})


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(**options: Any) -> ProofOfWork:
    options.setdefault("max_number", 1000)
    options.setdefault("clock", Clock())
    return ProofOfWork(SECRET, **options)


def solve(challenge: dict[str, Any]) -> dict[str, Any]:
    """What the widget posts back, as a dict, found by altcha's own solver."""
    solution = solve_challenge_v1(
        challenge["challenge"], challenge["salt"], challenge["algorithm"], challenge["maxnumber"]
    )
    assert solution is not None
    payload = PayloadV1(
        challenge["algorithm"],
        challenge["challenge"],
        solution.number,
        challenge["salt"],
        challenge["signature"],
    )
    return dict(payload.to_dict())


def encode(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def fields_of(value: object, name: str = "altcha") -> Fields:
    fields = Fields()
    fields.add(name, value)
    return fields


def judge(provider: ProofOfWork, payload: object, state: MemoryState | None = None) -> Verdict:
    value = payload if isinstance(payload, str) else encode(payload)
    verdict = judge_pow(provider, fields_of(value), state)
    assert isinstance(verdict, Verdict)
    return verdict


# The provider alone.


def test_a_solved_challenge_passes_once() -> None:
    provider = make()
    payload = solve(provider.new_challenge())
    first = judge(provider, payload)
    assert first.outcome is Outcome.PASSED
    assert first.provider == "proof_of_work"
    second = judge(provider, payload)
    assert second.outcome is Outcome.REJECTED
    assert second.reason == "proof of work: challenge already used"


def test_the_challenge_is_altcha_v1_and_altcha_agrees_with_our_verdict() -> None:
    provider = ProofOfWork(SECRET, max_number=5000, expires=60)
    challenge = provider.new_challenge()
    assert set(challenge) == {"algorithm", "challenge", "maxnumber", "salt", "signature"}
    assert challenge["algorithm"] == "SHA-256"
    assert challenge["maxnumber"] == 5000
    assert "?expires=" in challenge["salt"]
    assert challenge["salt"].endswith("&n=5000&")
    payload = solve(challenge)
    # Signed with the provider's own key, derived from the secret: altcha agrees with that
    # key, and with the bare secret no longer (the bare secret is shared, the key is not).
    key = derive_key(SECRET, "/captcha-guard/challenge", 60)
    assert verify_solution_v1(encode(payload), key) == (True, None)
    assert verify_solution_v1(encode(payload), SECRET) == (False, None)
    assert judge(provider, payload).passed


def test_challenges_are_fresh_each_time() -> None:
    provider = make()
    assert provider.new_challenge()["salt"] != provider.new_challenge()["salt"]


def test_the_salt_carries_the_expiry_from_the_injected_clock() -> None:
    provider = make(expires=120, clock=Clock(START))
    salt = provider.new_challenge()["salt"]
    assert salt.endswith(f"?expires={int(START + 120)}&n=1000&")


def test_a_challenge_is_good_until_its_expiry_second_and_not_after() -> None:
    clock = Clock()
    provider = make(expires=300, clock=clock)
    on_time, late = solve(provider.new_challenge()), solve(provider.new_challenge())
    clock.now = START + 300
    assert judge(provider, on_time).passed
    clock.now = START + 300.001
    verdict = judge(provider, late)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.reason == "proof of work: challenge expired"


def tampered(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**payload, **changes}


def flip(hex_text: str) -> str:
    return ("0" if hex_text[0] != "0" else "1") + hex_text[1:]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda p: tampered(p, number=p["number"] + 1), "wrong number"),
        (lambda p: tampered(p, challenge=flip(p["challenge"])), "wrong number"),
        (lambda p: tampered(p, signature=flip(p["signature"])), "bad signature"),
        # A later expiry written into the salt no longer hashes to the signed challenge.
        (
            lambda p: tampered(p, salt=p["salt"].replace("?expires=1", "?expires=9")),
            "wrong number",
        ),
        # A lower difficulty written into the salt no longer hashes to the signed challenge.
        (lambda p: tampered(p, salt=p["salt"].replace("&n=1000&", "&n=10&")), "wrong number"),
    ],
    ids=["number", "challenge", "signature", "salt-expiry", "salt-difficulty"],
)
def test_tampering_is_rejected(change: Any, reason: str) -> None:
    provider = make()
    verdict = judge(provider, change(solve(provider.new_challenge())))
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.reason == f"proof of work: {reason}"


def test_a_challenge_signed_with_another_secret_is_rejected() -> None:
    clock = Clock()
    theirs = ProofOfWork("another-secret-0123456789", max_number=1000, clock=clock)
    ours = make(clock=clock)
    verdict = judge(ours, solve(theirs.new_challenge()))
    assert verdict.reason == "proof of work: bad signature"


def test_a_self_made_challenge_with_a_recomputed_hash_is_rejected() -> None:
    # The attacker picks salt and number and hashes them honestly; only the HMAC stops them.
    provider = make()
    real = solve(provider.new_challenge())
    salt = real["salt"].split("?")[0][::-1] + "?" + real["salt"].split("?")[1]
    challenge = hashlib.sha256(f"{salt}0".encode()).hexdigest()
    forged = tampered(real, salt=salt, number=0, challenge=challenge)
    assert judge(provider, forged).reason == "proof of work: bad signature"


GARBAGE: dict[str, object] = {
    "not-base64": "%%%not base64%%%",
    "base64-of-text": base64.b64encode(b"hello world").decode(),
    "base64-of-bad-utf8": base64.b64encode(b"\xff\xfe{").decode(),
    "json-array": encode([1, 2, 3]),
    "json-string": encode("payload"),
    "deep-json": base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode()[:2000],
    "too-long": "A" * 5000,
    "empty": "",
}


@pytest.mark.parametrize("value", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_is_malformed_not_a_crash(value: str) -> None:
    provider = make()
    with pytest.raises(FieldError, match="malformed altcha"):
        provider.check(fields_of(value), REQUEST)


def _bad_shapes() -> dict[str, Any]:
    def drop(key: str) -> Any:
        return lambda p: {k: v for k, v in p.items() if k != key}

    shapes: dict[str, Any] = {f"missing-{key}": drop(key) for key in ("algorithm", "number")}
    shapes.update(
        {
            "missing-salt": drop("salt"),
            "missing-challenge": drop("challenge"),
            "missing-signature": drop("signature"),
            "sha-1": lambda p: tampered(p, algorithm="SHA-1"),
            "number-as-string": lambda p: tampered(p, number=str(p["number"])),
            "number-as-float": lambda p: tampered(p, number=float(p["number"])),
            "number-as-bool": lambda p: tampered(p, number=True),
            "number-negative": lambda p: tampered(p, number=-1),
            "number-huge": lambda p: tampered(p, number=10**40),
            "salt-without-expires": lambda p: tampered(p, salt=p["salt"].split("?")[0]),
            "salt-with-two-expires": lambda p: tampered(p, salt=p["salt"] + "expires=9999999999&"),
            "salt-without-difficulty": lambda p: tampered(p, salt=p["salt"].replace("n=1000&", "")),
            "salt-difficulty-zero": lambda p: tampered(p, salt=p["salt"].replace("n=1000", "n=0")),
            "salt-not-a-string": lambda p: tampered(p, salt=12),
            "signature-uppercase": lambda p: tampered(p, signature=p["signature"].upper()),
            "challenge-short": lambda p: tampered(p, challenge=p["challenge"][:10]),
        }
    )
    return shapes


@pytest.mark.parametrize("change", _bad_shapes().values(), ids=_bad_shapes().keys())
def test_payloads_of_the_wrong_shape_are_malformed(change: Any) -> None:
    provider = make()
    payload = change(solve(provider.new_challenge()))
    with pytest.raises(FieldError, match="malformed altcha"):
        provider.check(fields_of(encode(payload)), REQUEST)


def test_the_solution_in_the_wrong_field_is_missing() -> None:
    provider = make()
    payload = encode(solve(provider.new_challenge()))
    with pytest.raises(FieldError, match="missing altcha"):
        provider.check(fields_of(payload, name="captcha"), REQUEST)
    renamed = make(field="pow")
    solved = fields_of(encode(solve(renamed.new_challenge())), name="pow")
    assert judge_pow(renamed, solved).passed


def test_a_field_that_is_not_a_string_or_is_sent_twice_is_refused() -> None:
    provider = make()
    payload = solve(provider.new_challenge())
    with pytest.raises(FieldError, match="not a string"):
        provider.check(fields_of(payload), REQUEST)
    twice = fields_of(encode(payload))
    twice.add("altcha", encode(payload))
    with pytest.raises(FieldError, match="duplicated"):
        provider.check(twice, REQUEST)


def test_a_full_replay_store_refuses_new_solutions_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    state = MemoryState(max_entries=2, clock=clock)
    provider = make(clock=clock, expires=60, escalation=())
    first, second, third = (solve(provider.new_challenge()) for _ in range(3))
    assert judge(provider, first, state).passed
    assert judge(provider, second, state).passed
    refused = judge(provider, third, state)
    assert refused.outcome is Outcome.REJECTED
    assert "retry" in refused.reason
    hint = refused.note.hint
    assert hint is not None and hint.level == logging.WARNING  # a flood can do it: no ERROR
    assert "replay store full" in hint.text
    # The used ones are still refused: nothing was forgotten to make room.
    assert judge(provider, first, state).reason == "proof of work: challenge already used"
    clock.now = START + 61
    fresh = solve(provider.new_challenge())
    assert judge(provider, fresh, state).passed
    # And through the gate the operator hears of a full store, at WARNING: a client can
    # fill it, and only our own misconfiguration logs at ERROR.
    gate = Gate([Rule("/login")], provider)
    route = gate.route("POST", "/login")
    assert route is not None
    with caplog.at_level(logging.WARNING, logger="captcha_guard"):
        for _ in range(2):
            run_flow(
                gate,
                route,
                client_request(client_host=None, content_type="application/x-www-form-urlencoded"),
                body=f"altcha={encode(solve(provider.new_challenge()))}".encode(),
                state=state,
            )
    full = [r for r in caplog.records if "replay store full" in r.getMessage()]
    assert full and all(r.levelno == logging.WARNING for r in full)


def test_failed_solutions_do_not_fill_the_replay_store() -> None:
    state = MemoryState(max_entries=1)
    provider = make()
    for _ in range(5):
        payload = solve(provider.new_challenge())
        judge(provider, tampered(payload, signature=flip(payload["signature"])), state)
    assert state.remembered("pow") == 0
    assert judge(provider, solve(provider.new_challenge()), state).passed


def test_the_gate_never_asks_the_breaker_of_a_local_provider() -> None:
    provider = make()

    class NoBreaker:
        def acquire(self) -> None:
            raise AssertionError("a local provider must not use the breaker")

    provider.breaker = NoBreaker()  # type: ignore[assignment]
    gate = Gate([Rule("/login")], provider)
    route = gate.route("POST", "/login")
    assert route is not None
    decision = run_flow(
        gate,
        route,
        client_request(client_host=None, content_type="application/json"),
        body=json.dumps({"altcha": encode(solve(provider.new_challenge()))}).encode(),
    )
    assert isinstance(decision, Pass)  # the flow's form of the old "a Verdict, no Call"
    step = decision.verdict
    assert isinstance(step, Verdict)
    assert step.passed


@pytest.mark.parametrize(
    ("secret", "options"),
    [
        ("short", {}),
        (b"", {}),
        (SECRET, {"max_number": 0}),
        (SECRET, {"max_number": True}),
        (SECRET, {"max_number": 10**13}),
        (SECRET, {"expires": 0}),
        (SECRET, {"challenge_path": "captcha"}),
        (SECRET, {"field": ""}),
        (SECRET, {"realm": ""}),
        (SECRET, {"escalation": (8, 8)}),
        (SECRET, {"escalation": (1,)}),
        (SECRET, {"escalation": (True,)}),
        (SECRET, {"escalation": "8"}),
        (SECRET, {"max_number": 10**11, "escalation": (100,)}),
    ],
)
def test_bad_configuration_fails_at_construction(secret: Any, options: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        ProofOfWork(secret, **options)


def test_repr_never_shows_the_secret() -> None:
    assert SECRET not in repr(make())
    assert make().name == "proof_of_work"


def test_two_providers_cannot_share_a_challenge_path() -> None:
    with pytest.raises(ValueError, match="two providers"):
        Gate([Rule("/login")], make(), providers={"other": make()})
    shared = make()
    Gate([Rule("/login")], shared, providers={"same": shared})  # the same one twice is fine


# Through the ASGI front door.


def asgi_guard(provider: ProofOfWork) -> CaptchaGuard:
    return CaptchaGuard(echo_asgi, rules=[Rule("/login")], provider=provider)


def exercise(client: httpx.Client) -> None:
    """The whole conversation a browser has with a protected site, over ``client``."""
    served = client.get("/captcha-guard/challenge")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.headers["cache-control"] == "no-store"
    challenge = served.json()
    assert challenge["maxnumber"] == 1000
    payload = encode(solve(challenge))

    body = f"user=ann&altcha={payload}".encode()
    passed = client.post(
        "/login", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert passed.status_code == 200
    assert passed.json() == {"outcome": "passed", "sha256": hashlib.sha256(body).hexdigest()}

    replayed = client.post("/login", data={"altcha": payload}, headers={"accept": "json"})
    assert replayed.status_code == 403
    assert replayed.json() == {
        "error": "captcha_rejected",
        "reason": "proof of work: challenge already used",
    }

    as_json = client.post(
        "/login", json={"captcha": {"altcha": encode(solve(challenge_of(client)))}}
    )
    assert as_json.json()["outcome"] == "passed"
    header = urlencode({"altcha": solve_encoded(client)})  # as URLSearchParams would
    in_header = client.post("/login", json={"user": "ann"}, headers={"x-captcha": header})
    assert in_header.json()["outcome"] == "passed"

    assert client.post("/login", data={"pow": solve_encoded(client)}).status_code == 403
    garbage = client.post("/login", data={"altcha": "%%%"}, headers={"accept": "json"})
    assert garbage.status_code == 403
    assert garbage.json()["reason"] == "malformed altcha"

    # Only GET serves challenges; other paths and methods reach the app untouched.
    assert client.post("/captcha-guard/challenge").json()["outcome"] is None
    assert client.get("/captcha-guard/challenge/").json()["outcome"] is None
    assert client.get("/login").json()["outcome"] is None


def challenge_of(client: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/captcha-guard/challenge").json()
    return document


def solve_encoded(client: httpx.Client) -> str:
    return encode(solve(challenge_of(client)))


def test_through_asgi_under_uvicorn() -> None:
    with serve_asgi(asgi_guard(make())) as url, httpx.Client(base_url=url, verify=TLS) as client:
        exercise(client)


@pytest.mark.asyncio
async def test_through_asgi_in_process() -> None:
    transport = httpx.ASGITransport(app=asgi_guard(make()))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        challenge = (await client.get("/captcha-guard/challenge")).json()
        payload = encode(solve(challenge))
        first = await client.post("/login", data={"altcha": payload})
        second = await client.post("/login", data={"altcha": payload})
    assert first.json()["outcome"] == "passed"
    assert second.status_code == 403


# Through the WSGI front door.


def wsgi_guard(provider: ProofOfWork) -> WSGICaptchaGuard:
    return WSGICaptchaGuard(validator(echo_wsgi), rules=[Rule("/login")], provider=provider)


def test_through_wsgi_under_a_threaded_server() -> None:
    with serve_wsgi(wsgi_guard(make())) as url, httpx.Client(base_url=url, verify=TLS) as client:
        exercise(client)


def test_through_wsgi_in_process() -> None:
    transport = httpx.WSGITransport(app=validator(wsgi_guard(make())))
    with httpx.Client(transport=transport, base_url="http://test") as client:
        exercise(client)


def test_a_named_proof_of_work_is_served_beside_a_remote_default() -> None:
    remote = GeeTest("647f5ed2ed8acb4be36784e01556bb71", "key", endpoint="http://127.0.0.1:9/")
    guard = CaptchaGuard(
        echo_asgi,
        rules=[Rule("/signup", provider="pow"), Rule("/login")],
        provider=remote,
        providers={"pow": make(challenge_path="/pow")},
    )
    with serve_asgi(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        challenge = client.get("/pow").json()
        signed_up = client.post("/signup", data={"altcha": encode(solve(challenge))})
        assert client.get("/captcha-guard/challenge").json()["outcome"] is None
    assert signed_up.json()["outcome"] == "passed"
