"""Proof of work under pressure: an honest browser against a native flooder (issue 18, §2).

    python bench/pow_pressure.py [--browser-solves 6] [--seconds 300] [--json]

1. The honest side's rate, measured: headless Chromium runs the ALTCHA widget 3.x against
   ``ProofOfWork`` (v1, the default) at 100,000 and 800,000; the rate is hashes (number + 1)
   over the CPU seconds Chromium's processes spent, all solves together: one core of an idle
   device, so a loaded machine does not hurt the honest side (the wall rate, from the
   widget's own ``took``, is reported beside it).
2. The attacker's rate, measured: ``bench/pow_solver.c`` (OpenSSL SHA-256), as pow_flood.py.
3. Runs on a virtual clock (no sleeping), for the default ``ProofOfWork`` and for one sized
   to the measured widget (``CONFIGS``), each with the default ``Pressure`` table, judging
   with the real provider and counting with ``count_on`` on a ``MemoryState`` (what the flow
   does without shared state): honest users arrive at ``--honest``
   a second from a million networks, solve at the measured browser rate and submit; the
   attacker runs ``--cores`` native solvers back to back, from many networks (a proxy pool
   of 100,000 /24s) or from a few (3). Then the same with 8 cores, on paper.

Targets: no attack, an honest median solve <= 0.5 s; under a flood, each accepted attacker
request costs >= 10x the no-attack work, the honest median solve <= 5 s, and no honest solver
is refused for capacity below the top level; a flood from a few networks costs those networks
more and the rest less.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import os
import random
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pow_flood import (  # noqa: E402
    SAMPLES,
    Clock,
    build_solver,
    encode,
    measure,
    recorded_numbers,
)
from captcha_guard import ProofOfWork  # noqa: E402
from captcha_guard._fields import Fields  # noqa: E402
from captcha_guard._memory import MemoryState  # noqa: E402
from captcha_guard._request import ClientRequest  # noqa: E402
from captcha_guard.providers._pow_pressure import count_on  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36"
#: The default, and a configuration sized to the widget's measured rate (a first level of
#: 20,000 hashes, 16x and 128x above it; the default Pressure table caps the fleet at 16x).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "20k/16x/128x": {"max_number": 20_000, "escalation": (16, 128)},
}


# ---------------------------------------------------------------------------------------------
# 1. The honest browser


def browser_rate(solves: int) -> dict[str, Any]:
    """Hashes a second of widget 3.x in headless Chromium, from the widget's own timings."""
    from captcha_guard import CaptchaGuard, Rule
    from tests.browser import chromium
    from tests.page.test_altcha_widget import CHECKBOX, SOLVED, WIDGET_READY
    from tests.servers import serve_asgi
    from tests.widgets import version, widget

    bundle = widget(3).read_bytes()
    page = (
        b'<!doctype html><meta charset="utf-8"><script type="module" src="/w.js"></script>'
        b'<form><altcha-widget challenge="/captcha-guard/challenge"></altcha-widget></form>'
    )

    async def site(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, kind = (
            (bundle, "text/javascript") if scope["path"] == "/w.js" else (page, "text/html")
        )
        headers = [(b"content-type", kind.encode()), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    samples: list[dict[str, Any]] = []
    with chromium() as browser:
        for max_number, count_ in ((100_000, solves), (800_000, max(2, solves // 2))):
            provider = ProofOfWork(SECRET, max_number=max_number, escalation=(), pressure=False)
            guard = CaptchaGuard(site, rules=[Rule("/login")], provider=provider)
            with serve_asgi(guard) as url:
                for _ in range(count_):
                    browser.get(url + "/")
                    browser.wait_for(WIDGET_READY, what="the widget", timeout=30)
                    before = children_cpu()
                    browser.click(CHECKBOX)
                    solved = browser.wait_for(SOLVED, what="a solution", timeout=120)
                    cpu = children_cpu() - before
                    payload = json.loads(base64.b64decode(solved["payload"]))
                    number, took = payload["number"], payload["took"]
                    samples.append(
                        {"max_number": max_number, "number": number, "took_ms": took, "cpu_s": cpu}
                    )
    hashes = sum(s["number"] + 1 for s in samples)
    seconds = sum(s["took_ms"] for s in samples) / 1000
    cpu = sum(s["cpu_s"] for s in samples)
    return {
        "widget": version(3),
        "samples": samples,
        "wall_hashes_per_second": hashes / seconds,
        # What one core of an idle device does: the CPU Chromium spent, over every process of
        # it (renderer, workers, GPU, driver), so a loaded machine does not hurt the honest side.
        "hashes_per_second": hashes / cpu,
    }


def children_cpu() -> float:
    """CPU seconds used so far by every descendant process of this one (Chromium's tree)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    mine = {os.getpid()}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in mine} - mine
        grew = bool(more)
        mine |= more
    mine.discard(os.getpid())
    return sum(times[pid] for pid in mine)


# ---------------------------------------------------------------------------------------------
# 3. The simulation


@dataclass
class Tally:
    honest: Counter[str] = field(default_factory=Counter)
    attacker: Counter[str] = field(default_factory=Counter)
    honest_solve_seconds: list[float] = field(default_factory=list)
    honest_work: list[int] = field(default_factory=list)
    attacker_work_accepted: list[int] = field(default_factory=list)
    capacity_refusals_below_top: int = 0
    levels_served: Counter[str] = field(default_factory=Counter)


def judge(
    provider: ProofOfWork, state: MemoryState, value: str, client: str
) -> tuple[bool, str, int]:
    """What the flow does without shared state: the provider's check, then the pressure
    count of a passing solution (with the flow's handling of a failed ``spend``)."""
    fields = Fields()
    fields.add("altcha", value)
    request = ClientRequest(method="POST", path="/login", client_host=client, headers={}, raw={})
    verdict = provider.check(fields, request)
    level = int(verdict.details.get("level", -1)) if verdict.details else -1
    if verdict.passed:
        assert provider.pressure is not None and provider.hints is not None
        count_on(state, "proof_of_work", provider.pressure, provider.hints, level, client)
    return verdict.passed, verdict.reason, level


def simulate(
    options: dict[str, Any],
    *,
    cores: int,
    attacker_networks: int,
    native_rate: float,
    browser_rate: float,
    seconds: float,
    honest_per_second: float,
    seed: int = 18,
) -> Tally:
    rng = random.Random(seed)
    random.seed(seed)
    clock = Clock()
    provider = ProofOfWork(SECRET, clock=clock, **options)
    state = MemoryState(clock=clock)
    top = len(provider.levels) - 1
    tally = Tally()
    events: list[tuple[float, int, str, Any]] = []
    sequence = 0
    attacker_pool = [f"10.{i // 256 % 256}.{i % 256}.9" for i in range(attacker_networks)]

    def at(moment: float, kind: str, data: Any) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(events, (moment, sequence, kind, data))

    with recorded_numbers() as numbers:

        def fetch(now: float, client: str, who: str) -> tuple[dict[str, Any], int]:
            clock.now = now
            asking = ClientRequest(
                method="GET",
                path="/captcha-guard/challenge",
                client_host=client,
                headers={"user-agent": BROWSER_UA, "accept-language": "en"},
                raw={},
            )
            challenge = provider.new_challenge(asking)
            tally.levels_served[f"{who}:{provider.levels.index(challenge['maxnumber'])}"] += 1
            return challenge, numbers.pop(challenge["challenge"])

        def attack(now: float) -> None:
            client = rng.choice(attacker_pool)
            challenge, number = fetch(now, client, "attacker")
            at(now + (number + 1) / native_rate, "attacker", (challenge, number, client))

        def honest(now: float, attempt: int, client: str) -> None:
            challenge, number = fetch(now, client, "honest")
            solving = (number + 1) / browser_rate
            tally.honest_solve_seconds.append(solving)
            tally.honest_work.append(number + 1)
            typing = rng.uniform(2.0, 20.0)
            at(now + max(typing, solving), "honest", (challenge, number, client, attempt))

        for _ in range(cores):
            attack(0.0)
        moment = rng.expovariate(honest_per_second)
        while moment < seconds:
            at(moment, "arrives", None)
            moment += rng.expovariate(honest_per_second)
        while events:
            now, _, kind, data = heapq.heappop(events)
            if kind == "arrives":
                honest(
                    now,
                    1,
                    f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                )
                continue
            if now > seconds and kind == "attacker":
                continue
            clock.now = now
            passed, reason, level = judge(provider, state, encode(data[0], data[1]), data[2])
            outcome = "passed" if passed else reason.removeprefix("proof of work: ")
            if kind == "attacker":
                tally.attacker[outcome] += 1
                if passed:
                    tally.attacker_work_accepted.append(data[1] + 1)
                attack(now)
                continue
            tally.honest[outcome] += 1
            if "too many recent" in reason and level < top:
                tally.capacity_refusals_below_top += 1
            if not passed and data[3] == 1:
                honest(now, 2, data[2])
    return tally


def summary(tally: Tally, baseline_work: float | None) -> dict[str, Any]:
    attacker_mean = (
        statistics.fmean(tally.attacker_work_accepted) if tally.attacker_work_accepted else 0.0
    )
    return {
        "honest_median_solve_s": round(statistics.median(tally.honest_solve_seconds), 3),
        "honest_p90_solve_s": round(statistics.quantiles(tally.honest_solve_seconds, n=10)[-1], 3),
        "honest_mean_work": round(statistics.fmean(tally.honest_work)),
        "honest_outcomes": dict(tally.honest),
        "honest_capacity_refusals_below_top": tally.capacity_refusals_below_top,
        "attacker_outcomes": dict(tally.attacker),
        "attacker_mean_work_per_accepted": round(attacker_mean),
        "attacker_work_vs_no_attack": (
            round(attacker_mean / baseline_work, 1) if baseline_work and attacker_mean else None
        ),
        "levels_served": dict(sorted(tally.levels_served.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--browser-solves", type=int, default=6)
    parser.add_argument("--browser-rate", type=float, help="skip Chromium: hashes/s to assume")
    parser.add_argument("--seconds", type=float, default=300.0, help="virtual seconds of attack")
    parser.add_argument("--honest", type=float, default=2.0, help="honest users per second")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.browser_rate is None:
        browser = browser_rate(args.browser_solves)
    else:
        browser = {
            "widget": None,
            "samples": [],
            "hashes_per_second": args.browser_rate,
            "wall_hashes_per_second": args.browser_rate,
        }
    rate = browser["hashes_per_second"]
    with tempfile.TemporaryDirectory(prefix="pow-pressure-") as directory:
        solver = build_solver(Path(directory))
        first = next(iter(SAMPLES))
        measured = measure(solver, first, SAMPLES[first])
    native = measured.hashes_per_second

    runs: dict[str, Any] = {}
    common = {"native_rate": native, "browser_rate": rate, "seconds": args.seconds}
    for config, options in CONFIGS.items():
        quiet = simulate(
            options, cores=0, attacker_networks=1, honest_per_second=args.honest, **common
        )
        baseline = statistics.fmean(quiet.honest_work)
        runs[f"{config}: no attack"] = summary(quiet, None)
        for label, cores, networks in (
            ("flood, 2 cores, 100,000 networks", 2, 100_000),
            ("flood, 2 cores, 3 networks", 2, 3),
            ("on paper: flood, 8 cores, 100,000 networks", 8, 100_000),
            ("on paper: flood, 8 cores, 3 networks", 8, 3),
        ):
            tally = simulate(
                options,
                cores=cores,
                attacker_networks=networks,
                honest_per_second=args.honest,
                **common,
            )
            runs[f"{config}: {label}"] = summary(tally, baseline)
    result = {
        "browser": browser,
        "native_hashes_per_second_per_core": native,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"honest: widget {browser['widget']} in headless Chromium, "
        f"{rate / 1e3:.0f} k hashes per CPU second "
        f"({browser['wall_hashes_per_second'] / 1e3:.0f} k per wall second on this machine, "
        f"{len(browser['samples'])} solves); "
        f"attacker: native {native / 1e6:.2f} M hashes/s per core"
    )
    print(
        "\n| run | honest median solve | honest p90 | honest mean work | attacker work per "
        "accepted | vs no attack | attacker accepted | honest refused (capacity, below top) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, run in runs.items():
        print(
            f"| {label} | {run['honest_median_solve_s']} s | {run['honest_p90_solve_s']} s "
            f"| {run['honest_mean_work']:,} | {run['attacker_mean_work_per_accepted']:,} "
            f"| {run['attacker_work_vs_no_attack'] or '-'}x "
            f"| {run['attacker_outcomes'].get('passed', 0):,} "
            f"| {run['honest_capacity_refusals_below_top']} |"
        )
    for label, run in runs.items():
        print(f"\n{label}: levels served {run['levels_served']}")
        print(f"  honest {run['honest_outcomes']}; attacker {run['attacker_outcomes']}")


if __name__ == "__main__":
    main()
