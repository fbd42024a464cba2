"""The flood simulation of bench/pow_flood.py, small enough for every run: on a virtual clock,
eight native cores against the replay memory, honest users arriving meanwhile."""

from __future__ import annotations

from bench.pow_flood import Clock, simulate
from captcha_guard import MemoryState, ProofOfWork

SECRET = "flood-test-secret-0123456789"
NATIVE = 10e6  # hashes per second per core, about what bench/pow_flood.py measures here


def run(provider: ProofOfWork, clock: Clock, seconds: float) -> dict[str, int]:
    tally = simulate(
        provider,
        clock,
        state=MemoryState(max_entries=1_000, clock=clock),
        cores=8,
        native_rate=NATIVE,
        browser_rate=1e6,
        seconds=seconds,
        honest_per_second=1.0,
    )
    return {
        "honest": tally.honest_first.total(),
        "first": tally.honest_first["passed"],
        "final": tally.honest_final["passed"],
        "attacker": tally.attacker["passed"],
        "levels": len(tally.levels_served),
    }


def test_eight_cores_lock_honest_users_out_of_a_single_store() -> None:
    # The old shape, scaled down: one store the attacker's rate fills within a lifetime.
    clock = Clock()
    provider = ProofOfWork(
        SECRET,
        max_number=1_000_000,
        expires=40,
        escalation=(),
        clock=clock,
    )
    seen = run(provider, clock, seconds=60)
    assert seen["honest"] > 50
    assert seen["final"] < seen["honest"] / 2  # most honest users are refused, retry or not


def test_with_levels_every_honest_user_passes_at_most_after_one_retry() -> None:
    clock = Clock()
    provider = ProofOfWork(
        SECRET,
        max_number=1_000_000,
        expires=40,
        clock=clock,
    )
    seen = run(provider, clock, seconds=60)
    assert seen["honest"] > 50
    assert seen["levels"] >= 2  # the attacker did fill level 0
    assert seen["final"] == seen["honest"]
    assert seen["first"] >= 0.8 * seen["honest"]
