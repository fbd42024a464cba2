"""Every way a provider fails, for every provider, against its emulator on a real loopback
server, through uvicorn: each request is answered within ``timeout`` plus a small margin, the
breaker opens and recovers as specified, and the app gets exactly the bytes the client sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from captcha_guard.testing import Outage
from tests.hardening_kit import CASES, DOORS, PROTECTED, Site, guarded_site, sha256

#: The provider's timeout. A healthy call must never reach it: the app, the emulator and the
#: client share one process here, and on a loaded CI a refused captcha that took 0.3 s to be
#: judged was once taken for an outage (test_a_user_failure_is_a_healthy_call).
TIMEOUT = 0.5
#: What a request may take beyond ``timeout``: uvicorn, the loopback round trips, a busy CI.
MARGIN = 0.4
THRESHOLD = 3
RESET_TIMEOUT = 30.0

#: Outages that end in an answer, quickly.
FAST_OUTAGES = [
    Outage.HTTP_500,
    Outage.HTTP_429,
    Outage.GARBAGE,
    Outage.HTML,
    Outage.RESET,
    Outage.REFUSE,
]


SETUPS = [(case, door) for case in CASES for door in DOORS]


@pytest.fixture(scope="module", params=SETUPS, ids=[f"{c}-{d}" for c, d in SETUPS])
def site_once(request: pytest.FixtureRequest) -> Iterator[Site]:
    case, door = request.param
    with guarded_site(
        case,
        door=door,
        timeout=TIMEOUT,
        failure_threshold=THRESHOLD,
        reset_timeout=RESET_TIMEOUT,
    ) as site:
        yield site


@pytest.fixture
def site(site_once: Site) -> Iterator[Site]:
    site_once.reset()
    yield site_once
    site_once.reset()


def form_request(site: Site, path: str = PROTECTED, **extra: str) -> httpx.Request:
    """A form post carrying a fresh solved captcha and some of the app's own fields."""
    data = {"user": "zoë", "note": "a&b=c %", **extra, **site.issue()}
    return site.client.build_request(
        "POST", site.url + path, data=data, headers={"accept": "application/json"}
    )


def timed(site: Site, request: httpx.Request) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = site.client.send(request)
    return response, time.monotonic() - started


def assert_reached_app_intact(response: httpx.Response, request: httpx.Request, outcome: str):  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["outcome"] == outcome
    assert seen["sha256"] == sha256(request.content)
    assert seen["size"] == len(request.content)


@pytest.mark.parametrize("outage", FAST_OUTAGES, ids=lambda o: o.value)
def test_a_failing_provider_falls_back_at_once(site: Site, outage: Outage) -> None:
    site.emulator.outage = outage
    request = form_request(site)
    response, elapsed = timed(site, request)
    assert_reached_app_intact(response, request, "fallback")
    assert elapsed < MARGIN


@pytest.mark.parametrize("outage", FAST_OUTAGES, ids=lambda o: o.value)
def test_a_fail_closed_route_answers_503_at_once(site: Site, outage: Outage) -> None:
    site.emulator.outage = outage
    calls = site.app.calls
    response, elapsed = timed(site, form_request(site, "/pay"))
    assert response.status_code == 503
    assert response.json()["error"] == "captcha_unavailable"
    assert site.app.calls == calls
    assert elapsed < MARGIN


def test_a_hanging_provider_is_given_up_at_timeout(site: Site) -> None:
    site.emulator.outage = Outage.HANG
    request = form_request(site)
    response, elapsed = timed(site, request)
    assert_reached_app_intact(response, request, "fallback")
    assert TIMEOUT <= elapsed < TIMEOUT + MARGIN
    assert "timeout" in site.app.verdicts[-1].reason


def test_an_answer_just_over_timeout_is_not_waited_for(site: Site) -> None:
    site.emulator.outage = Outage.SLOW
    site.emulator.delay = TIMEOUT + 0.3
    request = form_request(site)
    response, elapsed = timed(site, request)
    assert_reached_app_intact(response, request, "fallback")
    assert TIMEOUT <= elapsed < TIMEOUT + MARGIN


def test_an_answer_just_under_timeout_is_used(site: Site) -> None:
    site.emulator.outage = Outage.SLOW
    site.emulator.delay = TIMEOUT * 0.6
    request = form_request(site)
    response, elapsed = timed(site, request)
    assert_reached_app_intact(response, request, "passed")
    assert TIMEOUT * 0.6 <= elapsed < TIMEOUT + MARGIN


def open_the_circuit(site: Site, outage: Outage = Outage.HTTP_500) -> None:
    site.emulator.outage = outage
    for _ in range(THRESHOLD):
        assert site.post(data=site.issue()).json()["outcome"] == "fallback"
    assert site.breaker.state.value == "open"


@pytest.mark.parametrize("outage", [Outage.HTTP_500, Outage.GARBAGE, Outage.REFUSE, Outage.HANG])
def test_the_breaker_opens_after_threshold_failures(site: Site, outage: Outage) -> None:
    site.emulator.outage = outage
    for n in range(THRESHOLD):
        assert site.breaker.state.value == "closed", n
        assert site.post(data=site.issue()).json()["outcome"] == "fallback"
    assert site.breaker.state.value == "open"
    calls = site.emulator.calls
    request = form_request(site)
    response, elapsed = timed(site, request)
    assert_reached_app_intact(response, request, "fallback")
    assert site.app.verdicts[-1].reason == "circuit open"
    assert site.emulator.calls == calls  # no call while open
    assert elapsed < MARGIN


def test_a_user_failure_is_a_healthy_call(site: Site) -> None:
    # Refused captchas never open the circuit, however many: they are the user's fault.
    calls = site.emulator.calls
    for _ in range(THRESHOLD * 2):
        assert site.post(data=site.case.refused(site.emulator)).status_code == 403
    assert site.emulator.calls == calls + THRESHOLD * 2  # each judged by the provider
    assert site.breaker.state.value == "closed"


def test_the_circuit_recovers_through_one_good_probe(site: Site) -> None:
    open_the_circuit(site)
    site.emulator.outage = None
    assert site.post(data=site.issue()).json()["outcome"] == "fallback"  # still open
    site.clock.advance(RESET_TIMEOUT)
    calls = site.emulator.calls
    probe = site.post(data=site.issue())
    assert probe.json()["outcome"] == "passed"
    assert site.emulator.calls == calls + 1
    assert site.breaker.state.value == "closed"


def test_a_bad_probe_opens_the_circuit_again(site: Site) -> None:
    open_the_circuit(site)
    site.clock.advance(RESET_TIMEOUT)
    calls = site.emulator.calls
    assert site.post(data=site.issue()).json()["outcome"] == "fallback"  # the probe, failing
    assert site.emulator.calls == calls + 1
    assert site.breaker.state.value == "open"
    assert site.post(data=site.issue()).json()["outcome"] == "fallback"
    assert site.emulator.calls == calls + 1  # open again: no call


def wait_for(condition: Any, limit: float = 5.0) -> None:
    """Until ``condition()`` holds: a condition polled, never a sleep hoping for it."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


def test_no_request_waits_behind_the_probe(site: Site) -> None:
    open_the_circuit(site)
    site.emulator.outage = Outage.HANG
    site.clock.advance(RESET_TIMEOUT)
    calls = site.emulator.calls
    probe_answer: list[httpx.Response] = []
    probe = threading.Thread(target=lambda: probe_answer.append(site.post(data=site.issue())))
    probe.start()
    try:
        wait_for(lambda: site.emulator.calls == calls + 1)  # the probe hangs at the provider
        others = [timed(site, form_request(site)) for _ in range(3)]
    finally:
        probe.join(TIMEOUT + MARGIN + 5)
    for response, elapsed in others:
        assert response.json()["outcome"] == "fallback"
        assert elapsed < MARGIN
    assert site.emulator.calls == calls + 1
    assert probe_answer[0].json()["outcome"] == "fallback"
    assert site.breaker.state.value == "open"


def multipart_request(site: Site) -> httpx.Request:
    files = {"avatar": ("me.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "image/png")}
    data = {"user": "zoë", **site.issue()}
    request = site.client.build_request(
        "POST", site.url + PROTECTED, data=data, files=files, headers={"accept": "text/html"}
    )
    request.read()  # multipart is built as a stream: have the bytes to compare with
    return request


def json_request(site: Site) -> httpx.Request:
    document = {"user": "zoë", "tags": ["a", "b"], "n": 1.5, "captcha": site.issue()}
    return site.client.build_request("POST", site.url + PROTECTED, json=document)


def header_request(site: Site) -> httpx.Request:
    captcha = str(httpx.QueryParams(site.issue()))
    return site.client.build_request(
        "POST",
        site.url + PROTECTED,
        content=b'{"raw": "\\u0000 bytes \xff"}',
        headers={"x-captcha": captcha, "content-type": "application/octet-stream"},
    )


ENCODINGS = {
    "form": form_request,
    "multipart": multipart_request,
    "json": json_request,
    "header": header_request,
}


@pytest.mark.parametrize("state", ["up", "failing", "circuit open"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_the_app_gets_every_byte_the_client_sent(site: Site, encoding: str, state: str) -> None:
    if state == "failing":
        site.emulator.outage = Outage.RESET
    elif state == "circuit open":
        open_the_circuit(site)
    request = ENCODINGS[encoding](site)
    response, _ = timed(site, request)
    assert_reached_app_intact(response, request, "passed" if state == "up" else "fallback")
    assert site.app.bodies[-1] == request.content
