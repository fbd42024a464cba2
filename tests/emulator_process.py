"""An emulator served from a process of its own, as a real provider would be: its threads do
not compete for the test's interpreter lock, so a load test measures the gate, not the
emulator.

    python -m tests.emulator_process geetest 1000

prints one JSON line, ``{"url": ..., "fields": [...]}`` (the endpoint, and that many solved
captchas), then serves until its stdin closes, answering each line ``stats`` read there with
``{"connections": n, "calls": n}`` (TCP connections accepted, requests answered).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EmulatorProcess:
    url: str
    fields: list[dict[str, str]]
    process: subprocess.Popen[str] = field(repr=False)

    def stats(self) -> dict[str, int]:
        """TCP connections the emulator accepted, and requests it answered, so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return dict(json.loads(self.process.stdout.readline()))


@contextmanager
def emulator_process(case: str, solved: int) -> Iterator[EmulatorProcess]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator_process", case, str(solved)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        ready = json.loads(process.stdout.readline())
        yield EmulatorProcess(ready["url"], ready["fields"], process)
        process.stdin.close()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def main(case_name: str, solved: int) -> None:
    from tests.hardening_kit import CASES

    case = next(c for c in CASES if c.name == case_name)
    emulator: Any = case.emulator()
    fields = [case.issue(emulator) for _ in range(solved)]
    with emulator.serve() as server:
        print(json.dumps({"url": server.endpoint(case.path), "fields": fields}), flush=True)
        for line in sys.stdin:  # until the parent closes it
            if line.strip() == "stats":
                stats = {"connections": server.connections, "calls": emulator.calls}
                print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
