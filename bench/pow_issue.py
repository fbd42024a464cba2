"""What a proof-of-work challenge costs the server to issue, beside what it costs to verify.

    python bench/pow_issue.py [--seconds 1.0] [--json]

ALTCHA v2 issues deterministically: the server runs the KDF once per challenge, on an
unauthenticated GET, then verifies with HMACs. This measures, side by side in one process and
one run, for v1 and for v2 with each KDF at its default cost: CPU time per ``new_challenge()``,
per verification of a good solution (``prepare``: every check but the replay memory), and per
refusal of a forged one (a wrong derived key or number). Then the issuing budget: how many v2
challenges a second one process hands out when a client asks as fast as it can, and the share
of a core that took. Process CPU time, so a busy machine does not flatter or hurt it.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from altcha import v2 as altcha2  # noqa: E402
from altcha.v1 import solve_challenge as solve_v1  # noqa: E402

from captcha_guard import ProofOfWork  # noqa: E402
from captcha_guard._fields import Fields  # noqa: E402
from captcha_guard.providers._pow_v2 import IssueBusy  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
CONFIGS: dict[str, dict[str, Any]] = {
    "v1 (SHA-256, default)": {},
    "v2 PBKDF2/SHA-256 (default, cost 100)": {"version": 2},
    "v2 PBKDF2/SHA-256, cost 1,000": {"version": 2, "cost": 1000},
    "v2 SCRYPT (N=1024, r=8)": {"version": 2, "algorithm": "SCRYPT"},
    "v2 ARGON2ID (t=2, 19 MiB)": {"version": 2, "algorithm": "ARGON2ID"},
}


def per_call(work: Callable[[], object], seconds: float) -> tuple[float, int]:
    """CPU microseconds per call of ``work``, over about ``seconds`` of CPU."""
    calls, started = 0, time.process_time()
    while True:
        for _ in range(5):
            work()
        calls += 5
        spent = time.process_time() - started
        if spent >= seconds:
            return spent / calls * 1e6, calls


def fields_of(payload: str) -> Fields:
    fields = Fields()
    fields.add("altcha", payload)
    return fields


def solved(provider: ProofOfWork) -> tuple[str, str]:
    """A good payload and a forged one (wrong key or number) for ``provider``."""
    challenge = provider.new_challenge()
    if provider.version == 1:
        solution = solve_v1(
            challenge["challenge"], challenge["salt"], "SHA-256", challenge["maxnumber"]
        )
        assert solution is not None
        good = {
            "algorithm": "SHA-256",
            "challenge": challenge["challenge"],
            "number": solution.number,
            "salt": challenge["salt"],
            "signature": challenge["signature"],
        }
        forged = {**good, "number": solution.number + 1}
    else:
        parsed = altcha2.Challenge.from_dict(challenge)
        found = altcha2.solve_challenge(parsed, timeout=120)
        assert found is not None
        good = altcha2.Payload(parsed, found).to_dict()
        forged = {**good, "solution": {"counter": found.counter, "derivedKey": "ab" * 32}}

    def encode(document: object) -> str:
        return base64.b64encode(json.dumps(document).encode()).decode()

    return encode(good), encode(forged)


def judging(provider: ProofOfWork, payload: str) -> Callable[[], object]:
    return lambda: provider.prepare(fields_of(payload))


def measure(seconds: float) -> list[dict[str, Any]]:
    rows = []
    for label, options in CONFIGS.items():
        # A small counter range keeps the solving short; issuing and verifying do not
        # depend on it.
        provider = ProofOfWork(SECRET, max_number=20, issue_budget=1.0, **options)
        good, forged = solved(provider)
        assert not isinstance(provider.prepare(fields_of(good)), type(provider.rejected("x")))
        issue_us, issued = per_call(provider.new_challenge, seconds)
        verify_us, _ = per_call(judging(provider, good), seconds / 2)
        refuse_us, _ = per_call(judging(provider, forged), seconds / 2)
        rows.append(
            {
                "config": label,
                "issue_us": round(issue_us, 1),
                "verify_us": round(verify_us, 1),
                "refuse_us": round(refuse_us, 1),
                "issue_over_verify": round(issue_us / verify_us, 1),
                "issued": issued,
            }
        )
    return rows


def budget(seconds: float) -> dict[str, Any]:
    """A client asking for v2 challenges (cost 1,000) as fast as it can, for ``seconds``."""
    provider = ProofOfWork(SECRET, version=2, cost=1000)
    served = refused = 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        try:
            provider.new_challenge()
            served += 1
        except IssueBusy:
            refused += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # The refusals cost something too; what the budget bounds is the KDF time.
    return {
        "seconds": round(wall, 2),
        "served_per_s": round(served / wall, 1),
        "refused_per_s": round(refused / wall, 1),
        "budget_share": provider._issue_budget.share,
        "process_cpu_share": round(cpu / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per row")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.seconds)
    flood = budget(max(args.seconds * 3, 2.0))
    if args.json:
        print(json.dumps({"rows": rows, "budget": flood}, indent=2))
        return
    print(f"python {platform.python_version()}, {platform.machine()}")
    print("| config | issue µs CPU | verify good µs | refuse forged µs | issue / verify |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['config']} | {row['issue_us']} | {row['verify_us']} | {row['refuse_us']} |"
            f" {row['issue_over_verify']}x |"
        )
    print(
        f"\nGET flood, v2 cost 1,000, issue_budget {flood['budget_share']}: "
        f"{flood['served_per_s']} challenges/s served, {flood['refused_per_s']}/s answered 503, "
        f"process CPU {flood['process_cpu_share']} of a core over {flood['seconds']} s"
    )


if __name__ == "__main__":
    main()
