"""ProofOfWork cannot be downgraded (issue 8, section 3, first bullet) or flooded into refusing
honest solvers (second bullet): directly, and through both doors on real servers."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from captcha_guard import (
    CaptchaGuard,
    MemoryState,
    Outcome,
    ProofOfWork,
    Rule,
    Verdict,
    WSGICaptchaGuard,
)
from captcha_guard._fields import Fields
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.helpers import judge_pow
from tests.helpers import solve_pow as solve
from tests.servers import serve_asgi, serve_wsgi

SECRET = "shared-secret-0123456789abcdef"
START = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def judge(provider: ProofOfWork, value: str, state: MemoryState | None = None) -> Verdict:
    fields = Fields()
    fields.add("altcha", value)
    verdict = judge_pow(provider, fields, state)
    assert isinstance(verdict, Verdict)
    return verdict


# No downgrade.


def test_two_providers_on_one_secret_refuse_each_others_challenges() -> None:
    clock = Clock()
    cheap = ProofOfWork(SECRET, max_number=100, challenge_path="/pow/cheap", clock=clock)
    dear = ProofOfWork(SECRET, max_number=5000, challenge_path="/pow/dear", clock=clock)
    assert judge(dear, solve(cheap.new_challenge())).reason == "proof of work: bad signature"
    assert judge(cheap, solve(dear.new_challenge())).reason == "proof of work: bad signature"
    # Each still takes its own.
    assert judge(cheap, solve(cheap.new_challenge())).passed
    assert judge(dear, solve(dear.new_challenge())).passed


def test_same_path_and_secret_but_another_difficulty_is_refused() -> None:
    # Two apps (or an old and a new deployment) at the same challenge path on one secret:
    # the key is the same, the difficulty in the signed salt tells them apart.
    clock = Clock()
    cheap = ProofOfWork(SECRET, max_number=100, clock=clock, escalation=())
    dear = ProofOfWork(SECRET, max_number=5000, clock=clock, escalation=())
    refused = judge(dear, solve(cheap.new_challenge()))
    assert refused.outcome is Outcome.REJECTED
    assert refused.reason == "proof of work: difficulty not served here"
    # The other way too: a hard solution is still not one of the cheap provider's levels.
    assert judge(cheap, solve(dear.new_challenge())).reason == (
        "proof of work: difficulty not served here"
    )


def test_a_longer_lived_challenge_of_another_provider_is_refused() -> None:
    clock = Clock()
    lasting = ProofOfWork(SECRET, max_number=100, expires=3600, clock=clock)
    brief = ProofOfWork(SECRET, max_number=100, expires=60, clock=clock)
    assert judge(brief, solve(lasting.new_challenge())).reason == "proof of work: bad signature"


def test_realm_separates_providers_at_the_same_path() -> None:
    clock = Clock()
    shop = ProofOfWork(SECRET, max_number=100, realm="shop", clock=clock)
    forum = ProofOfWork(SECRET, max_number=100, realm="forum", clock=clock)
    assert judge(forum, solve(shop.new_challenge())).reason == "proof of work: bad signature"
    twin = ProofOfWork(SECRET, max_number=100, realm="shop", clock=clock)
    assert judge(twin, solve(shop.new_challenge())).passed


def downgrade_gate_rules() -> dict[str, Any]:
    return {
        "rules": [Rule("/comment", provider="cheap"), Rule("/transfer", provider="dear")],
        "providers": {
            "cheap": ProofOfWork(SECRET, max_number=100, challenge_path="/pow/cheap"),
            "dear": ProofOfWork(SECRET, max_number=20_000, challenge_path="/pow/dear"),
        },
    }


def downgrade_conversation(client: httpx.Client) -> None:
    cheap = client.get("/pow/cheap").json()
    dear = client.get("/pow/dear").json()
    assert (cheap["maxnumber"], dear["maxnumber"]) == (100, 20_000)
    downgraded = client.post("/transfer", data={"altcha": solve(cheap)}, headers={"accept": "json"})
    assert downgraded.status_code == 403
    assert downgraded.json() == {
        "error": "captcha_rejected",
        "reason": "proof of work: bad signature",
    }
    # The refused cheap solution was not spent: it still serves the route it was made for.
    assert client.post("/comment", data={"altcha": solve(cheap)}).json()["outcome"] == "passed"
    assert client.post("/transfer", data={"altcha": solve(dear)}).json()["outcome"] == "passed"


def test_no_downgrade_through_asgi_under_uvicorn() -> None:
    guard = CaptchaGuard(echo_asgi, **downgrade_gate_rules())
    with serve_asgi(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        downgrade_conversation(client)


def test_no_downgrade_through_wsgi_under_wsgiref() -> None:
    guard = WSGICaptchaGuard(echo_wsgi, **downgrade_gate_rules())
    with serve_wsgi(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        downgrade_conversation(client)


# No lock-out by flooding.


def test_a_full_level_sends_new_challenges_one_level_up_and_honest_solvers_pass() -> None:
    clock = Clock()
    state = MemoryState(max_entries=3, clock=clock)
    provider = ProofOfWork(SECRET, max_number=50, expires=60, clock=clock, escalation=(8, 64))
    assert provider.levels == (50, 400, 3200)
    # The flood: cheap solutions fill the first level's memory.
    hoard = [provider.new_challenge() for _ in range(5)]
    assert {c["maxnumber"] for c in hoard} == {50}
    for challenge in hoard[:3]:
        assert judge(provider, solve(challenge), state).passed
    full = judge(provider, solve(hoard[3]), state)
    assert full.reason == "proof of work: too many recent solutions, retry"
    assert full.details == {"level": 0}  # expected under attack: not a misconfiguration
    # From now on this process serves the next level, and an honest solver passes there.
    honest = provider.new_challenge()
    assert honest["maxnumber"] == 400
    assert "&n=400&" in honest["salt"]
    verdict = judge(provider, solve(honest), state)
    assert verdict.passed
    assert verdict.details["level"] == 1
    # Hoarded cheap challenges still only compete for the cheap level's room.
    assert judge(provider, solve(hoard[4]), state).reason.endswith("retry")
    assert state.remembered("pow:1") == 1
    # One challenge lifetime after the last refusal the cheap level is served again: every
    # entry it held has expired, since none of its challenges was issued meanwhile.
    clock.now = START + 59
    assert provider.new_challenge()["maxnumber"] == 400
    clock.now = START + 61
    back = provider.new_challenge()
    assert back["maxnumber"] == 50
    assert judge(provider, solve(back), state).passed


def test_only_the_top_level_full_says_so_and_at_most_as_a_warning() -> None:
    # A flood can fill the top level too: a client must not be able to write ERROR lines
    # (issue 15), so the hint is a SUSPECT detail (logged at WARNING), not a misconfiguration.
    clock = Clock()
    provider = ProofOfWork(
        SECRET,
        max_number=20,
        expires=60,
        clock=clock,
        escalation=(4,),
    )
    provider_state = MemoryState(max_entries=1, clock=clock)
    cheap = [provider.new_challenge() for _ in range(2)]
    assert judge(provider, solve(cheap[0]), provider_state).passed
    assert judge(provider, solve(cheap[1]), provider_state).details == {"level": 0}
    dear = [provider.new_challenge() for _ in range(2)]
    assert {c["maxnumber"] for c in dear} == {80}
    assert judge(provider, solve(dear[0]), provider_state).passed
    top = judge(provider, solve(dear[1]), provider_state)
    assert top.details == {"level": 1}
    hint = top.note.hint
    assert hint is not None and hint.level == logging.WARNING  # a suspect, never an ERROR
    assert "replay store full at the top difficulty" in hint.text
    assert provider.level() == 1  # the top level is served even when it is full


def test_a_nearly_full_level_stops_being_served_before_it_refuses() -> None:
    # Challenges already handed out (honest users still typing) find room when they return.
    clock = Clock()
    state = MemoryState(capacities={"pow": 10}, clock=clock)
    provider = ProofOfWork(SECRET, max_number=20, expires=60, clock=clock, escalation=(8,))
    in_flight = provider.new_challenge()
    for _ in range(8):
        assert judge(provider, solve(provider.new_challenge()), state).passed
    assert provider.new_challenge()["maxnumber"] == 20  # 8 of 10: still served
    assert judge(provider, solve(provider.new_challenge()), state).passed  # 9 of 10
    assert provider.new_challenge()["maxnumber"] == 160
    assert judge(provider, solve(in_flight), state).passed  # the tenth, and last, place
    clock.now = START + 61
    assert provider.new_challenge()["maxnumber"] == 20


def test_one_state_for_all_levels_keeps_levels_apart_by_namespace() -> None:
    state = MemoryState()
    provider = ProofOfWork(SECRET, max_number=50, clock=Clock())
    assert judge(provider, solve(provider.new_challenge()), state).passed
    (key,) = state._memory["pow"]._expiry  # the namespace of the level, then 128 bits
    assert key.startswith("pow:") and len(key) == len("pow:") + 32
    assert state.remembered("pow:1") == 0


def flood_conversation(client: httpx.Client) -> None:
    """Fill the cheap level through the door with hoarded challenges, then solve as an honest
    user would."""
    hoard = [client.get("/c").json() for _ in range(3)]
    assert {c["maxnumber"] for c in hoard} == {30}
    for challenge in hoard[:2]:
        passed = client.post("/login", data={"altcha": solve(challenge)})
        assert passed.json()["outcome"] == "passed"
    refused = client.post("/login", data={"altcha": solve(hoard[2])}, headers={"accept": "json"})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "proof of work: too many recent solutions, retry"
    honest = client.get("/c").json()
    assert honest["maxnumber"] == 240
    assert client.post("/login", data={"altcha": solve(honest)}).json()["outcome"] == "passed"


def flood_provider() -> ProofOfWork:
    return ProofOfWork(SECRET, max_number=30, challenge_path="/c", escalation=(8, 64))


def test_flood_escalates_through_asgi_under_uvicorn() -> None:
    guard = CaptchaGuard(
        echo_asgi,
        rules=[Rule("/login")],
        provider=flood_provider(),
        state=MemoryState(max_entries=2),
    )
    with serve_asgi(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        flood_conversation(client)


def test_flood_escalates_through_wsgi_under_wsgiref() -> None:
    guard = WSGICaptchaGuard(
        echo_wsgi,
        rules=[Rule("/login")],
        provider=flood_provider(),
        state=MemoryState(max_entries=2),
    )
    with serve_wsgi(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        flood_conversation(client)


@pytest.mark.parametrize("realm", ["/captcha-guard/challenge", "custom"])
def test_repr_shows_levels_not_the_secret(realm: str) -> None:
    provider = ProofOfWork(SECRET, realm=realm)
    assert SECRET not in repr(provider)
    assert "levels=(20000, 320000, 2560000)" in repr(provider)
    assert provider.expires == 120.0


class NamespacedState:
    """The shared-state operation of issue 10, ``remember(namespace, key, ttl)``, with a
    capacity per namespace, as a plain dict: the shape the provider's memory must fit."""

    def __init__(self, capacity: int, clock: Clock) -> None:
        self.capacity, self.clock = capacity, clock
        self.seen: dict[str, dict[str, float]] = {}

    def remember(self, namespace: str, key: str, ttl: float) -> bool | None:
        now = self.clock()
        space = self.seen.setdefault(namespace, {})
        for old in [k for k, until in space.items() if until < now]:
            del space[old]
        if key in space:
            return False
        if len(space) >= self.capacity:
            return None  # StateFull
        space[key] = now + ttl
        return True


def test_the_memory_is_one_remember_per_solution_through_prepare_and_settle() -> None:
    clock = Clock()
    provider = ProofOfWork(SECRET, max_number=20, expires=60, clock=clock, escalation=(8, 64))
    state = NamespacedState(capacity=2, clock=clock)

    def through_state(value: str) -> Verdict:
        fields = Fields()
        fields.add("altcha", value)
        spend = provider.prepare(fields)
        if isinstance(spend, Verdict):
            return spend
        assert spend.ttl == 60.0
        return provider.settle(spend, state.remember(spend.namespace, spend.key, spend.ttl))

    hoard = [provider.new_challenge() for _ in range(3)]
    first = solve(hoard[0])
    assert through_state(first).passed
    assert through_state(first).reason == "proof of work: challenge already used"
    assert through_state(solve(hoard[1])).passed
    assert through_state(solve(hoard[2])).reason.endswith("retry")
    upper = provider.new_challenge()
    assert upper["maxnumber"] == 160
    assert through_state(solve(upper)).passed
    assert set(state.seen) == {"pow", "pow:1"}
    assert all(len(key) == len("pow:") + 32 for key in state.seen["pow"])


def test_a_store_that_fails_refuses_loudly_never_a_500_or_a_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Down(MemoryState):
        def remember(self, namespace: str, key: str, ttl: float) -> Any:
            raise ConnectionError("redis://:hunter2@10.0.0.1 refused")

    provider = ProofOfWork(SECRET, max_number=20)
    guard = CaptchaGuard(echo_asgi, rules=[Rule("/login")], provider=provider, state=Down())
    with (
        caplog.at_level("ERROR", logger="captcha_guard"),
        serve_asgi(guard) as url,
        httpx.Client(base_url=url, verify=TLS) as client,
    ):
        challenge = client.get("/captcha-guard/challenge").json()
        answer = client.post(
            "/login", data={"altcha": solve(challenge)}, headers={"accept": "json"}
        )
    # A store that cannot answer is our outage, not the client's fault: 503, as for every
    # other store, with the generic reason (the cause is in the log).
    assert answer.status_code == 503
    assert answer.json()["error"] == "captcha_unavailable"
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "replay store failed (ConnectionError)" in logged
    assert "hunter2" not in logged
