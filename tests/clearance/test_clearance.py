"""Clearance cookies: signing, reading, binding, scope, rotation, expiry, uses cap, revocation,
and every malformed cookie a client can send (never an exception, never a clearance)."""

from __future__ import annotations

import base64
import ipaddress
import re
import weakref
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captcha_guard import Clearance, Rule
from captcha_guard._clearance import (
    CLOCK_SKEW,
    GENERATION_KEY,
    NAMESPACE,
    OP_READ_COUNTER,
    OP_SPEND,
    ClearanceCheck,
    ClearanceContext,
    ClearanceStatus,
    check_rule_clearance,
    cookie_values,
    is_loopback_host,
    network_of,
    rule_scope,
)
from captcha_guard._memory import MemoryState
from captcha_guard._state import StateFull, StateOp, StateUnavailable
from tests import TLS
from tests.helpers import drive

SECRET = "clearance-secret-for-tests-0123456789"
OTHER = "another-clearance-secret-9876543210"
NOW = 1_800_000_000.0
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"
SCOPE = "rule:POST:/comments"
S = ClearanceStatus


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ctx(
    client: str | None = "203.0.113.7",
    user_agent: str | bytes | None = UA,
    https: bool = True,
    host: str | None = "shop.example",
    now: float = NOW,
) -> ClearanceContext:
    return ClearanceContext(client, user_agent, https, host, now)


_STATES: weakref.WeakKeyDictionary[Clearance, MemoryState] = weakref.WeakKeyDictionary()


def state_for(clearance: Clearance) -> MemoryState:
    """The in-process state a door gives ``clearance`` (one per clearance here)."""
    state = _STATES.get(clearance)
    if state is None:
        state = _STATES[clearance] = MemoryState(clock=clearance.clock)
        clearance.bind_state(state)
    return state


def issue(clearance: Clearance, context: ClearanceContext | None = None, scope: str = SCOPE) -> str:
    _, header = drive(clearance.issue_flow(context or ctx(), scope), state_for(clearance).run)
    assert header is not None
    return header


def as_cookie(set_cookie: str) -> str:
    """What a browser sends back for a Set-Cookie value: name=value only."""
    return set_cookie.split(";", 1)[0]


def value_of(set_cookie: str) -> str:
    return as_cookie(set_cookie).split("=", 1)[1]


def status(
    clearance: Clearance,
    cookie: Any,
    context: ClearanceContext | None = None,
    scope: str = SCOPE,
) -> ClearanceStatus:
    flow = clearance.check_flow(cookie, context or ctx(), scope)
    _, check = drive(flow, state_for(clearance).run)
    return check.status  # type: ignore[no-any-return]


def checked(
    clearance: Clearance, cookie: Any, answer: Any, context: ClearanceContext | None = None
) -> tuple[list[StateOp], ClearanceCheck]:
    """The operations ``check_flow`` yielded, each answered by ``answer``, and its check."""
    return drive(clearance.check_flow(cookie, context or ctx(), SCOPE), answer)  # type: ignore[no-any-return]


def issued_with(clearance: Clearance, context: ClearanceContext, answer: Any) -> str | None:
    """The Set-Cookie value ``issue_flow`` gave, its operations answered by ``answer``."""
    return drive(clearance.issue_flow(context, SCOPE), answer)[1]  # type: ignore[no-any-return]


def answers(*results: Any) -> Any:
    """An ``answer`` giving ``results`` in turn (an exception is thrown in)."""
    pending = iter(results)
    return lambda op: next(pending)


# -- the cookie itself ----------------------------------------------------------------------


def test_https_cookie_is_host_prefixed_secure_httponly_lax_and_compact() -> None:
    header = issue(Clearance(SECRET))
    name, _, rest = header.partition("=")
    value, *attributes = rest.split("; ")
    assert re.fullmatch(r"__Host-cg_clearance-[A-Za-z0-9_-]{8}", name)
    assert re.fullmatch(r"[A-Za-z0-9_-]{74}", value)
    assert attributes == ["Path=/", "Max-Age=900", "HttpOnly", "SameSite=Lax", "Secure"]
    assert "domain" not in header.lower()  # __Host- forbids it, and a browser would drop it


def test_a_fresh_cookie_clears_its_own_client() -> None:
    clearance = Clearance(SECRET)
    ops, check = checked(clearance, as_cookie(issue(clearance)), state_for(clearance).run)
    assert check.status is S.VALID and check.cleared and ops == []


def test_cookie_is_found_among_other_cookies_and_headers() -> None:
    clearance = Clearance(SECRET)
    cookie = as_cookie(issue(clearance))
    assert status(clearance, f"a=1; {cookie}; b=2") is S.VALID
    assert status(clearance, [b"a=1", cookie.encode("latin-1")]) is S.VALID
    # Two Cookie headers are joined with "; " by the door (RFC 9113 8.2.3); "," is part of a
    # value (RFC 6265 splits on ";" only), so a comma-joined pair is one cookie "a".
    assert status(clearance, f"a=1, {cookie}, b=2") is S.ABSENT
    name, value = cookie.split("=", 1)
    assert status(clearance, f'{name}="{value}"') is S.VALID  # RFC 6265 allows quotes


def test_the_cookie_does_not_carry_the_address_or_user_agent_in_clear() -> None:
    header = issue(Clearance(SECRET))
    raw = base64.urlsafe_b64decode(value_of(header) + "==")
    assert ipaddress.ip_address("203.0.113.7").packed[:3] not in raw
    assert b"Mozilla" not in raw


def test_two_cookies_for_one_client_differ() -> None:
    clearance = Clearance(SECRET)
    assert value_of(issue(clearance)) != value_of(issue(clearance))


def test_repr_names_no_secret() -> None:
    assert SECRET not in repr(Clearance(SECRET)) and "keys=1" in repr(Clearance(SECRET))


# -- plain HTTP: only with secure=False, only towards loopback ---------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8000",
        "127.9.9.9",
        "localhost",
        "LOCALHOST:3000",
        "app.localhost",
        "[::1]:8080",
        "::1",
    ],
)
def test_plain_http_to_loopback_gets_a_plain_cookie_with_secure_false(host: str) -> None:
    clearance = Clearance(SECRET, secure=False)
    context = ctx(https=False, host=host, client="127.0.0.1")
    header = issue(clearance, context)
    assert not header.startswith("__Host-") and "Secure" not in header
    assert header.endswith("; Path=/; Max-Age=900; HttpOnly; SameSite=Lax")
    assert status(clearance, as_cookie(header), context) is S.VALID


@pytest.mark.parametrize(
    "host", ["shop.example", "10.0.0.1", "localhost.example", "127.0.0.1.nip.io", "", None, "[::2]"]
)
@pytest.mark.parametrize("secure", [None, False])
def test_plain_http_elsewhere_gets_no_cookie_and_reads_none(
    host: str | None, secure: bool | None
) -> None:
    clearance = Clearance(SECRET, secure=secure)
    context = ctx(https=False, host=host)
    assert issued_with(clearance, context, state_for(clearance).run) is None
    assert clearance.clear_cookie(context, SCOPE) is None
    secure_cookie = as_cookie(issue(clearance))
    assert status(clearance, secure_cookie, context) is S.ABSENT


def test_secure_true_sets_host_cookie_behind_a_tls_proxy_speaking_http() -> None:
    clearance = Clearance(SECRET, secure=True)
    context = ctx(https=False, host="shop.example")
    header = issue(clearance, context)
    assert header.startswith("__Host-") and header.endswith("; Secure")
    assert status(clearance, as_cookie(header), context) is S.VALID


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost", "[::1]:8080", "backend"])
def test_the_host_header_never_decides_secure(host: str) -> None:
    # Behind nginx's defaults (Host: $proxy_host) or Apache without ProxyPreserveHost, an
    # HTTPS site's request reaches the app as plain HTTP with a loopback or upstream Host.
    # By default that gets no cookie (not a plain one); a scheme the server reports as https
    # (proxy headers it trusts), or secure=True, gets the __Host- Secure one.
    default = Clearance(SECRET)
    proxied = ctx(https=False, host=host, client="127.0.0.1")
    assert issued_with(default, proxied, state_for(default).run) is None
    assert default.cookie_name_for(proxied, SCOPE) is None
    for clearance, context in [
        (default, ctx(https=True, host=host, client="127.0.0.1")),
        (Clearance(SECRET, secure=True), proxied),
        (Clearance(SECRET, secure=False), ctx(https=True, host=host, client="127.0.0.1")),
    ]:
        header = issue(clearance, context)
        assert header.startswith("__Host-") and header.endswith("; HttpOnly; SameSite=Lax; Secure")


def test_a_siblings_comma_laden_cookie_does_not_hide_the_real_clearance() -> None:
    # A sibling subdomain (Domain=.example.com) may set any cookie, commas and all, under our
    # name too: ";" alone separates cookies, so its commas are not eight candidates.
    clearance = Clearance(SECRET)
    cookie = as_cookie(issue(clearance))
    name = cookie.split("=", 1)[0]
    sibling = f"{name}=" + ",".join(f"{name}=x{i}" for i in range(20))
    assert status(clearance, f"{sibling}; {cookie}") is S.VALID
    assert status(clearance, f"prefs=a,b,c,d,e,f,g,h,i,j; {sibling}; theme=x; {cookie}") is S.VALID


def test_a_cookie_is_read_only_under_the_name_this_request_may_carry() -> None:
    clearance = Clearance(SECRET, secure=False)
    local = ctx(https=False, host="localhost", client="127.0.0.1")
    plain = issue(clearance, local)
    # The same token under the plain name on an HTTPS site (where any sibling domain could
    # have set it) is not looked at: only the __Host- one is.
    assert status(clearance, as_cookie(plain), ctx(client="127.0.0.1")) is S.ABSENT
    secure = issue(clearance, ctx(client="127.0.0.1"))
    assert status(clearance, as_cookie(secure), local) is S.ABSENT


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("[::1]", True), ("Localhost.", True), ("x.localhost:1", True),
     ("[::ffff:127.0.0.1]", True), ("localhost.", True), ("0.0.0.0", False), ("[fe80::1]", False),
     ("local", False), ("[::1", False), ("::1:80", False), (" ", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_clear_cookie_expires_it_under_the_same_name() -> None:
    clearance = Clearance(SECRET)
    name = as_cookie(issue(clearance)).split("=")[0]
    assert clearance.clear_cookie(ctx(), SCOPE) == (
        f"{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
    )


# -- tampering and malformed cookies ----------------------------------------------------------


def test_every_flipped_byte_is_refused() -> None:
    clearance = Clearance(SECRET)
    name, value = as_cookie(issue(clearance)).split("=", 1)
    raw = base64.urlsafe_b64decode(value + "==")
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            forged = bytearray(raw)
            forged[index] ^= bit
            text = base64.urlsafe_b64encode(bytes(forged)).rstrip(b"=").decode()
            got = status(clearance, f"{name}={text}")
            expected = S.MALFORMED if index == 0 else S.INVALID  # byte 0: the version
            assert got is expected, (index, bit, got)


def test_a_cookie_signed_with_an_unknown_secret_is_invalid() -> None:
    cookie = as_cookie(issue(Clearance(OTHER)))
    assert status(Clearance(SECRET), cookie) is S.INVALID


def test_a_non_canonical_spelling_of_a_valid_token_is_malformed() -> None:
    clearance = Clearance(SECRET)
    name, value = as_cookie(issue(clearance)).split("=", 1)
    # 55 bytes in 74 characters leave 4 unused low bits in the last one.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(value[-1])
    twin = value[:-1] + alphabet[last ^ 0x01]
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(value + "==")
    assert status(clearance, f"{name}={twin}") is S.MALFORMED


MALFORMED_VALUES = [
    "",
    "x",
    "A" * 73,
    "A" * 75,
    "A" * 74,  # right length, version byte 0
    "=" * 74,
    "+" * 74,
    "/" * 74,
    "é" * 74,
    "\x00" * 74,
    " " * 74,
    "A" * 10_000,
    '"',
    '""',
]


@pytest.mark.parametrize("value", MALFORMED_VALUES)
def test_malformed_values_are_malformed(value: str) -> None:
    clearance = Clearance(SECRET)
    name = as_cookie(issue(clearance)).split("=")[0]
    assert status(clearance, f"{name}={value}") in (S.MALFORMED, S.ABSENT)


@pytest.mark.parametrize(
    "header",
    [None, "", ";", ";;;", "=", "==", "a", "a=", "=b", "cg_clearance", "__Host-cg_clearance-",
     b"\xff\xfe\x00", [b"\xff", "", None], [1, 2.0, object()], "a=1" * 5000, ["a=1"] * 100],
)  # fmt: skip
def test_junk_cookie_headers_never_raise(header: Any) -> None:
    clearance = Clearance(SECRET)
    assert status(clearance, header) in (S.ABSENT, S.MALFORMED)


def test_a_header_of_an_unexpected_type_is_malformed_not_an_exception() -> None:
    assert status(Clearance(SECRET), 12345) is S.MALFORMED


@given(st.text(max_size=200), st.binary(max_size=120))
def test_random_cookies_never_raise_and_never_clear(text: str, blob: bytes) -> None:
    clearance = Clearance(SECRET)
    name = clearance.cookie_name_for(ctx(), SCOPE)
    b64 = base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    for header in (text, f"{name}={text}", f"{name}={b64}", f"{name}={b64}; {name}={text}"):
        assert status(clearance, header) is not S.VALID


def test_the_valid_one_of_several_same_name_cookies_wins() -> None:
    clearance = Clearance(SECRET)
    cookie = as_cookie(issue(clearance))
    name = cookie.split("=")[0]
    forged = f"{name}={'A' * 74}"
    stale = as_cookie(issue(Clearance(OTHER)))
    assert status(clearance, f"{forged}; {stale}; {cookie}") is S.VALID
    assert status(clearance, f"{forged}; {stale}") is S.INVALID  # the more telling verdict


def test_same_name_cookies_are_bounded() -> None:
    clearance = Clearance(SECRET)
    name = clearance.cookie_name_for(ctx(), SCOPE)
    assert len(cookie_values("; ".join(f"{name}=x{i}" for i in range(1000)), str(name))) == 8


# -- expiry ----------------------------------------------------------------------------------


def test_expires_after_ttl_by_the_request_clock() -> None:
    clearance = Clearance(SECRET, ttl=900)
    cookie = as_cookie(issue(clearance))
    assert status(clearance, cookie, ctx(now=NOW + 899.999)) is S.VALID
    assert status(clearance, cookie, ctx(now=NOW + 900)) is S.EXPIRED
    assert status(clearance, cookie, ctx(now=NOW + 10**9)) is S.EXPIRED


def test_lowering_ttl_shortens_cookies_already_out() -> None:
    cookie = as_cookie(issue(Clearance(SECRET, ttl=3600)))
    assert status(Clearance(SECRET, ttl=3600), cookie) is S.VALID
    assert status(Clearance(SECRET, ttl=3600 - CLOCK_SKEW), cookie) is S.VALID
    assert status(Clearance(SECRET, ttl=60), cookie) is S.EXPIRED


def test_clock_skew_between_hosts_is_tolerated_up_to_a_bound() -> None:
    clearance = Clearance(SECRET, ttl=900)
    cookie = as_cookie(issue(clearance))
    assert status(clearance, cookie, ctx(now=NOW - CLOCK_SKEW)) is S.VALID
    assert status(clearance, cookie, ctx(now=NOW - CLOCK_SKEW - 0.5)) is S.EXPIRED


def test_max_age_counts_from_the_request() -> None:
    header = issue(Clearance(SECRET, ttl=60.5), ctx(now=NOW + 0.25))
    assert "; Max-Age=60;" in header


def test_context_uses_the_injected_clock() -> None:
    clock = Clock(NOW + 5)
    clearance = Clearance(SECRET, clock=clock)
    assert clearance.context("1.2.3.4", UA, True, "h").now == NOW + 5


# -- rotation --------------------------------------------------------------------------------


def test_rotation_newest_signs_all_verify() -> None:
    old_cookie = as_cookie(issue(Clearance(OTHER)))
    rotated = Clearance([SECRET, OTHER])
    assert status(rotated, old_cookie) is S.VALID
    new_cookie = as_cookie(issue(rotated))
    assert status(Clearance(SECRET), new_cookie) is S.VALID  # signed by the newest
    assert status(Clearance(OTHER), new_cookie) is S.INVALID
    assert status(Clearance(SECRET), old_cookie) is S.INVALID  # dropping a key revokes


def test_bytes_and_str_secrets_agree() -> None:
    cookie = as_cookie(issue(Clearance(SECRET.encode())))
    assert status(Clearance(SECRET), cookie) is S.VALID


# -- binding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issued_to", "read_from", "ipv4", "ipv6", "expected"),
    [
        ("203.0.113.7", "203.0.113.200", 24, 64, S.VALID),
        ("203.0.113.7", "203.0.114.7", 24, 64, S.WRONG_BINDING),
        ("203.0.113.7", "203.0.113.8", 32, 64, S.WRONG_BINDING),
        ("203.0.113.7", "198.51.100.1", 0, 64, S.VALID),
        ("203.0.113.7", "::ffff:203.0.113.9", 24, 64, S.VALID),  # dual-stack socket
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 24, 64, S.VALID),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", 24, 64, S.WRONG_BINDING),
        ("2001:db8:1:2::1", "2001:db8:1:2::2", 24, 128, S.WRONG_BINDING),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", 24, 48, S.VALID),
        ("fe80::1%eth0", "fe80::2%eth1", 24, 64, S.VALID),
        ("203.0.113.7", "2001:db8::1", 0, 0, S.WRONG_BINDING),  # families never mix
        ("203.0.113.7", None, 24, 64, S.WRONG_BINDING),
        (None, None, 24, 64, S.VALID),  # no address known: one "unknown" network
        (None, "not-an-address", 24, 64, S.VALID),
        ("/run/app.sock", None, 24, 64, S.VALID),
    ],
)
def test_network_binding(
    issued_to: str | None, read_from: str | None, ipv4: int, ipv6: int, expected: ClearanceStatus
) -> None:
    clearance = Clearance(SECRET, ipv4_prefix=ipv4, ipv6_prefix=ipv6)
    cookie = as_cookie(issue(clearance, ctx(client=issued_to)))
    assert status(clearance, cookie, ctx(client=read_from)) is expected


def test_user_agent_binding() -> None:
    clearance = Clearance(SECRET)
    cookie = as_cookie(issue(clearance))
    assert status(clearance, cookie, ctx(user_agent=UA.encode())) is S.VALID
    assert status(clearance, cookie, ctx(user_agent=UA + " ")) is S.WRONG_BINDING
    assert status(clearance, cookie, ctx(user_agent=None)) is S.WRONG_BINDING
    loose = Clearance(SECRET, bind_user_agent=False)
    cookie = as_cookie(issue(loose))
    assert status(loose, cookie, ctx(user_agent="curl/8.0")) is S.VALID
    assert status(loose, cookie, ctx(client="198.51.100.1")) is S.WRONG_BINDING


def test_user_agents_that_are_not_utf8_still_bind() -> None:
    clearance = Clearance(SECRET)
    odd = b"Agent \xff\xfe"
    cookie = as_cookie(issue(clearance, ctx(user_agent=odd)))
    assert status(clearance, cookie, ctx(user_agent=odd)) is S.VALID
    assert status(clearance, cookie, ctx(user_agent="Agent \udcff\udcfe")) is S.VALID
    assert status(clearance, cookie, ctx(user_agent=b"Agent")) is S.WRONG_BINDING


def test_network_of_is_the_prefix() -> None:
    assert network_of("203.0.113.7", 24, 64) == network_of("203.0.113.99", 24, 64)
    assert network_of("203.0.113.7", 24, 64) != network_of("203.0.113.7", 25, 64)
    assert network_of(" 203.0.113.7 ", 32, 64) == b"4\x20" + bytes([203, 0, 113, 7])


# -- scope -----------------------------------------------------------------------------------


def test_a_clearance_for_one_scope_does_not_clear_another() -> None:
    clearance = Clearance(SECRET)
    cookie = as_cookie(issue(clearance, scope="rule:POST:/comments"))
    assert status(clearance, cookie, scope="rule:POST:/comments") is S.VALID
    assert status(clearance, cookie, scope="rule:POST:/login") is S.ABSENT
    # The same value carried under the other scope's name: genuine, but not for that scope.
    login_name = clearance.cookie_name_for(ctx(), "rule:POST:/login")
    moved = f"{login_name}={value_of(issue(clearance, scope='rule:POST:/comments'))}"
    assert status(clearance, moved, scope="rule:POST:/login") is S.WRONG_SCOPE


def test_one_client_holds_one_clearance_per_scope() -> None:
    clearance = Clearance(SECRET)
    both = f"{as_cookie(issue(clearance, scope='a'))}; {as_cookie(issue(clearance, scope='b'))}"
    assert status(clearance, both, scope="a") is S.VALID
    assert status(clearance, both, scope="b") is S.VALID
    assert status(clearance, both, scope="c") is S.ABSENT


class _Opted:
    def __init__(self, pattern: Any, clearance: Any, methods: frozenset[str] = frozenset({"POST"})):
        self.pattern = pattern
        self.clearance = clearance
        self.methods = methods


def test_rule_scopes() -> None:
    assert rule_scope(Rule("/login")) is None  # a rule without the attribute: never cleared
    assert rule_scope(_Opted("/login", False)) is None
    assert rule_scope(_Opted("/comments", True)) == "rule:POST:/comments"
    assert rule_scope(_Opted(re.compile("/c/.*"), True)) == "rule:POST:/c/.*"
    assert rule_scope(_Opted("/a", "forms")) == rule_scope(_Opted("/b", "forms")) == "name:forms"
    assert rule_scope(_Opted("/a", "")) is None
    # A named scope can never collide with a rule's own scope.
    assert rule_scope(_Opted("/x", "rule:POST:/x")) != rule_scope(_Opted("/x", True))


def test_rule_clearance_values_are_checked() -> None:
    assert check_rule_clearance(True) is True and check_rule_clearance("forms") == "forms"
    for bad in ("", "two words", "a;b", 1, None, ["x"]):
        with pytest.raises(ValueError):
            check_rule_clearance(bad)


# -- the uses cap ----------------------------------------------------------------------------


def test_max_uses_in_process() -> None:
    clearance = Clearance(SECRET, max_uses=3)
    cookie = as_cookie(issue(clearance))
    assert [status(clearance, cookie) for _ in range(5)] == [S.VALID] * 3 + [S.EXHAUSTED] * 2
    other = as_cookie(issue(clearance))  # each clearance has its own count
    assert status(clearance, other) is S.VALID


def test_refused_cookies_spend_no_use() -> None:
    clearance = Clearance(SECRET, max_uses=1)
    cookie = as_cookie(issue(clearance))
    assert status(clearance, cookie, ctx(user_agent="other")) is S.WRONG_BINDING
    assert status(clearance, cookie, scope="x") is S.ABSENT
    assert status(clearance, cookie) is S.VALID
    assert state_for(clearance).counted(NAMESPACE) == 1


def test_max_uses_with_shared_state_yields_the_spend() -> None:
    state = MemoryState()
    clearance = Clearance(SECRET, max_uses=2, ttl=600)
    cookie = as_cookie(issue(Clearance(SECRET, ttl=600)))  # issued elsewhere: nothing cached
    ops, first = checked(clearance, cookie, state.run)
    assert [op.name for op in ops] == [OP_READ_COUNTER, OP_SPEND] and first.cleared
    assert ops[0] == StateOp(OP_READ_COUNTER, (NAMESPACE, GENERATION_KEY))
    namespace, bucket, limit, window = ops[1].args
    assert (namespace, limit, window) == (NAMESPACE, 2, 600.0) and bucket.startswith("uses:")
    # Within `recheck` the generation comes from this process's cache: one round trip.
    ops, second = checked(clearance, cookie, state.run, ctx(now=NOW + 0.5))
    assert [op.name for op in ops] == [OP_SPEND] and second.cleared
    _, third = checked(clearance, cookie, state.run, ctx(now=NOW + 0.6))
    assert third.status is S.EXHAUSTED
    assert state.counted(NAMESPACE) == 1  # counted in the state the ops ran on


def test_a_full_in_process_store_means_no_clearance_not_an_error() -> None:
    clearance = Clearance(SECRET, max_uses=5)
    _STATES[clearance] = state = MemoryState(max_buckets=1)  # the door's state, sized
    clearance.bind_state(state)
    first, second = as_cookie(issue(clearance)), as_cookie(issue(clearance))
    assert status(clearance, first) is S.VALID
    _, check = drive(clearance.check_flow(second, ctx(), SCOPE), state.run)
    assert (check.status, check.store_error) == (S.UNAVAILABLE, "full")


# -- revocation ------------------------------------------------------------------------------


def test_revoke_all_in_process() -> None:
    clearance = Clearance(SECRET)
    before = as_cookie(issue(clearance))
    clearance.revoke_all()
    assert status(clearance, before) is S.REVOKED
    after = as_cookie(issue(clearance))
    assert status(clearance, after) is S.VALID


def test_revoke_all_through_shared_state_reaches_every_worker_within_recheck() -> None:
    state = MemoryState()
    worker_a = Clearance(SECRET, recheck=2.0)
    worker_b = Clearance(SECRET, recheck=2.0)

    def read(worker: Clearance, cookie: str, now: float) -> ClearanceStatus:
        return checked(worker, cookie, state.run, ctx(now=now))[1].status

    def issued(worker: Clearance, now: float) -> str:
        header = issued_with(worker, ctx(now=now), state.run)
        assert header is not None
        return as_cookie(header)

    cookie = issued(worker_a, NOW)
    assert read(worker_b, cookie, NOW) is S.VALID
    worker_a.revoke_all(state)
    assert read(worker_a, cookie, NOW + 0.1) is S.REVOKED  # the revoking worker: at once
    assert read(worker_b, cookie, NOW + 1.0) is S.VALID  # the others: within `recheck`
    assert read(worker_b, cookie, NOW + 2.0) is S.REVOKED
    fresh = issued(worker_a, NOW + 2.0)
    assert read(worker_b, fresh, NOW + 2.0) is S.VALID


def test_a_reset_state_does_not_revive_revoked_clearances() -> None:
    state = MemoryState()
    clearance = Clearance(SECRET, recheck=0)
    state.bump_counter(NAMESPACE, GENERATION_KEY)
    context = ctx()
    header = issued_with(clearance, context, state.run)
    assert header is not None
    reset = MemoryState()  # say, a flushed Redis: generation back to 0
    fresh_worker = Clearance(SECRET, recheck=0)  # never saw generation 1
    assert checked(fresh_worker, as_cookie(header), reset.run)[1].status is S.REVOKED
    assert checked(clearance, as_cookie(header), reset.run)[1].status is S.UNAVAILABLE


def test_arevoke_all() -> None:
    import anyio

    state = MemoryState()
    clearance = Clearance(SECRET, clock=Clock())
    anyio.run(clearance.arevoke_all, state)
    assert state.read_counter(NAMESPACE, GENERATION_KEY) == 1
    # Its own cache learnt the new generation: no read needed now.
    ops, header = drive(clearance.issue_flow(ctx(), SCOPE), lambda op: 1 / 0)
    assert ops == [] and header


def test_revoke_all_raises_the_state_error_for_the_operator_to_see() -> None:
    class Down:
        def run(self, op: StateOp) -> Any:
            raise StateUnavailable("connection")

        async def arun(self, op: StateOp) -> Any:
            raise StateUnavailable("connection")

    clearance = Clearance(SECRET)
    cookie = as_cookie(issue(clearance))
    with pytest.raises(StateUnavailable):
        clearance.revoke_all(Down())
    assert status(clearance, cookie) is S.REVOKED  # this process revoked regardless


# -- the flow's protocol: generators, failures ------------------------------------------------


def test_check_flow_yields_what_it_needs_and_returns_the_check() -> None:
    state = MemoryState()
    clearance = Clearance(SECRET, max_uses=1)
    cookie = as_cookie(issue(Clearance(SECRET)))  # nothing cached here
    ops, check = drive(clearance.check_flow(cookie, ctx(), SCOPE), state.run)
    assert [op.name for op in ops] == [OP_READ_COUNTER, OP_SPEND] and check.cleared
    ops, check = drive(clearance.check_flow(cookie, ctx(), SCOPE), state.run)
    assert [op.name for op in ops] == [OP_SPEND] and check.status is S.EXHAUSTED


def test_check_flow_with_the_generation_cached_and_no_uses_yields_nothing() -> None:
    clearance = Clearance(SECRET)
    cookie = as_cookie(issue(clearance))
    ops, check = drive(clearance.check_flow(cookie, ctx(), SCOPE), lambda op: 1 / 0)
    assert ops == [] and check.cleared


def test_a_shared_read_without_ops_to_run_is_final() -> None:
    clearance = Clearance(SECRET, recheck=60)
    cookie = as_cookie(issue(Clearance(SECRET)))  # nothing cached here
    ops, header = drive(clearance.issue_flow(ctx(), SCOPE), lambda op: 0)
    assert ops and header  # nothing was cached: the issue read it, cached now
    ops, check = drive(clearance.check_flow(cookie, ctx(), SCOPE), lambda op: 1 / 0)
    assert ops == [] and check.cleared


@pytest.mark.parametrize(
    ("failure", "kind"),
    [(StateUnavailable("timeout"), "timeout"), (StateFull("x"), "full"), (OSError("x"), "oserror")],
)
def test_a_state_failure_means_no_clearance(failure: Exception, kind: str) -> None:
    clearance = Clearance(SECRET, max_uses=3)
    cookie = as_cookie(issue(clearance))
    ops, check = drive(clearance.check_flow(cookie, ctx(), SCOPE), lambda op: failure)
    assert len(ops) == 1  # nothing spent once the first operation failed
    assert (check.status, check.store_error, check.cleared) == (S.UNAVAILABLE, kind, False)


def test_a_failed_spend_after_the_generation_is_unavailable() -> None:
    clearance = Clearance(SECRET, max_uses=3)
    cookie = as_cookie(issue(Clearance(SECRET)))  # nothing cached
    ops, final = checked(clearance, cookie, answers(0, StateUnavailable("connection")))
    assert len(ops) == 2 and (final.status, final.store_error) == (S.UNAVAILABLE, "connection")


@pytest.mark.parametrize("generation", ["0", True, None, 1.5, b"0"])
def test_a_generation_that_is_not_an_int_is_a_protocol_failure(generation: Any) -> None:
    clearance = Clearance(SECRET, max_uses=3)
    cookie = as_cookie(issue(Clearance(SECRET)))  # nothing cached
    ops, final = checked(clearance, cookie, answers(generation, True))
    assert len(ops) == 1  # no use spent on a generation that cannot vouch
    assert (final.status, final.store_error) == (S.UNAVAILABLE, "protocol")


def test_a_spend_that_does_not_say_true_is_not_a_use() -> None:
    clearance = Clearance(SECRET, max_uses=3)
    cookie = as_cookie(issue(Clearance(SECRET)))  # nothing cached
    for answer in (False, 1, "yes", None):
        assert checked(clearance, cookie, answers(0, answer))[1].status is S.EXHAUSTED


def test_no_cookie_asks_the_state_nothing() -> None:
    ops, final = checked(Clearance(SECRET), None, lambda op: 1 / 0)
    assert ops == [] and final.status is S.ABSENT


def test_issue_flow_reads_the_generation_when_it_must() -> None:
    state = MemoryState()
    state.bump_counter(NAMESPACE, GENERATION_KEY)
    clearance = Clearance(SECRET)
    ops, header = drive(clearance.issue_flow(ctx(), SCOPE), state.run)
    assert ops == [StateOp(OP_READ_COUNTER, (NAMESPACE, GENERATION_KEY))] and header
    ops, again = drive(clearance.issue_flow(ctx(), SCOPE), state.run)
    assert ops == [] and again  # cached
    assert checked(clearance, as_cookie(header), state.run)[1].cleared  # generation 1: current


@pytest.mark.parametrize("answer", [StateUnavailable("timeout"), "1", None, True, -1, 2**32])
def test_no_generation_no_cookie(answer: Any) -> None:
    clearance = Clearance(SECRET)
    ops, header = drive(clearance.issue_flow(ctx(), SCOPE), lambda op: answer)
    assert len(ops) == 1 and header is None


def test_issue_flow_with_the_generation_cached_and_on_plain_http() -> None:
    clearance = Clearance(SECRET)
    issue(clearance)  # reads the generation: cached for `recheck`
    ops, header = drive(clearance.issue_flow(ctx(), SCOPE), lambda op: 1 / 0)
    assert ops == [] and header and status(clearance, as_cookie(header)) is S.VALID
    ops, none = drive(clearance.issue_flow(ctx(https=False), SCOPE), lambda op: 0)
    assert none is None


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"secret": "short"}, ValueError),
        ({"secret": []}, ValueError),
        ({"secret": [SECRET, SECRET]}, ValueError),
        ({"secret": 12345}, TypeError),
        ({"secret": [SECRET, None]}, TypeError),
        ({"ttl": 0}, ValueError),
        ({"ttl": 8 * 24 * 3600}, ValueError),
        ({"ttl": True}, ValueError),
        ({"ttl": "900"}, ValueError),
        ({"max_uses": 0}, ValueError),
        ({"max_uses": True}, ValueError),
        ({"max_uses": 1.5}, ValueError),
        ({"ipv4_prefix": 33}, ValueError),
        ({"ipv6_prefix": -1}, ValueError),
        ({"ipv6_prefix": 64.0}, ValueError),
        ({"cookie_name": "has space"}, ValueError),
        ({"cookie_name": "a;b"}, ValueError),
        ({"cookie_name": "__Host-x"}, ValueError),
        ({"cookie_name": "__secure-x"}, ValueError),
        ({"secure": "yes"}, TypeError),
        ({"recheck": -1}, ValueError),
    ],
)
def test_bad_configuration_fails_at_start_up(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    kwargs.setdefault("secret", SECRET)
    with pytest.raises(error):
        Clearance(**kwargs)


def test_the_public_name() -> None:
    import captcha_guard

    assert "Clearance" in captcha_guard.__all__ and captcha_guard.Clearance is Clearance


def test_a_cached_generation_refuses_a_revoked_cookie_without_a_round_trip() -> None:
    state = MemoryState()
    clearance = Clearance(SECRET, recheck=5, clock=Clock())
    header = issued_with(clearance, ctx(), answers(0))
    assert header is not None
    clearance.revoke_all(state)  # learns generation 1 at once
    ops, check = checked(clearance, as_cookie(header), lambda op: 1 / 0)
    assert (check.status, ops) == (S.REVOKED, [])


def test_no_cookie_past_what_the_format_can_date() -> None:
    assert issued_with(Clearance(SECRET), ctx(now=2.0**32), answers(0)) is None


@given(st.ip_addresses(), st.integers(0, 32), st.integers(0, 128))
def test_network_of_agrees_with_ipaddress(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, v4: int, v6: int
) -> None:
    """Differential: our fast prefix cut against the standard library's networks."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix, family = (v4, b"4") if address.version == 4 else (v6, b"6")
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    expected = family + bytes([prefix]) + network.network_address.packed
    assert network_of(str(address), v4, v6) == expected
    assert network_of(address.exploded, v4, v6) == expected


@pytest.mark.parametrize(
    "junk", ["1.2.3", "1.2.3.4.5", "256.1.1.1", "::g", "1.2.3.4\x00", "x" * 5000, "%"]
)
def test_network_of_junk_is_the_unknown_network(junk: str) -> None:
    assert network_of(junk, 24, 64) == b"?"


def test_a_generation_going_backwards_honours_no_clearance_until_caught_up() -> None:
    """A failover standing in with an empty store (or a flush) answers generation 0 after this
    process saw 1: clearances of generation 0, revoked by then, must not come back."""
    state = MemoryState()
    clearance = Clearance(SECRET, recheck=0)
    revoked = as_cookie(issue(clearance))  # in-process issue: generation 0
    clearance.revoke_all(state)  # shared generation 1, seen by this process
    lost = MemoryState()
    _, final = checked(clearance, revoked, lost.run)
    assert (final.status, final.store_error) == (S.UNAVAILABLE, "regressed")
    assert drive(clearance.issue_flow(ctx(), SCOPE), lost.run)[1] is None
    # Caught up (the store back, or revoked again past what was seen): clearances again.
    _, header = drive(clearance.issue_flow(ctx(), SCOPE), state.run)
    assert header is not None
    assert checked(clearance, as_cookie(header), state.run)[1].cleared


def test_the_module_stays_below_the_doors() -> None:
    """Sans-I/O and self-contained: the policy imports its own parts, the argument checks, the
    network prefix and the state protocol; the token and the request's view import nothing of
    ours but the token."""
    import ast
    from pathlib import Path

    import captcha_guard._clearance as policy
    import captcha_guard._clearance_request as request
    import captcha_guard._clearance_token as token

    def ours(module: Any) -> set[str]:
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        return {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level > 0 and node.module
        }

    parts = {"_clearance_request", "_clearance_token"}
    assert ours(policy) == {*parts, "_check", "_net", "_state"}
    assert ours(request) == {"_clearance_token"}
    assert ours(token) == set()


def test_through_a_real_wsgi_server_with_sync_state() -> None:
    """The sync door's way: ``state.run(op)`` for each op, under wsgiref on 127.0.0.1."""
    import httpx

    from tests.servers import serve_wsgi

    state = MemoryState()
    clearance = Clearance(SECRET, max_uses=2, secure=False)  # plain HTTP to 127.0.0.1

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        context = clearance.context(
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_USER_AGENT"),
            environ["wsgi.url_scheme"] == "https",
            environ.get("HTTP_HOST"),
        )
        headers = [("content-type", "text/plain")]
        if environ["PATH_INFO"] == "/pass":
            _, header = drive(clearance.issue_flow(context, SCOPE), state.run)
            assert header is not None
            headers.append(("set-cookie", header))
            start_response("200 OK", headers)
            return [b"issued"]
        flow = clearance.check_flow(environ.get("HTTP_COOKIE"), context, SCOPE)
        _, check = drive(flow, state.run)
        start_response("200 OK" if check.cleared else "403 Forbidden", headers)
        return [check.status.value.encode()]

    with serve_wsgi(app) as url, httpx.Client(base_url=url, verify=TLS) as client:
        answer = client.post("/comments")
        assert (answer.status_code, answer.text) == (403, "absent")
        assert client.post("/pass").text == "issued"
        assert [client.post("/comments").text for _ in range(3)] == ["valid", "valid", "exhausted"]
