"""client_ip=: the client's address behind proxies, as the fallback budget and siteverify's
remoteip see it. The resolver alone first, then through both doors on real servers, where the
proxy is this test writing X-Forwarded-For / Forwarded the way a proxy would."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

import pytest

from captcha_guard import FallbackLimit, TrustedProxies
from captcha_guard._client_ip import ClientAddress
from captcha_guard.testing import Outage
from tests.hardening_kit import CASES, DOORS, guarded_site

PEER = "127.0.0.1"


def scope(*headers: tuple[str, str], client: Any = (PEER, 5000)) -> dict[str, Any]:
    return {
        "type": "http",
        "client": client,
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
    }


def environ(**headers: str) -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": "POST", "REMOTE_ADDR": PEER}
    env.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return env


# ---------------------------------------------------------------------------------------------
# The resolver


def test_without_client_ip_the_peer_is_the_client_and_headers_are_ignored() -> None:
    resolve = ClientAddress(None)
    assert resolve.asgi(scope(("x-forwarded-for", "203.0.113.9"))) == PEER
    assert resolve.wsgi(environ(x_forwarded_for="203.0.113.9")) == PEER
    assert resolve.asgi(scope(client=None)) is None


@pytest.mark.parametrize(
    ("hops", "header", "expected"),
    [
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the left entry is the client's claim
        (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        (2, "198.51.100.1", PEER),  # fewer entries than proxies: came around them
        (1, "", PEER),
        (1, "unknown", None),
        (1, "1.2.3.4, not-an-ip", None),
        (1, "[2001:db8::1]:4711", "2001:db8::1"),
        (1, "198.51.100.1:4711", "198.51.100.1"),
        (1, "2001:DB8:0::1", "2001:db8::1"),
        (0, "198.51.100.1", PEER),
    ],
)
def test_x_forwarded_for_is_read_from_the_right(
    hops: int, header: str, expected: str | None
) -> None:
    resolve = ClientAddress(hops)
    headers = [("x-forwarded-for", header)] if header else []
    assert resolve.asgi(scope(*headers)) == expected
    assert resolve.wsgi(environ(x_forwarded_for=header) if header else environ()) == expected


def test_several_header_lines_are_one_list_in_order() -> None:
    resolve = ClientAddress(2)
    lines = scope(("x-forwarded-for", "6.6.6.6, 198.51.100.1"), ("x-forwarded-for", "10.0.0.2"))
    assert resolve.asgi(lines) == "198.51.100.1"


def test_a_huge_header_costs_bounded_work_and_the_right_end_is_still_read() -> None:
    resolve = ClientAddress(1)
    header = "6.6.6.6," * 100_000 + "198.51.100.1"
    assert resolve.asgi(scope(("x-forwarded-for", header))) == "198.51.100.1"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('for=6.6.6.6, for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ("for=_hidden", None),
        ("proto=https", None),
        ('For="192.0.2.60:80"', "192.0.2.60"),
    ],
)
def test_the_forwarded_header_when_named(header: str, expected: str | None) -> None:
    resolve = ClientAddress(TrustedProxies(1, header="forwarded"))
    assert resolve.asgi(scope(("forwarded", header))) == expected
    assert resolve.wsgi(environ(forwarded=header)) == expected


def test_only_the_named_header_is_read() -> None:
    # The proxy manages one header and passes the other through: that one is the client's.
    xff = ClientAddress(1)
    assert xff.asgi(scope(("forwarded", "for=6.6.6.6"))) == PEER
    forwarded = ClientAddress(TrustedProxies(1, header="forwarded"))
    assert forwarded.asgi(scope(("x-forwarded-for", "6.6.6.6"))) == PEER


def test_a_callable_gets_the_scope_or_environ(caplog: pytest.LogCaptureFixture) -> None:
    resolve = ClientAddress(lambda raw: raw.get("REMOTE_ADDR") or "192.0.2.7")
    assert resolve.asgi(scope()) == "192.0.2.7"
    assert resolve.wsgi(environ()) == PEER
    assert ClientAddress(lambda raw: 42).asgi(scope()) is None  # type: ignore[arg-type,return-value]

    def broken(raw: Any) -> str:
        raise KeyError("cf-connecting-ip")

    with caplog.at_level(logging.DEBUG, "captcha_guard"):
        assert ClientAddress(broken).asgi(scope()) is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_trusted_proxies_is_itself_a_callable_for_either_door() -> None:
    proxies = TrustedProxies(1)
    assert proxies(scope(("x-forwarded-for", "198.51.100.1"))) == "198.51.100.1"
    assert proxies(environ(x_forwarded_for="198.51.100.1")) == "198.51.100.1"


@pytest.mark.parametrize("option", [-1, True, 1.5, "1", 65])
def test_bad_options_fail_at_construction(option: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="client_ip"):
        ClientAddress(option)


def test_an_unknown_header_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="header"):
        TrustedProxies(1, header="x-real-ip")


# ---------------------------------------------------------------------------------------------
# Through both doors, on real servers


def _budget(per_minute: int, **options: Any) -> FallbackLimit:
    # The counts live in the door's MemoryState: each bucket's minute starts at its first
    # fallback, so no real minute boundary can reset one mid-test.
    return FallbackLimit(per_minute, **options)


@pytest.mark.parametrize("door", DOORS)
def test_siteverify_remoteip_is_the_address_behind_the_proxy(door: str) -> None:
    turnstile = next(case for case in CASES if case.name == "turnstile")
    with guarded_site(turnstile, door=door, client_ip=1) as s:
        ok = s.post(data=s.issue(), headers={"x-forwarded-for": "6.6.6.6, 198.51.100.23"})
        direct = s.post(data=s.issue())
        forms = [dict(parse_qsl(r.content.decode())) for r in s.emulator.requests]
    assert ok.json()["outcome"] == "passed"
    assert direct.json()["outcome"] == "passed"
    assert [f.get("remoteip") for f in forms] == ["198.51.100.23", "127.0.0.1"]


@pytest.mark.parametrize("door", DOORS)
def test_rotating_addresses_in_one_ipv6_64_share_one_budget(door: str) -> None:
    with guarded_site(CASES[0], door=door, client_ip=1, fallback_limit=_budget(3)) as s:
        s.emulator.outage = Outage.HTTP_500

        def post(address: str) -> int:
            headers = {"x-forwarded-for": address}
            answer = s.post(data=s.emulator.issue(), headers=headers)
            return answer.status_code

        one_64 = [post(f"2001:db8:1:2::{n:x}") for n in range(1, 6)]
        next_64 = post("2001:db8:1:3::1")
        v4 = [post("198.51.100.7"), post("198.51.100.8")]  # an IPv4 address is one network
    assert one_64 == [200, 200, 200, 403, 403]
    assert next_64 == 200
    assert v4 == [200, 200]


@pytest.mark.parametrize("door", DOORS)
def test_a_shorter_ipv6_prefix_is_stricter(door: str) -> None:
    limit = _budget(2, ipv6_prefix=48)
    with guarded_site(CASES[0], door=door, client_ip=1, fallback_limit=limit) as s:
        s.emulator.outage = Outage.HTTP_500
        codes = [
            s.post(
                data=s.emulator.issue(), headers={"x-forwarded-for": f"2001:db8:1:{n:x}::1"}
            ).status_code
            for n in range(4)
        ]
    assert codes == [200, 200, 403, 403]


@pytest.mark.parametrize("door", DOORS)
def test_a_spoofed_left_entry_does_not_buy_a_new_budget(door: str) -> None:
    with guarded_site(CASES[0], door=door, client_ip=1, fallback_limit=_budget(1)) as s:
        s.emulator.outage = Outage.HTTP_500
        codes = [
            s.post(
                data=s.emulator.issue(),
                headers={"x-forwarded-for": f"10.9.9.{n}, 198.51.100.50"},
            ).status_code
            for n in range(3)
        ]
    assert codes == [200, 403, 403]
