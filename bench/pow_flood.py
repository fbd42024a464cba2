"""Can eight cores flood ProofOfWork's replay memory and lock honest users out?

    python bench/pow_flood.py [--cores 8] [--seconds 360] [--json]

1. Builds ``bench/pow_solver.c`` (a native solver: OpenSSL SHA-256, in-place decimal
   increment) with gcc, feeds it real challenges from ``ProofOfWork`` at each difficulty
   level, checks every solution it finds with the provider, and reports solutions and hashes
   per second per core (process CPU time, so a busy machine does not flatter or hurt it).
2. Measures the memory of one replay-memory entry (tracemalloc, 100,000 entries of the real
   key shape).
3. Simulates an attacker with ``--cores`` native solvers against the provider on a virtual
   clock (the provider's injectable ``clock``; no sleeping): each core fetches a challenge,
   spends (number + 1) / rate seconds on it (what the solver does: it scans from 0), submits,
   and starts again. Honest users arrive meanwhile (Poisson), fetch a challenge, take a few
   seconds (typing, and solving in a browser at ``--browser-rate`` hashes per second), submit,
   and retry once if refused. The attacker's solving is charged to its time budget rather than
   performed: challenges are made by the real provider with a recorded number. Run for the
   old configuration (one store of 100,000, 300 s, no escalation) and the new defaults.

Needs gcc and libssl-dev (``apt-get install gcc libssl-dev``).
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from captcha_guard import MemoryState, ProofOfWork  # noqa: E402
from captcha_guard._fields import Fields  # noqa: E402
from captcha_guard._memory import DEFAULT_MAX_ENTRIES  # noqa: E402
from captcha_guard._state import StateFull  # noqa: E402
from captcha_guard.providers import proof_of_work as pow_module  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
SOLVER_SOURCE = Path(__file__).with_name("pow_solver.c")
# Challenges per level for the rate measurement: about a second of one core each.
SAMPLES = {100_000: 200, 800_000: 30, 6_400_000: 5}


# ---------------------------------------------------------------------------------------------
# 1. The native solver


def build_solver(directory: Path) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise SystemExit("needs gcc: apt-get install gcc libssl-dev")
    binary = directory / "pow_solver"
    command = [gcc, "-O2", "-Wall", "-o", str(binary), str(SOLVER_SOURCE), "-lcrypto"]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        raise SystemExit(
            f"building the solver failed (apt-get install libssl-dev?):\n{built.stderr}"
        )
    return binary


@dataclass
class Rate:
    max_number: int
    solutions: int
    hashes: int
    cpu: float

    @property
    def per_second(self) -> float:
        return self.solutions / self.cpu

    @property
    def hashes_per_second(self) -> float:
        return self.hashes / self.cpu


def encode(challenge: dict[str, Any], number: int) -> str:
    payload = {
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": number,
        "salt": challenge["salt"],
        "signature": challenge["signature"],
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()


def judge(provider: ProofOfWork, value: str, state: MemoryState) -> tuple[bool, str]:
    """The gate's judgement (``check_flow``), its replay memory in ``state``."""
    fields = Fields()
    fields.add("altcha", value)
    flow = provider.check_flow(fields)
    try:
        op = next(flow)
        try:
            result = state.run(op)
        except StateFull as full:
            flow.throw(full)
        else:
            flow.send(result)
    except StopIteration as stop:
        return stop.value.passed, stop.value.reason
    raise AssertionError("check_flow yields one operation")


def measure(solver: Path, max_number: int, count: int) -> Rate:
    provider = ProofOfWork(SECRET, max_number=max_number, escalation=())
    state = MemoryState()
    challenges = [provider.new_challenge() for _ in range(count)]
    lines = "".join(f"{c['salt']} {c['challenge']} {c['maxnumber']}\n" for c in challenges)
    ran = subprocess.run([str(solver)], input=lines, capture_output=True, text=True, check=True)
    *answers, cpu_line = ran.stdout.split("\n")[:-1]
    hashes = 0
    for challenge, answer in zip(challenges, answers, strict=True):
        number, tried = (int(part) for part in answer.split())
        passed, reason = judge(provider, encode(challenge, number), state)
        if not passed:
            raise SystemExit(f"the native solver's answer was refused: {reason}")
        hashes += tried
    return Rate(max_number, count, hashes, float(cpu_line.split()[1]))


# ---------------------------------------------------------------------------------------------
# 2. Memory per entry


def bytes_per_entry(entries: int = DEFAULT_MAX_ENTRIES) -> float:
    keys = [f"pow:{os.urandom(16).hex()}" for _ in range(entries)]  # made before measuring
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    state = MemoryState(max_entries=entries, clock=lambda: 0.0)
    for index, key in enumerate(keys):
        state.remember("pow", key, 1_000_000.0 + index / 1000)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    key_bytes = sum(sys.getsizeof(key) for key in keys)  # the keys themselves are kept too
    return (after - before + key_bytes) / entries


# ---------------------------------------------------------------------------------------------
# 3. The flood, on a virtual clock


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def recorded_numbers() -> Iterator[dict[str, int]]:
    """Challenges made by the real provider, with the secret number written down, so the
    simulation can charge a solver's time without doing its hashing."""
    numbers: dict[str, int] = {}
    real = pow_module.create_challenge

    def create(options: Any) -> Any:
        options.number = random.randrange(options.max_number + 1)
        challenge = real(options)
        numbers[challenge.challenge] = options.number
        return challenge

    with mock.patch.object(pow_module, "create_challenge", create):
        yield numbers


@dataclass
class Tally:
    honest_first: Counter[str] = field(default_factory=Counter)
    honest_final: Counter[str] = field(default_factory=Counter)
    attacker: Counter[str] = field(default_factory=Counter)
    levels_served: Counter[int] = field(default_factory=Counter)
    peak_entries: int = 0
    honest_hashes: int = 0
    honest_solutions: int = 0


def simulate(
    provider: ProofOfWork,
    clock: Clock,
    *,
    cores: int,
    native_rate: float,
    browser_rate: float,
    seconds: float,
    honest_per_second: float,
    seed: int = 8,
    state: MemoryState | None = None,
) -> Tally:
    """The flood; the replay memory in ``state`` (default: a MemoryState on ``clock``)."""
    state = MemoryState(clock=clock) if state is None else state
    rng = random.Random(seed)
    random.seed(seed)
    tally = Tally()
    events: list[tuple[float, int, str, Any]] = []
    sequence = 0

    def at(moment: float, kind: str, data: Any) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(events, (moment, sequence, kind, data))

    with recorded_numbers() as numbers:

        def fetch(now: float) -> tuple[dict[str, Any], int]:
            clock.now = now
            challenge = provider.new_challenge()
            tally.levels_served[provider.levels.index(challenge["maxnumber"])] += 1
            return challenge, numbers.pop(challenge["challenge"])

        def attack(now: float) -> None:
            challenge, number = fetch(now)
            at(now + (number + 1) / native_rate, "attacker submits", (challenge, number))

        def honest(now: float, attempt: int) -> None:
            challenge, number = fetch(now)
            tally.honest_hashes += number + 1
            tally.honest_solutions += 1
            typing = rng.uniform(2.0, 20.0)
            solving = (number + 1) / browser_rate
            at(now + typing + solving, "honest submits", (challenge, number, attempt))

        for _ in range(cores):
            attack(0.0)
        moment = rng.expovariate(honest_per_second)
        while moment < seconds:
            at(moment, "honest arrives", None)
            moment += rng.expovariate(honest_per_second)
        while events:
            now, _, kind, data = heapq.heappop(events)
            if now > seconds and kind == "attacker submits":
                continue  # the attack ends; honest users still in flight finish
            if kind == "honest arrives":
                honest(now, 1)
                continue
            clock.now = now
            passed, reason = judge(provider, encode(data[0], data[1]), state)
            outcome = "passed" if passed else reason.removeprefix("proof of work: ")
            if kind == "attacker submits":
                tally.attacker[outcome] += 1
                attack(now)
            else:
                attempt = data[2]
                if attempt == 1:
                    tally.honest_first[outcome] += 1
                if passed or attempt == 2:
                    tally.honest_final[outcome] += 1
                else:
                    honest(now, 2)
            if tally.attacker.total() % 4096 == 0:
                tally.peak_entries = max(tally.peak_entries, entries(provider, state))
        tally.peak_entries = max(tally.peak_entries, entries(provider, state))
    return tally


def entries(provider: ProofOfWork, state: MemoryState) -> int:
    namespaces = [pow_module.NAMESPACE] + [
        f"{pow_module.NAMESPACE}:{level}" for level in range(1, len(provider.levels))
    ]
    return sum(state.remembered(namespace) for namespace in namespaces)


def configurations(clock: Clock) -> dict[str, ProofOfWork]:
    return {
        "before (one store of 100,000, 300 s, no escalation)": ProofOfWork(
            SECRET,
            expires=300,
            escalation=(),
            clock=clock,
        ),
        "now (defaults: 120 s, levels 1x/8x/64x, 100,000 per level)": ProofOfWork(
            SECRET, clock=clock
        ),
    }


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=8, help="the attacker's cores")
    parser.add_argument("--seconds", type=float, default=360.0, help="virtual seconds of attack")
    parser.add_argument("--honest", type=float, default=2.0, help="honest users per second")
    parser.add_argument(
        "--browser-rate", type=float, default=1e6, help="an honest browser's hashes per second"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pow-flood-") as directory:
        solver = build_solver(Path(directory))
        rates = [measure(solver, number, count) for number, count in SAMPLES.items()]
    native = sum(rate.hashes for rate in rates) / sum(rate.cpu for rate in rates)
    per_entry = bytes_per_entry()

    results: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "native_hashes_per_second_per_core": native,
        "levels": [
            {
                "max_number": rate.max_number,
                "solutions": rate.solutions,
                "cpu_seconds": rate.cpu,
                "solutions_per_second_per_core": rate.per_second,
                "expected_solutions_per_second_per_core": native / ((rate.max_number + 2) / 2),
                "hashes_per_second_per_core": rate.hashes_per_second,
            }
            for rate in rates
        ],
        "bytes_per_entry": per_entry,
        "simulations": {},
    }
    for name, provider in configurations(clock := Clock()).items():
        clock.now = 0.0
        tally = simulate(
            provider,
            clock,
            cores=args.cores,
            native_rate=native,
            browser_rate=args.browser_rate,
            seconds=args.seconds,
            honest_per_second=args.honest,
        )
        results["simulations"][name] = {
            "attacker": dict(tally.attacker),
            "honest_first_try": dict(tally.honest_first),
            "honest_after_one_retry": dict(tally.honest_final),
            "levels_served": {str(k): v for k, v in sorted(tally.levels_served.items())},
            "peak_entries": tally.peak_entries,
            "peak_memory_mb": tally.peak_entries * per_entry / 1e6,
            "honest_mean_hashes": tally.honest_hashes / max(tally.honest_solutions, 1),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}")
    print(f"native solver: {native / 1e6:.2f} M hashes/s per core (OpenSSL SHA-256)\n")
    print("| max_number | solutions | CPU s | solutions/s/core | expected | ms/solution |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for level in results["levels"]:
        print(
            f"| {level['max_number']:,} | {level['solutions']} | {level['cpu_seconds']:.2f} "
            f"| {level['solutions_per_second_per_core']:.1f} "
            f"| {level['expected_solutions_per_second_per_core']:.1f} "
            f"| {1000 / level['solutions_per_second_per_core']:.1f} |"
        )
    print(f"\nreplay memory: {per_entry:.0f} bytes per entry\n")
    print(
        f"{args.cores}-core attacker for {args.seconds:g} virtual s, "
        f"{args.honest:g} honest users/s (browser {args.browser_rate / 1e6:g} M hashes/s):\n"
    )
    for name, sim in results["simulations"].items():
        print(f"- {name}")
        print(f"  attacker: {sim['attacker']}")
        print(f"  honest, first try: {sim['honest_first_try']}")
        print(f"  honest, after one retry: {sim['honest_after_one_retry']}")
        print(f"  challenges served per level: {sim['levels_served']}")
        print(
            f"  peak entries {sim['peak_entries']:,} ({sim['peak_memory_mb']:.1f} MB); "
            f"honest mean work {sim['honest_mean_hashes']:,.0f} hashes"
        )


if __name__ == "__main__":
    main()
