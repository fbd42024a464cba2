"""The gate's body parsing against Starlette's own parsers, side by side in one process:
python bench/parse_limits.py

For each body, the best of N runs of: the gate's ``fields.collect`` (what a protected request
costs before the verdict) and the parser the app behind it would run (Starlette's
``MultiPartParser`` / ``FormParser`` / ``json.loads``). Hostile bodies are 1 MiB, the default
``max_body_size``; the point is that the gate refuses them in no more time than the app's own
parser takes to refuse (or read) them, so the gate adds no lever an attacker lacks already.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._parsers import cpu, gate_parse, starlette_form

MiB = 1 << 20


def tiny_parts(count: int) -> tuple[str, bytes]:
    part = b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
    return "multipart/form-data; boundary=b", part * count + b"--b--\r\n"


def distinct_parts(count: int) -> tuple[str, bytes]:
    # Every part named differently: the gate's cache of part headers does not help.
    body = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="a%d"\r\n\r\n1\r\n' % i for i in range(count)
    )
    return "multipart/form-data; boundary=b", body + b"--b--\r\n"


def tiny_files(count: int) -> tuple[str, bytes]:
    part = b'--b\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n1\r\n'
    return "multipart/form-data; boundary=b", part * count + b"--b--\r\n"


def at_the_part_limits() -> tuple[str, bytes]:
    _, fields = tiny_parts(1_000)
    _, files = tiny_files(1_000)
    return "multipart/form-data; boundary=b", fields[: -len(b"--b--\r\n")] + files


def login_multipart() -> tuple[str, bytes]:
    fields = {
        "username": "ada",
        "password": "correct horse battery staple",
        "lot_number": "4dc3cfc2cdff448cad8d13107198d473",
        "captcha_output": "fV9ZXmyPx" * 8,
        "pass_token": "8c5c8c8e0f2a4c7b9e6d5f4a3b2c1d0e" * 2,
        "gen_time": "1700000000",
    }
    body = b"".join(
        b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v.encode())
        for k, v in fields.items()
    )
    return "multipart/form-data; boundary=b", body + b"--b--\r\n"


def many_pairs(size: int) -> tuple[str, bytes]:
    return "application/x-www-form-urlencoded", b"&".join([b"a=1"] * (size // 4))


def json_objects(size: int) -> tuple[str, bytes]:
    return "application/json", b"[" + b"{}," * (size // 3 - 1) + b"{}]"


def json_deep(depth: int) -> tuple[str, bytes]:
    return "application/json", b"[" * depth + b"]" * depth


def starlette_parse(content_type: str, body: bytes) -> Callable[[], object]:
    if content_type != "application/json":
        return starlette_form(content_type, body)

    def run() -> object:
        try:
            return json.loads(body)
        except RecursionError:
            return "too deep"

    return run


CASES: list[tuple[str, Callable[[], tuple[str, bytes]]]] = [
    ("multipart, 17,000 tiny fields (1 MiB)", lambda: tiny_parts(17_000)),
    ("multipart, 15,000 tiny files (1 MiB)", lambda: tiny_files(15_000)),
    ("multipart, 1,000 tiny fields (at the limit)", lambda: tiny_parts(1_000)),
    ("multipart, 1,000 named fields, cold cache (limit)", lambda: distinct_parts(1_000)),
    ("multipart, 1,000 fields + 1,000 files (at the limits)", at_the_part_limits),
    ("multipart login form, 6 fields", login_multipart),
    ("urlencoded, 260,000 pairs (1 MiB)", lambda: many_pairs(MiB)),
    ("JSON, 350,000 empty objects (1 MiB)", lambda: json_objects(MiB)),
    ("JSON, 6,666 empty objects (at the item limit)", lambda: json_objects(20_000)),
    ("JSON, nested 128 deep (at the limit)", lambda: json_deep(128)),
    ("JSON, nested 900 deep", lambda: json_deep(900)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print(f"# CPU, best of {args.repeat}; 'starlette' runs on one event loop kept for all runs")
    print("| body | bytes | gate | gate answer | Starlette | gate / Starlette |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for title, make in CASES:
        content_type, body = make()
        gate = gate_parse(content_type, body, cold="cold" in title)
        starlette = starlette_parse(content_type, body)
        answer = gate()
        answer = answer if isinstance(answer, str) else "read"
        gate_s, star_s = cpu(gate, args.repeat), cpu(starlette, args.repeat)
        print(
            f"| {title} | {len(body):,} | {gate_s * 1e3:.3f} ms | {answer} "
            f"| {star_s * 1e3:.3f} ms | {gate_s / star_s:.3f} |"
        )


if __name__ == "__main__":
    main()
