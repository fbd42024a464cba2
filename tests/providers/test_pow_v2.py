"""ProofOfWork(version=2): ALTCHA proof of work v2, judged against the ``altcha`` package's own
v2 solver and verifier (the independent other side), directly and through both doors
(issue 17, section 4)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from altcha import v2 as altcha2

from captcha_guard import CaptchaGuard, Outcome, ProofOfWork, Rule, Verdict, WSGICaptchaGuard
from captcha_guard._fields import FieldError, Fields
from captcha_guard.config import load
from captcha_guard.providers._pow_v2 import IssueBudget, IssueBusy, Kdf
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.config.test_config import POW, problems, write
from tests.helpers import judge_pow
from tests.providers.test_providers_proof_of_work import START, Clock
from tests.servers import serve_asgi, serve_wsgi

SECRET = "test-secret-v2-0123456789abcdef"


def make(**options: Any) -> ProofOfWork:
    options.setdefault("max_number", 50)
    options.setdefault("cost", 10)
    options.setdefault("clock", Clock())
    return ProofOfWork(SECRET, version=2, **options)


def solve(challenge: dict[str, Any]) -> str:
    """What widget 3.x posts back, found by altcha's own v2 solver."""
    parsed = altcha2.Challenge.from_dict(challenge)
    solution = altcha2.solve_challenge(parsed, timeout=30)
    assert solution is not None
    return altcha2.Payload(parsed, solution).to_base64()


def encode(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def judge(provider: ProofOfWork, value: object) -> Verdict:
    """As the gate judges it: check_flow, its replay memory in a MemoryState per provider."""
    fields = Fields()
    fields.add("altcha", value)
    try:
        verdict: Verdict = judge_pow(provider, fields)
    except FieldError as exc:
        return provider.rejected(str(exc))
    return verdict


def test_a_solved_v2_challenge_passes_once() -> None:
    provider = make()
    payload = solve(provider.new_challenge())
    first = judge(provider, payload)
    assert first.outcome is Outcome.PASSED
    assert first.details == {"expires": int(START + 120), "level": 0}
    again = judge(provider, payload)
    assert (again.outcome, again.reason) == (
        Outcome.REJECTED,
        "proof of work: challenge already used",
    )


def test_the_challenge_is_altcha_v2_and_altcha_verifies_it_with_our_keys() -> None:
    """altcha's verifier, given the two signing keys, agrees: its canonical JSON is ours, and
    the key signature is the fast path (one HMAC) it takes."""
    provider = make(clock=lambda: time.time())
    challenge = provider.new_challenge()
    assert set(challenge) == {"parameters", "signature"}
    parameters = challenge["parameters"]
    assert parameters["algorithm"] == "PBKDF2/SHA-256"
    assert parameters["keyLength"] == 32 and len(parameters["keyPrefix"]) == 32
    sign, key_sign = provider._v2_keys
    payload = solve(challenge)
    result = altcha2.verify_solution(payload, sign, hmac_key_secret=key_sign)
    assert result.verified
    assert judge(provider, payload).outcome is Outcome.PASSED


def test_a_challenge_made_by_altcha_with_our_keys_is_judged_as_ours() -> None:
    provider = make()
    sign, key_sign = provider._v2_keys
    made = altcha2.create_challenge(
        "PBKDF2/SHA-256",
        10,
        counter=7,
        expires_at=int(START + 60),
        data={"n": "50"},
        hmac_secret=sign,
        hmac_key_secret=key_sign,
    )
    verdict = judge(provider, solve(made.to_dict()))
    assert verdict.outcome is Outcome.PASSED


def test_verifying_is_hmacs_not_a_kdf_run() -> None:
    """A wrong derived key is refused by its signature: the provider never runs the KDF to
    judge, so a flood of bad solutions costs what v1's does."""
    provider = make(cost=10_000)
    challenge = provider.new_challenge()
    document = {"challenge": challenge, "solution": {"counter": 0, "derivedKey": "ab" * 32}}
    calls: list[int] = []
    kdf = provider.kdf
    assert kdf is not None
    original = type(kdf).derive
    type(kdf).derive = lambda self, salt, password: (
        calls.append(1)
        or original(  # type: ignore[method-assign]
            self, salt, password
        )
    )
    try:
        verdict = judge(provider, encode(document))
    finally:
        type(kdf).derive = original  # type: ignore[method-assign]
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECTED, "proof of work: wrong counter")
    assert calls == []


def tampered(payload: str, change: Any) -> str:
    document = json.loads(base64.b64decode(payload))
    change(document)
    return encode(document)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["challenge"]["parameters"].update(data={"n": "1"}), "bad signature"),
        (lambda d: d["challenge"]["parameters"].update(cost=1), "bad signature"),
        (
            lambda d: d["challenge"]["parameters"].update(expiresAt=int(START) + 10**6),
            "bad signature",
        ),
        (lambda d: d["challenge"]["parameters"].update(keySignature="0" * 64), "bad signature"),
        (lambda d: d["challenge"].update(signature="0" * 64), "bad signature"),
        (lambda d: d["solution"].update(derivedKey="0" * 64), "wrong counter"),
    ],
)
def test_tampering_is_rejected(change: Any, reason: str) -> None:
    provider = make()
    payload = tampered(solve(provider.new_challenge()), change)
    verdict = judge(provider, payload)
    assert (verdict.outcome, verdict.reason) == (Outcome.REJECTED, f"proof of work: {reason}")


def test_another_providers_challenge_is_refused_by_secret_realm_or_lifetime() -> None:
    ours = make()
    for other in (
        ProofOfWork("another-secret-0123456789abcdef", version=2, max_number=50, cost=10),
        make(realm="elsewhere"),
        make(expires=600),
    ):
        payload = solve(other.new_challenge())
        assert judge(ours, payload).reason == "proof of work: bad signature"


def test_a_challenge_of_a_cost_or_level_no_longer_served_is_refused() -> None:
    clock = Clock()
    cheap = ProofOfWork(SECRET, version=2, max_number=50, cost=5, clock=clock)
    payload = solve(cheap.new_challenge())
    # Same secret, path and lifetime, but another cost: the challenge's signature is good.
    dear = ProofOfWork(SECRET, version=2, max_number=50, cost=10, clock=clock)
    assert judge(dear, payload).reason == "proof of work: difficulty not served here"
    fewer = ProofOfWork(SECRET, version=2, max_number=40, cost=5, clock=clock)
    assert judge(fewer, payload).reason == "proof of work: difficulty not served here"


def test_a_challenge_is_good_until_its_expiry_second_and_not_after() -> None:
    clock = Clock()
    provider = make(clock=clock)
    payload = solve(provider.new_challenge())
    clock.now = START + 121
    assert judge(provider, payload).reason == "proof of work: challenge expired"


def test_v1_and_v2_payloads_do_not_cross() -> None:
    v1 = ProofOfWork(SECRET, max_number=50, clock=Clock())
    v2 = make()
    v2_payload = solve(v2.new_challenge())
    assert judge(v1, v2_payload).reason == "malformed altcha"
    from tests.providers.test_providers_proof_of_work import encode as encode_v1
    from tests.providers.test_providers_proof_of_work import solve as solve_v1

    v1_payload = encode_v1(solve_v1(v1.new_challenge()))
    assert judge(v2, v1_payload).reason == "malformed altcha"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        encode([]),
        encode({"challenge": {}, "solution": {}}),
        encode({"challenge": {"parameters": {}, "signature": "0" * 64}, "solution": {}}),
        "A" * 5000,
    ],
)
def test_garbage_is_malformed_not_a_crash(value: str) -> None:
    assert judge(make(), value).reason == "malformed altcha"


def _shape_changes() -> list[Any]:
    p = "parameters"
    return [
        lambda d: d["challenge"][p].update(extra=1),
        lambda d: d["challenge"][p].pop("keySignature"),
        lambda d: d["challenge"][p].update(cost="10"),
        lambda d: d["challenge"][p].update(cost=True),
        lambda d: d["challenge"][p].update(nonce="XYZ"),
        lambda d: d["challenge"][p].update(data={"n": "50", "x": "1"}),
        lambda d: d["challenge"][p].update(data={"n": 50}),
        lambda d: d["challenge"][p].update(algorithm="MD5"),
        lambda d: d["solution"].update(counter=-1),
        lambda d: d["solution"].update(counter=2**32),
        lambda d: d["solution"].update(counter=1.5),
        lambda d: d["solution"].update(derivedKey="AB" * 32),
        lambda d: d["solution"].update(extra=1),
        lambda d: d.update(extra=1),
    ]


@pytest.mark.parametrize("change", _shape_changes())
def test_payloads_of_the_wrong_shape_are_malformed(change: Any) -> None:
    provider = make()
    assert judge(provider, tampered(solve(provider.new_challenge()), change)).reason == (
        "malformed altcha"
    )


def test_scrypt_challenges_round_trip_with_altcha() -> None:
    provider = make(algorithm="SCRYPT", cost=16, memory_cost=1, max_number=10)
    challenge = provider.new_challenge()
    assert challenge["parameters"]["memoryCost"] == 1
    assert judge(provider, solve(challenge)).outcome is Outcome.PASSED


def test_argon2id_challenges_round_trip_with_altcha() -> None:
    provider = make(algorithm="ARGON2ID", cost=1, memory_cost=8, max_number=5)
    challenge = provider.new_challenge()
    assert judge(provider, solve(challenge)).outcome is Outcome.PASSED


@pytest.mark.parametrize(
    "options",
    [
        {"cost": 0},
        {"cost": 10_001},
        {"algorithm": "SHA-256"},
        {"algorithm": "SCRYPT", "cost": 3},
        {"algorithm": "SCRYPT", "cost": 1 << 15},
        {"algorithm": "ARGON2ID", "memory_cost": 1 << 20},
        {"memory_cost": 8},
        {"issue_budget": 0},
        {"issue_budget": 2},
        {"max_number": 2**32},
    ],
)
def test_issuing_costs_are_capped_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        make(**options)


def test_v1_refuses_the_kdf_options() -> None:
    with pytest.raises(ValueError, match="version=2"):
        ProofOfWork(SECRET, cost=10)
    with pytest.raises(ValueError, match="version"):
        ProofOfWork(SECRET, version=3)


def test_the_issue_budget_is_a_share_of_one_core_charged_by_time_taken() -> None:
    clock = Clock(0.0)
    budget = IssueBudget(0.25, clock)

    def work(seconds: float) -> Any:
        def run() -> bytes:
            clock.now += seconds
            return b""

        return run

    budget.run(work(0.5))  # the burst (0.25 s) may be overdrawn by the run in flight
    with pytest.raises(IssueBusy):  # 0.25 - 0.5 + 0.5 s * 0.25 refilled: 0.125 s in debt
        budget.run(work(0.0))
    clock.now += 0.4  # 0.1 s refilled: still in debt
    with pytest.raises(IssueBusy):
        budget.run(work(0.0))
    clock.now += 0.2
    budget.run(work(0.0))


def asgi_guard(provider: ProofOfWork) -> CaptchaGuard:
    return CaptchaGuard(echo_asgi, rules=[Rule("/login")], provider=provider)


def exercise(client: httpx.Client) -> None:
    challenge = client.get("/captcha-guard/challenge")
    assert challenge.status_code == 200
    assert challenge.headers["cache-control"] == "no-store"
    payload = solve(challenge.json())
    passed = client.post("/login", data={"altcha": payload})
    assert passed.status_code == 200
    again = client.post("/login", data={"altcha": payload}, headers={"accept": "json"})
    assert again.status_code == 403
    assert again.json()["reason"] == "proof of work: challenge already used"
    forged = tampered(payload, lambda d: d["solution"].update(derivedKey="0" * 64))
    refused = client.post("/login", data={"altcha": forged}, headers={"accept": "json"})
    assert (refused.status_code, refused.json()["reason"]) == (403, "proof of work: wrong counter")


def busy_conversation(client: httpx.Client) -> None:
    """A spent issuing budget answers 503 captcha_busy with Retry-After, never a 500."""
    answer = client.get("/captcha-guard/challenge")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["error"] == "captcha_busy"


def spent_provider() -> ProofOfWork:
    provider = make(clock=lambda: time.time())
    provider._issue_budget._tokens = -1e9  # as after a flood of GETs
    return provider


def test_through_asgi_under_uvicorn() -> None:
    with (
        serve_asgi(asgi_guard(make(clock=time.time))) as url,
        httpx.Client(base_url=url, verify=TLS) as client,
    ):
        exercise(client)
    with (
        serve_asgi(asgi_guard(spent_provider())) as url,
        httpx.Client(base_url=url, verify=TLS) as client,
    ):
        busy_conversation(client)


def test_through_wsgi_under_wsgiref() -> None:
    guard = WSGICaptchaGuard(echo_wsgi, rules=[Rule("/login")], provider=make(clock=time.time))
    with serve_wsgi(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        exercise(client)
    busy = WSGICaptchaGuard(echo_wsgi, rules=[Rule("/login")], provider=spent_provider())
    with serve_wsgi(busy) as url, httpx.Client(base_url=url, verify=TLS) as client:
        busy_conversation(client)


def test_version_and_the_kdf_from_a_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW + 'version = 2\nalgorithm = "SCRYPT"\ncost = 1024\nmemory_cost = 8\n'
        'parallelism = 1\nissue_budget = 0.5\n[[rules]]\npattern = "/a"\n',
    )
    provider = load(path, environ={}).providers["pow"].provider
    assert isinstance(provider, ProofOfWork)
    assert provider.version == 2
    assert provider.kdf == Kdf("SCRYPT", 1024, 8, 1)
    assert provider.new_challenge()["parameters"]["algorithm"] == "SCRYPT"


def test_bad_v2_settings_in_a_file_point_at_their_keys(tmp_path: Path) -> None:
    path = write(tmp_path, POW + 'version = 3\nalgorithm = "MD5"\n[[rules]]\npattern = "/a"\n')
    found = {p.key: p.message for p in problems(path)}
    assert found["providers.pow.version"] == "must be one of 1, 2"
    assert found["providers.pow.algorithm"].startswith("must be one of PBKDF2/SHA-256")
