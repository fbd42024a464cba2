"""The fallback replay guard and per-client budget: unit behaviour, then through the gate
under uvicorn against a real GeeTest emulator in each outage state."""

from __future__ import annotations

import json
import logging
import threading
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from captcha_guard import CaptchaGuard, GeeTest, MemoryState, Outcome, Rule
from captcha_guard._fallback import (
    NO_ADDRESS,
    NO_CAPACITY,
    OVER_BUDGET,
    REPLAY_TTL,
    REPLAYED,
    FallbackLimit,
    FallbackLimitOption,
    as_limit,
    network_of,
    refusal_flow,
)
from captcha_guard._responses import FALLBACK_REJECTED_REASON
from captcha_guard._state import StateFull, StateOp
from captcha_guard.testing import GeeTestEmulator, Outage
from tests.hardening_kit import CASES, DOORS, ProviderCase, Site, guarded_site
from tests.helpers import FakeClock, RecordingApp, drive

# ---------------------------------------------------------------------------------------------
# The fallback guard: the decision, as operations on a state


class Guard:
    """``refusal_flow`` performed on ``state`` (a fresh MemoryState by default), as a door
    performs it."""

    def __init__(
        self, state: Any = None, fallback_limit: FallbackLimitOption = None, clock: Any = None
    ) -> None:
        if state is None:
            state = MemoryState() if clock is None else MemoryState(clock=clock)
        self.state = state
        self.limit = as_limit(fallback_limit)

    def refusal(self, replay_key: str, client: str | None) -> tuple[Outcome, str] | None:
        answer = self.state.run if hasattr(self.state, "run") else self.state
        _, result = drive(refusal_flow(self.limit, replay_key, client), answer)
        return result  # type: ignore[no-any-return]


def test_a_claim_falls_back_once_then_is_a_replay() -> None:
    guard = Guard()
    assert guard.refusal("geetest:a", "10.0.0.1") is None
    assert guard.refusal("geetest:a", "10.0.0.2") == (Outcome.REJECTED, REPLAYED)
    assert guard.refusal("geetest:b", "10.0.0.1") is None


def test_ids_are_remembered_for_the_ttl_under_their_namespace() -> None:
    clock = FakeClock()
    guard = Guard(clock=clock)
    guard.refusal("geetest:a", None)
    clock.advance(REPLAY_TTL)
    assert guard.refusal("geetest:a", None) == (Outcome.REJECTED, REPLAYED)
    clock.advance(0.5)
    assert guard.refusal("geetest:a", None) is None
    # The same state serves proof-of-work: fallback ids cannot collide with its keys.
    assert guard.state.seen("fallback", "geetest:a") and not guard.state.seen("pow", "geetest:a")


def test_a_full_store_refuses_every_fallback_and_forgets_nothing() -> None:
    clock = FakeClock()
    guard = Guard(MemoryState(max_entries=2, clock=clock))
    assert guard.refusal("a", None) is None
    assert guard.refusal("b", None) is None
    assert guard.refusal("c", None) == (Outcome.FALLBACK, NO_CAPACITY)
    assert guard.refusal("a", None) == (Outcome.REJECTED, REPLAYED)
    clock.advance(REPLAY_TTL + 1)
    assert guard.refusal("c", None) is None


def test_a_claim_is_admitted_once_across_threads() -> None:
    guard = Guard()
    start = threading.Barrier(16)
    admitted: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        for n in range(200):
            if guard.refusal(f"k{n}", "10.0.0.1") is None:
                with lock:
                    admitted.append(f"k{n}")

    threads = [threading.Thread(target=race) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(admitted) == sorted(f"k{n}" for n in range(200))


def test_the_budget_is_spent_before_the_id_is_remembered() -> None:
    clock = FakeClock(start=0.0)
    guard = Guard(fallback_limit=1, clock=clock)
    assert guard.refusal("a", "10.0.0.1") is None
    # Over budget: refused, and "b" is not burnt, so it can come back next minute.
    assert guard.refusal("b", "10.0.0.1") == (Outcome.REJECTED, OVER_BUDGET)
    clock.advance(60)
    assert guard.refusal("b", "10.0.0.1") is None
    # A replay spends the replayer's budget.
    clock.advance(60)
    assert guard.refusal("a", "10.0.0.1") == (Outcome.REJECTED, REPLAYED)
    assert guard.refusal("c", "10.0.0.1") == (Outcome.REJECTED, OVER_BUDGET)


def test_clients_without_an_address_share_one_budget() -> None:
    guard = Guard(fallback_limit=1)
    assert guard.refusal("a", None) is None
    assert guard.refusal("b", None) == (Outcome.REJECTED, OVER_BUDGET)


# ---------------------------------------------------------------------------------------------
# The budget's counts (namespace "budget" of the state)


def spend(state: MemoryState, client: str, limit: int) -> bool:
    return bool(state.run(StateOp("spend", ("budget", client, limit, 60.0))))


def test_budget_counts_per_client_per_minute() -> None:
    clock = FakeClock(start=60.0 * 100)
    state = MemoryState(clock=clock)
    assert spend(state, "10.0.0.1", 2) and spend(state, "10.0.0.1", 2)
    assert spend(state, "10.0.0.1", 2) is False
    assert spend(state, "10.0.0.2", 2) is True  # another client has its own budget
    clock.advance(59.9)
    assert spend(state, "10.0.0.1", 2) is False
    clock.advance(0.1)  # the next minute
    assert spend(state, "10.0.0.1", 2) is True


def test_budget_refuses_a_new_client_when_it_counts_too_many() -> None:
    clock = FakeClock(start=0.0)
    state = MemoryState(max_buckets=2, clock=clock)
    spend(state, "a", 5)
    spend(state, "b", 5)
    with pytest.raises(StateFull):
        spend(state, "c", 5)
    assert spend(state, "a", 5) is True  # clients already counted go on
    clock.advance(60)
    assert spend(state, "c", 5) is True


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "10"])
def test_budget_checks_its_limit(limit: object) -> None:
    with pytest.raises(ValueError, match="fallback_limit"):
        FallbackLimit(limit)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Through the gate, under uvicorn, against the emulator served for real.


def site(case: ProviderCase = CASES[0], **options: Any) -> AbstractContextManager[Site]:
    """A guarded site (GeeTest by default) whose circuit opens at the first provider failure."""
    return guarded_site(case, **{"failure_threshold": 1, **options})


def open_circuit(s: Site) -> None:
    """One provider failure with failure_threshold=1: the circuit is open afterwards."""
    s.emulator.outage = Outage.HTTP_500
    first = s.post(data=s.issue())
    assert first.json()["outcome"] == "fallback"
    assert s.breaker.state.value == "open"


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("state", ["circuit open", "provider failing"])
@pytest.mark.parametrize("door", DOORS)
def test_a_captcha_falls_back_once_then_is_refused(
    case: ProviderCase, state: str, door: str
) -> None:
    # "circuit open" falls back in Gate.begin, "provider failing" in Gate.finish.
    threshold = 1 if state == "circuit open" else 1000
    with site(case, door=door, failure_threshold=threshold) as s:
        if state == "circuit open":
            open_circuit(s)
        else:
            s.emulator.outage = Outage.HTTP_500
        fields = s.issue()
        first = s.post(data=fields)
        replays = [s.post(data=fields) for _ in range(5)]
        fresh = s.post(data=s.issue())
    assert first.status_code == 200
    assert first.json()["outcome"] == "fallback"
    for replay in replays:
        assert replay.status_code == 403
        # Read like any refusal: "already used" would confirm that the gate is in fallback.
        assert replay.json() == {"error": "captcha_rejected", "reason": FALLBACK_REJECTED_REASON}
    assert fresh.json()["outcome"] == "fallback"


def test_a_geetest_lot_replayed_in_other_letter_cases_is_refused() -> None:
    with site() as s:
        open_circuit(s)
        fields = s.issue()
        assert s.post(data=fields).json()["outcome"] == "fallback"
        upper = s.post(data={**fields, "lot_number": fields["lot_number"].upper()})
    assert upper.status_code == 403
    assert upper.json()["reason"] == FALLBACK_REJECTED_REASON


def test_an_alibaba_parameter_replayed_respaced_or_reordered_is_refused() -> None:
    aliyun = next(case for case in CASES if case.name == "aliyun")
    with site(aliyun) as s:
        open_circuit(s)
        ((name, param),) = s.issue().items()
        assert s.post(data={name: param}).json()["outcome"] == "fallback"
        document = json.loads(param)
        variants = [
            f" {param} ",
            json.dumps(document, indent=1).replace("\n", ""),
            json.dumps(dict(reversed(list(document.items())))),
        ]
        answers = [s.post(data={name: variant}) for variant in variants]
    assert [a.status_code for a in answers] == [403, 403, 403]


@pytest.mark.parametrize("door", DOORS)
def test_a_replay_is_refused_in_every_encoding_the_fields_travel(door: str) -> None:
    with site(door=door) as s:
        open_circuit(s)
        fields = s.emulator.issue()
        assert s.post(data=fields).status_code == 200
        as_json = s.post(json=fields)
        in_query = s.post(params=fields)
        in_header = s.post(headers={"X-Captcha": str(httpx.QueryParams(fields))})
    assert [r.status_code for r in (as_json, in_query, in_header)] == [403, 403, 403]


@pytest.mark.parametrize("door", DOORS)
def test_fallback_without_fields_is_refused(door: str) -> None:
    with site(door=door) as s:
        open_circuit(s)
        empty = s.post(data={"name": "x"})
        partial = s.post(data={"lot_number": "a" * 32})
    assert empty.status_code == 403
    assert partial.status_code == 403
    assert "missing" in partial.json()["reason"]


def test_a_passed_captcha_is_not_remembered_by_the_guard() -> None:
    # Only fallbacks are remembered: the provider itself refuses a captcha used twice.
    state = MemoryState()
    with site(state=state) as s:
        assert s.post(data=s.emulator.issue()).json()["outcome"] == "passed"
    assert state.remembered("fallback") == 0


@pytest.mark.parametrize("door", DOORS)
def test_the_guard_outlives_the_outage(door: str) -> None:
    with site(door=door, failure_threshold=1000) as s:
        s.emulator.outage = Outage.HTTP_429
        fields = s.emulator.issue()
        assert s.post(data=fields).json()["outcome"] == "fallback"
        s.emulator.outage = None
        # The provider never saw it used, so it would pass: used once in fallback is used.
        again = s.post(data=fields)
    assert again.status_code == 200
    assert again.json()["outcome"] == "passed"


@pytest.mark.parametrize("door", DOORS)
def test_fallback_limit_caps_each_client(door: str) -> None:
    clock = FakeClock(start=0.0)
    with site(door=door, fallback_limit=3, state=MemoryState(clock=clock)) as s:
        open_circuit(s)  # the first fallback of this client
        within = [s.post(data=s.emulator.issue()) for _ in range(2)]
        over = s.post(data=s.emulator.issue())
        clock.advance(60)
        next_minute = s.post(data=s.emulator.issue())
    assert [r.json()["outcome"] for r in within] == ["fallback", "fallback"]
    assert over.status_code == 403
    assert over.json() == {"error": "captcha_rejected", "reason": FALLBACK_REJECTED_REASON}
    assert next_minute.json()["outcome"] == "fallback"


def test_fallback_limit_as_an_int_is_per_minute_in_the_doors_state() -> None:
    guard = CaptchaGuard(RecordingApp(), rules=[Rule("/x")], provider=_geetest(), fallback_limit=10)
    assert guard.gate.fallback_limit == FallbackLimit(10)
    assert isinstance(guard.state, MemoryState)


@pytest.mark.parametrize("door", DOORS)
def test_a_full_guard_refuses_fallback_with_503(door: str) -> None:
    with site(door=door, state=MemoryState(max_entries=2)) as s:
        open_circuit(s)  # one id remembered
        second = s.post(data=s.emulator.issue())
        third = s.post(data=s.emulator.issue())
    assert second.json()["outcome"] == "fallback"
    assert third.status_code == 503
    assert third.json()["error"] == "captcha_unavailable"


class BrokenStore(MemoryState):
    """A state whose replay memory fails (the breaker still works)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def remember(self, namespace: str, key: str, ttl: float) -> Any:
        self.calls += 1
        raise ConnectionError("store unreachable")


def test_a_failing_store_refuses_fallback_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    broken = BrokenStore()
    with caplog.at_level(logging.WARNING, "captcha_guard"), site(state=broken) as s:
        s.emulator.outage = Outage.HTTP_500
        answer = s.post(data=s.emulator.issue())
    assert answer.status_code == 503
    assert broken.calls == 1
    assert any(
        r.levelno == logging.ERROR and "store unreachable" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("door", DOORS)
def test_fail_closed_rules_never_touch_the_guard(door: str) -> None:
    counting = BrokenStore()
    with site(door=door, state=counting) as s:
        s.emulator.outage = Outage.HTTP_500
        answer = s.post("/pay", data=s.emulator.issue())
    assert answer.status_code == 503
    assert counting.calls == 0


def test_refusals_are_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "captcha_guard"), site() as s:
        open_circuit(s)
        fields = s.emulator.issue()
        s.post(data=fields)
        s.post(data=fields)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "fallback refused: captcha already used" in text
    for value in fields.values():
        if len(value) > 12:
            assert value not in text


def _geetest() -> GeeTest:
    emulator = GeeTestEmulator()
    return GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint="http://127.0.0.1:9/")


def test_the_guard_options_are_checked_at_construction() -> None:
    with pytest.raises(TypeError, match="state"):
        CaptchaGuard(RecordingApp(), rules=[Rule("/x")], provider=_geetest(), state=object())
    with pytest.raises(ValueError, match="fallback_limit"):
        CaptchaGuard(RecordingApp(), rules=[Rule("/x")], provider=_geetest(), fallback_limit=0)


# ---------------------------------------------------------------------------------------------
# Budgets by network, and stores that do not starve each other


@pytest.mark.parametrize(
    ("client", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7/32"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7/32"),  # dual-stack socket: still one IPv4 address
        ("fe80::1%eth0", "fe80::/64"),
        ("unix:/tmp/sock", NO_ADDRESS),
        ("", NO_ADDRESS),
        (None, NO_ADDRESS),
    ],
)
def test_the_budget_bucket_is_the_network(client: str | None, bucket: str) -> None:
    assert network_of(client) == bucket


def test_prefixes_are_configurable_and_checked() -> None:
    assert network_of("2001:db8:1:2::1", ipv6_prefix=48) == "2001:db8:1::/48"
    assert network_of("203.0.113.7", ipv4_prefix=24) == "203.0.113.0/24"
    assert FallbackLimit(5, ipv6_prefix=56).bucket("2001:db8:1:2ff::1") == "2001:db8:1:200::/56"
    for bad in ({"ipv6_prefix": 129}, {"ipv4_prefix": -1}, {"ipv6_prefix": True}):
        with pytest.raises(ValueError, match="prefix"):
            FallbackLimit(5, **bad)


def test_one_ipv6_64_is_one_budget_however_many_addresses_it_rotates() -> None:
    guard = Guard(fallback_limit=FallbackLimit(2), clock=FakeClock(start=0.0))
    answers = [guard.refusal(f"geetest:{n}", f"2001:db8:1:2::{n:x}") for n in range(1, 5)]
    assert answers == [None, None, (Outcome.REJECTED, OVER_BUDGET), (Outcome.REJECTED, OVER_BUDGET)]
    assert guard.refusal("geetest:x", "2001:db8:1:3::1") is None


def test_a_shared_store_gives_fallbacks_and_proof_of_work_a_capacity_each() -> None:
    clock = FakeClock()
    state = MemoryState(max_entries=3, clock=clock)
    guard = Guard(state)
    # A flood of made-up fields fills the fallback share, and only that.
    assert [guard.refusal(f"geetest:{n}", None) for n in range(3)] == [None, None, None]
    assert guard.refusal("geetest:more", None) == (Outcome.FALLBACK, NO_CAPACITY)
    assert state.run(StateOp("remember", ("pow", "abc", 60)))
    # And the other way round: proof-of-work filling its share leaves fallbacks alone.
    other = MemoryState(max_entries=2, clock=clock)
    for key in ("1", "2"):
        other.run(StateOp("remember", ("pow", key, 60)))
    assert Guard(other).refusal("geetest:y", None) is None


def test_a_full_guard_is_a_warning_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    # Filling it is what an attacker's made-up fields do: it must not page anyone.
    guard = Guard(MemoryState(max_entries=1, max_buckets=1), fallback_limit=FallbackLimit(100))
    with caplog.at_level(logging.DEBUG, "captcha_guard"):
        assert guard.refusal("a", "198.51.100.1") is None
        assert guard.refusal("b", "198.51.100.1") == (Outcome.FALLBACK, NO_CAPACITY)
        assert guard.refusal("c", "198.51.100.2") == (Outcome.FALLBACK, NO_CAPACITY)
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]
    assert "198.51.100" not in caplog.text


def test_fallback_limit_takes_every_spelling() -> None:
    assert as_limit(None) is None
    seven = as_limit(7)
    assert seven == FallbackLimit(7) and seven.ipv6_prefix == 64
    spelled = FallbackLimit(4, ipv6_prefix=48)
    assert as_limit(spelled) is spelled


def _telling(op: StateOp) -> Any:
    """A state whose errors quote what it was asked, as some clients' exceptions do."""
    if op.name == "remember":
        raise KeyError(op.args[1])
    raise RuntimeError(f"cannot count {op.args[1]}")


def test_a_store_error_that_quotes_the_request_is_withheld(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lot = "4dc3cfc2cdff448cad8d13107198d473"
    with caplog.at_level(logging.ERROR, "captcha_guard"):
        assert Guard(_telling).refusal(f"geetest:{lot}", "198.51.100.9") == (
            Outcome.FALLBACK,
            NO_CAPACITY,
        )
        told = Guard(_telling, fallback_limit=FallbackLimit(5))
        assert told.refusal("geetest:x", "2001:db8:1:2::9") == (Outcome.FALLBACK, NO_CAPACITY)
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.ERROR]
    assert lot not in caplog.text and "2001:db8:1:2" not in caplog.text
    assert "KeyError" in caplog.text and "RuntimeError" in caplog.text
