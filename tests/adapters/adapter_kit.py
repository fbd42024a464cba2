"""What the three adapter test modules share: the GeeTest emulator on loopback (module-scoped,
outage reset per test), the environment a server in a process of its own reads it from, and
the identity cases (a repeated Content-Type, charset=, Content-Encoding): whatever the head
says, what the vendor was asked about is what the view read, or the view did not run."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from captcha_guard.testing import GeeTestEmulator
from tests.adapter_servers import raw

Served = tuple[GeeTestEmulator, str]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    emulator = GeeTestEmulator()
    with emulator.serve() as server:
        yield emulator, server.endpoint("/validate")


@pytest.fixture
def emulator(served: Served) -> Iterator[GeeTestEmulator]:
    emulator = served[0]
    emulator.outage = None
    yield emulator
    emulator.outage = None


def emulator_env(served: Served) -> dict[str, str]:
    """What tests/adapters/adapter_apps.py and tests/adapters/django_site read in a server's
    own process."""
    emulator, endpoint = served
    return {
        "ADAPTER_ENDPOINT": endpoint,
        "ADAPTER_CAPTCHA_ID": emulator.captcha_id,
        "ADAPTER_CAPTCHA_KEY": emulator.captcha_key,
    }


def last_lot(emulator: GeeTestEmulator) -> str:
    """The lot_number of the last request the vendor received."""
    return dict(httpx.QueryParams(emulator.requests[-1].content.decode()))["lot_number"]


IDENTITY_HEADS = {
    "plain form": ["Content-Type: application/x-www-form-urlencoded"],
    "repeated content-type": [
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: application/json",
    ],
    "repeated content-type, JSON first": [
        "Content-Type: application/json",
        "Content-Type: application/x-www-form-urlencoded",
    ],
    "utf-16 charset": ["Content-Type: application/x-www-form-urlencoded; charset=utf-16"],
    "latin-1 charset": ["Content-Type: application/x-www-form-urlencoded; charset=latin-1"],
    "gzip": ["Content-Type: application/x-www-form-urlencoded", "Content-Encoding: gzip"],
}


def identity_body(case: str, fields: dict[str, str]) -> bytes:
    form = urlencode(fields)
    if case == "repeated content-type, JSON first":
        return json.dumps(fields).encode()
    if case == "utf-16 charset":
        return form.encode("utf-16")
    if case == "gzip":
        return gzip.compress(form.encode())
    return form.encode()


def check_identity(url: str, emulator: GeeTestEmulator, path: str) -> set[str]:
    """Send every identity case to ``path``; the cases the view ran for (with a passed
    verdict on the very lot_number the vendor judged). The others must not reach the view."""
    passed = set()
    for case, lines in IDENTITY_HEADS.items():
        fields = emulator.issue()
        before = len(emulator.requests)
        head = "\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *lines])
        status, body = raw(url, head, identity_body(case, fields))
        if status == 200:
            answer = json.loads(body)
            assert len(emulator.requests) == before + 1, case
            assert answer["lot_number"] == last_lot(emulator) == fields["lot_number"], case
            assert answer["verdict"] == "passed", case
            passed.add(case)
        else:
            assert 400 <= status < 500, (case, status, body)  # the gate or the framework
            assert b'"view"' not in body, case
    return passed
