"""The gate's CPU per adversarial body against the parsers of Starlette, Django and Werkzeug on
the same bytes, side by side in one process: python bench/parse_cost.py (about 30 s)

Issue 15, section 4: the gate must never work harder than the app on the same body. For every
row, the gate's ``fields.collect`` (what a protected request costs before the verdict, with the
default ``ParseLimits``) is held to at most twice the cheapest of:

- Starlette: ``request.form()``'s ``MultiPartParser`` / ``FormParser`` (python-multipart);
- Django: ``WSGIRequest.POST`` (its own multipart parser and ``QueryDict``);
- Werkzeug (Flask): ``Request.form``;

and for JSON bodies ``json.loads`` of the bytes, which is what each of them does
(``request.json()``, ``get_json()``, a Django view's ``json.loads(request.body)``). A framework
that refuses a body is timed to its refusal. CPU is ``time.process_time``, best of N runs.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.conf import settings

if not settings.configured:
    settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], DEFAULT_CHARSET="utf-8")

from django.core.handlers.wsgi import WSGIRequest
from werkzeug.wrappers import Request as WerkzeugRequest

from bench._parsers import cpu, gate_parse, starlette_form

KiB, MiB = 1 << 10, 1 << 20
MP = "multipart/form-data; boundary=b"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
CLOSE = b"--b--\r\n"


def part(name: bytes, value: bytes, headers: bytes = b"") -> bytes:
    disposition = b'Content-Disposition: form-data; name="' + name + b'"\r\n'
    return b"--b\r\n" + disposition + headers + b"\r\n" + value + b"\r\n"


# The bodies: each about what a client may send inside the default 1 MiB max_body_size.


def part_header_flood() -> tuple[str, bytes]:
    # One part whose headers are 1 MiB of short lines (the 105 ms against 0.3 ms).
    return MP, part(b"a", b"1", b"X-A: b\r\n" * (MiB // 8)) + CLOSE


def part_header_long_line() -> tuple[str, bytes]:
    return MP, part(b"a", b"1", b"X-A: " + b"b" * MiB + b"\r\n") + CLOSE


def escaped_names(escape: bytes, count: int = 1_000) -> Callable[[], tuple[str, bytes]]:
    # 1,000 names each 1 KiB of one percent-escape: %E9 (not UTF-8) or %C3%A9 (UTF-8).
    def make() -> tuple[str, bytes]:
        name = escape * (KiB // len(escape))
        return FORM, b"&".join(name + b"%d=1" % i for i in range(count))

    return make


def escaped_values() -> tuple[str, bytes]:
    return FORM, b"&".join(b"a%d=" % i + b"%E9" * 341 for i in range(1_000))


def long_value() -> tuple[str, bytes]:
    return FORM, b"a=" + b"%41" * (MiB // 3 - 1)


def tiny_parts(count: int) -> Callable[[], tuple[str, bytes]]:
    return lambda: (MP, part(b"a", b"1") * count + CLOSE)


def named_parts() -> tuple[str, bytes]:
    return MP, b"".join(part(b"a%d" % i, b"1") for i in range(1_000)) + CLOSE


def long_part_value() -> tuple[str, bytes]:
    return MP, part(b"a", b"x" * (MiB - 100)) + CLOSE


def part_lines() -> tuple[str, bytes]:
    # One value of 1 MiB of short lines: a parser that looks for the boundary line by line.
    return MP, part(b"a", b"x\r\n" * (MiB // 3 - 40)) + CLOSE


def many_pairs() -> tuple[str, bytes]:
    return FORM, b"&".join(b"a%d=1" % i for i in range(1_000))


def json_deep(depth: int) -> Callable[[], tuple[str, bytes]]:
    return lambda: (JSON, b"[" * depth + b"]" * depth)


def json_items(count: int) -> Callable[[], tuple[str, bytes]]:
    return lambda: (JSON, b"[" + b"{}," * (count - 1) + b"{}]")


def json_pyramids() -> tuple[str, bytes]:
    # As many arrays nested 128 deep as the item limit allows: the most the depth check costs.
    return JSON, b"[" + b",".join([b"[" * 127 + b"]" * 127] * 156) + b"]"


def json_broom() -> tuple[str, bytes]:
    # 127 levels, each with a fan of 75 empty arrays: many peaks at every depth.
    level = b"[]"
    for _ in range(127):
        level = b"[" + b"[]," * 75 + level + b"]"
    return JSON, level


def json_keys() -> tuple[str, bytes]:
    return JSON, json.dumps({f"k{i}": i for i in range(6_000)}).encode()


def json_strings() -> tuple[str, bytes]:
    return JSON, json.dumps({"a": "\\u00e9" * (MiB // 8)}).encode()


CASES: list[tuple[str, Callable[[], tuple[str, bytes]]]] = [
    ("multipart, one part with 1 MiB of header lines", part_header_flood),
    ("multipart, one part header line of 1 MiB", part_header_long_line),
    ("multipart, 1,000 tiny parts (at the limit)", tiny_parts(1_000)),
    ("multipart, 17,000 tiny parts (1 MiB)", tiny_parts(17_000)),
    ("multipart, 1,000 parts each named anew", named_parts),
    ("multipart, one value of 1 MiB", long_part_value),
    ("multipart, one value of 1 MiB of short lines", part_lines),
    ("urlencoded, 1,000 names of 1 KiB of %E9", escaped_names(b"%E9")),
    ("urlencoded, 1,000 names of 1 KiB of %C3%A9", escaped_names(b"%C3%A9")),
    ("urlencoded, 1,000 values of 1 KiB of %E9", escaped_values),
    ("urlencoded, one value of 1 MiB of %41", long_value),
    ("urlencoded, 1,000 pairs", many_pairs),
    ("JSON, nested 128 deep (at the limit)", json_deep(128)),
    ("JSON, nested 900 deep", json_deep(900)),
    ("JSON, 6,666 empty objects (at the item limit)", json_items(6_666)),
    ("JSON, 156 arrays nested 128 deep (at the limits)", json_pyramids),
    ("JSON, 127 levels of 75 empty arrays each", json_broom),
    ("JSON, one object of 6,000 keys", json_keys),
    ("JSON, one string of 1 MiB of escapes", json_strings),
]


def _environ(content_type: str, body: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }


def django(content_type: str, body: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            return WSGIRequest(_environ(content_type, body)).POST
        except Exception as exc:  # TooManyFieldsSent, RequestDataTooBig, ...: a 400
            return type(exc).__name__

    return run


def werkzeug(content_type: str, body: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            return WerkzeugRequest(_environ(content_type, body)).form
        except Exception as exc:  # RequestEntityTooLarge, ...: a 413
            return type(exc).__name__

    return run


def json_loads(body: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            return type(exc).__name__

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"# {platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print(f"# CPU per body, best of {args.repeat}; target: gate <= 2x the cheapest framework")
    print("| body | bytes | gate | gate answer | Starlette | Django | Werkzeug | ratio | met |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    worst = 0.0
    for title, make in CASES:
        content_type, body = make()
        ours = gate_parse(content_type, body)
        answer = ours()
        answer = answer if isinstance(answer, str) else "read"
        if content_type == JSON:
            loads = cpu(json_loads(body), args.repeat, 0.5)
            theirs = {"Starlette": loads, "Django": loads, "Werkzeug": loads}
        else:
            theirs = {
                "Starlette": cpu(starlette_form(content_type, body), args.repeat, 0.5),
                "Django": cpu(django(content_type, body), args.repeat, 0.5),
                "Werkzeug": cpu(werkzeug(content_type, body), args.repeat, 0.5),
            }
        mine = cpu(ours, args.repeat, 0.5)
        cheapest = min(theirs.values())
        ratio = mine / cheapest if cheapest else float("inf")
        worst = max(worst, ratio)
        cells = " | ".join(f"{theirs[name] * 1e3:.2f} ms" for name in theirs)
        print(
            f"| {title} | {len(body):,} | {mine * 1e3:.2f} ms | {answer} | {cells} "
            f"| {ratio:.2f} | {'yes' if ratio <= 2 else 'NO'} |"
        )
    print(f"\nworst ratio {worst:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
