"""The offline demo, served by uvicorn and driven in a real headless Chromium.

The browser solves the proof of work with the page's own Web Crypto code; the server judges it
with ``ProofOfWork``; and the ``altcha`` package, an independent implementation of the same
protocol, checks what the browser sent. The outage story is played with the page's own
controls against the emulated GeeTest, and every step is read back from what the page shows
(polled with deadlines, never slept on). Screenshots land in ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import altcha
import httpx
import pytest

from captcha_guard import CircuitBreaker, Outcome
from captcha_guard._breaker import State
from captcha_guard._events import BreakerEvent, StoreErrorEvent, VerdictEvent
from captcha_guard.demo.app import (
    CHALLENGE_PATH,
    COMMENT_PATH,
    DEMO_MAX_NUMBER,
    EXPIRES,
    FIELD,
    MODES,
    create_app,
)
from captcha_guard.demo.panel import Panel
from captcha_guard.providers.proof_of_work import derive_key
from tests import ROOT, TLS
from tests.browser import Browser, chromium
from tests.servers import serve_asgi

ARTIFACTS = ROOT / "artifacts"
SECRET = "a-demo-secret-known-to-this-test"
BATCH = 1000  # demo.js reports progress after each batch of this many hashes

# Records what the page shows while it works, and the solution it posts, in sessionStorage
# (which survives the navigation to the result page), so the test reads them afterwards.
WATCH_PAGE = """
const field = arguments[0];
sessionStorage.clear();
const record = (key, value) => {
  const seen = JSON.parse(sessionStorage.getItem(key) || "[]");
  seen.push(value);
  sessionStorage.setItem(key, JSON.stringify(seen));
};
const status = document.getElementById("status");
const box = document.getElementById("verifying");
new MutationObserver(() => record("status", [status.textContent, !box.hidden]))
  .observe(status, {childList: true, characterData: true, subtree: true});
const submit = HTMLFormElement.prototype.submit;
HTMLFormElement.prototype.submit = function () {
  record("sent", this.elements.namedItem(field).value);
  return submit.call(this);
};
"""

RESULT_SHOWN = """
return location.pathname === "/login" && document.readyState === "complete"
  && document.querySelector("h1") !== null && document.querySelector("h1").textContent;
"""

NAVIGATION_STATUS = 'return performance.getEntriesByType("navigation")[0].responseStatus;'


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with serve_asgi(create_app(SECRET)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as session:
        yield session


def recorded(browser: Browser, key: str) -> list[object]:
    return list(json.loads(browser.run(f"return sessionStorage.getItem({key!r}) || '[]'")))


def submit_with(browser: Browser, url: str, button: str) -> str:
    browser.get(url + "/")
    browser.run(WATCH_PAGE, FIELD)
    browser.click(button)
    return str(browser.wait_for(RESULT_SHOWN, timeout=60, what="the result page"))


def test_solving_in_the_browser_signs_in(browser: Browser, demo_url: str) -> None:
    heading = submit_with(browser, demo_url, "#solve")

    assert heading == "Signed in as ada"
    assert browser.run(NAVIGATION_STATUS) == 200
    assert browser.run('return document.getElementById("verdict-outcome").textContent') == "passed"
    assert browser.run('return document.getElementById("verdict-provider").textContent') == (
        "proof_of_work"
    )
    browser.screenshot(ARTIFACTS / "demo.png")

    # What the browser sent is a valid ALTCHA v1 solution by the protocol's own library, with
    # the provider's own key (derived from the secret, the realm and the lifetime).
    (sent,) = recorded(browser, "sent")
    assert isinstance(sent, str)
    key = derive_key(SECRET, CHALLENGE_PATH, EXPIRES)
    assert altcha.verify_solution_v1(sent, key) == (True, None)
    number = altcha.PayloadV1.from_base64(sent).number
    assert 0 <= number <= DEMO_MAX_NUMBER

    # While it worked, the page said so, with the progress indicator showing.
    shown = recorded(browser, "status")
    assert ["Verifying… fetching a challenge", True] in shown
    assert any(text.startswith(f"Solved: n = {number} in ") for text, _ in shown)  # type: ignore[misc]
    if number >= BATCH:  # a number in the first batch is found before any progress report
        assert any(
            re.fullmatch(rf"Verifying… tried [\d,]+ of {DEMO_MAX_NUMBER:,} numbers", text)
            and visible
            for text, visible in shown  # type: ignore[misc]
        )

    # The solution is good for one request: sent again, it is refused.
    again = httpx.post(demo_url + "/login", data={"username": "ada", FIELD: sent}, verify=TLS)
    assert again.status_code == 403
    assert "never ran" in again.text


def test_a_tampered_solution_is_refused(browser: Browser, demo_url: str) -> None:
    heading = submit_with(browser, demo_url, "#tampered")

    assert heading == "403 Forbidden"
    assert browser.run(NAVIGATION_STATUS) == 403
    assert "never ran" in browser.run("return document.body.innerText")
    browser.screenshot(ARTIFACTS / "demo-tampered.png")
    (sent,) = recorded(browser, "sent")
    assert isinstance(sent, str)
    valid, _ = altcha.verify_solution_v1(sent, SECRET)
    assert not valid
    shown = recorded(browser, "status")
    assert any("instead" in text for text, _ in shown)  # type: ignore[misc]


def test_submitting_without_a_solution_is_refused(browser: Browser, demo_url: str) -> None:
    heading = submit_with(browser, demo_url, "#unsolved")

    assert heading == "403 Forbidden"
    assert browser.run(NAVIGATION_STATUS) == 403
    reason = browser.run('return document.getElementById("verdict-reason").textContent')
    assert FIELD in reason
    assert recorded(browser, "sent") == []  # nothing was solved, the form went out as it was


def test_the_page_loads_nothing_from_elsewhere(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url, verify=TLS) as client:
        page = client.get("/")
        assets = [client.get(path) for path in re.findall(r'(?:src|href)="([^"]+)"', page.text)]
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert [a.status_code for a in assets] == [200, 200, 200]
    for text in [page.text, *(a.text for a in assets)]:
        assert "http://" not in text
        assert "https://" not in text


def test_the_challenge_is_served_by_the_gate(demo_url: str) -> None:
    challenge = httpx.get(demo_url + CHALLENGE_PATH, verify=TLS).json()
    assert challenge["algorithm"] == "SHA-256"
    assert challenge["maxnumber"] == DEMO_MAX_NUMBER
    assert "?expires=" in challenge["salt"]


def test_each_process_makes_its_own_secret() -> None:
    with serve_asgi(create_app()) as first, serve_asgi(create_app()) as second:
        challenge = httpx.get(first + CHALLENGE_PATH, verify=TLS).json()
        solution = altcha.solve_challenge_v1(
            challenge["challenge"], challenge["salt"], challenge["algorithm"], DEMO_MAX_NUMBER
        )
        assert solution is not None
        payload = altcha.PayloadV1(
            challenge["algorithm"],
            challenge["challenge"],
            solution.number,
            challenge["salt"],
            challenge["signature"],
        ).to_base64()
        elsewhere = httpx.post(second + "/login", data={FIELD: payload}, verify=TLS)
        here = httpx.post(first + "/login", data={FIELD: payload}, verify=TLS)
    assert elsewhere.status_code == 403
    assert here.status_code == 200
    assert "Signed in as someone" in here.text


def test_the_login_page_leads_to_the_form(demo_url: str) -> None:
    answer = httpx.get(demo_url + "/login", verify=TLS)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    assert httpx.get(demo_url + "/static/nothing.js", verify=TLS).status_code == 404


# The outage story: the comment form behind the emulated GeeTest, the vendor controls and the
# operator's panel, on one page.

STORY_RESET_TIMEOUT = 2.0  # the demo's 10 s, shortened so the story plays in a few seconds

TEXT = "const e = document.querySelector(arguments[0]); return e === null ? null : e.textContent;"

VERDICT_ROWS = """
return Array.from(document.querySelectorAll("#verdicts tr[data-id]"), (row) =>
  [Number(row.dataset.id), ...Array.from(row.cells).slice(1).map((c) => c.textContent)]);
"""

POSTS_ANSWERED = 'Number(document.getElementById("gt-result").dataset.done || 0)'


@pytest.fixture()
def story_url() -> Iterator[str]:
    with serve_asgi(create_app(SECRET, reset_timeout=STORY_RESET_TIMEOUT)) as url:
        yield url


def shown_text(browser: Browser, css: str) -> str | None:
    found = browser.run(TEXT, css)
    return None if found is None else str(found)


def wait_text(browser: Browser, css: str, expected: str, timeout: float = 5.0) -> None:
    browser.wait_for(
        "const e = document.querySelector(arguments[0]);"
        "return e !== null && e.textContent === arguments[1];",
        css,
        expected,
        timeout=timeout,
        what=f"{css} to read {expected!r} (it reads {shown_text(browser, css)!r})",
    )


def answered(browser: Browser, button: str) -> str:
    """Click ``button`` (a post of the comment form) and wait for the page's result line."""
    before = browser.run(f"return {POSTS_ANSWERED};")
    browser.click(button)
    browser.wait_for(f"return {POSTS_ANSWERED} > {before};", timeout=10, what="the answer")
    return str(shown_text(browser, "#gt-result"))


def post_solved(browser: Browser) -> str:
    """What a person does: solve the (emulated) widget, then post the comment."""
    browser.click("#gt-solve")
    browser.wait_for(
        'return document.getElementById("gt-state").textContent.startsWith("solved")',
        what="the emulated widget to be solved",
    )
    return answered(browser, "#gt-post")


def newest_verdict(browser: Browser, count: int) -> list[str]:
    """The panel's newest verdict row once it shows the ``count``-th verdict: provider,
    outcome, code, call duration."""
    rows = browser.wait_for(
        f"const rows = (() => {{ {VERDICT_ROWS} }})();"
        f"return rows.length > 0 && rows[0][0] === {count} && rows;",
        timeout=5.0,
        what=f"verdict {count} on the panel",
    )
    return [str(cell) for cell in rows[0][1:]]


def screenshot(browser: Browser, name: str) -> None:
    browser.run("window.scrollTo(0, 0);")  # clicks scroll the page; show it from the top
    browser.screenshot(ARTIFACTS / name)


def set_vendor(browser: Browser, mode: str) -> None:
    browser.click(f"#mode-{mode}")
    wait_text(browser, "#vendor-mode", mode)


def test_the_outage_story_plays_on_the_page(browser: Browser, story_url: str) -> None:
    browser.get(story_url + "/")
    wait_text(browser, "#breaker-geetest", "closed")
    wait_text(browser, "#breaker-proof_of_work", "local")
    assert shown_text(browser, "#vendor-mode") == "healthy"
    assert "emulated" in str(shown_text(browser, "#widget"))

    # Healthy: the gate asks the vendor, the app runs with a verified pass.
    assert post_solved(browser).startswith("200 · the app ran: passed")
    provider, outcome, code, call = newest_verdict(browser, 1)
    assert (provider, outcome, code) == ("geetest", "passed", "ok")
    assert call.endswith(" s")

    # Outage: the vendor answers 500; the gate fails open, three times, and the third failure
    # in a row opens the circuit.
    set_vendor(browser, "500")
    for count in (2, 3, 4):
        result = post_solved(browser)
        assert result.startswith("200 · the app ran: fallback"), result
        assert "HTTP 500" in result
        assert newest_verdict(browser, count)[:3] == ["geetest", "fallback", "provider_error"]
    wait_text(browser, "#breaker-geetest", "open")
    assert "closed → open" in str(shown_text(browser, "#changes"))

    # With the circuit open, posts fall back at once: no call to the vendor at all.
    result = post_solved(browser)
    assert result.startswith("200 · the app ran: fallback (circuit open"), result
    assert newest_verdict(browser, 5) == ["geetest", "fallback", "circuit_open", "no call"]
    wait_text(browser, "#count-fallback", "4")
    screenshot(browser, "demo-outage.png")

    # The same captcha again, during the outage: the replay guard refuses it. The client reads
    # a generic 403; the operator's panel says what it was.
    result = answered(browser, "#gt-replay")
    assert result.startswith("403 · the gate refused: captcha rejected, solve a new one"), result
    assert "the app never ran" in result
    assert newest_verdict(browser, 6) == ["geetest", "rejected", "refused_replay", "no call"]
    wait_text(browser, "#count-replay_refused", "1")
    screenshot(browser, "demo-replay.png")

    # Healthy again: once reset_timeout has passed the circuit is half open, the next post is
    # the probe, it passes and the circuit closes.
    set_vendor(browser, "healthy")
    wait_text(browser, "#breaker-geetest", "half_open", timeout=STORY_RESET_TIMEOUT + 5)
    assert post_solved(browser).startswith("200 · the app ran: passed")
    assert newest_verdict(browser, 7)[:3] == ["geetest", "passed", "ok"]
    wait_text(browser, "#breaker-geetest", "closed")
    assert "half_open → closed" in str(shown_text(browser, "#changes"))
    wait_text(browser, "#count-passed", "2")
    screenshot(browser, "demo-recovered.png")


def test_every_vendor_control_is_a_fallback_then_healthy_again() -> None:
    """Each outage button's mode, through the demo's own endpoints: the post falls back (with
    the provider's fault as its reason), and healthy again passes. One app per mode, so no
    circuit opens in between."""
    reasons = {}

    def solve(client: httpx.Client) -> dict[str, str]:
        answer = client.post("/demo/geetest/solve", json={})
        return dict(answer.json())

    for mode, _, _ in MODES[1:]:
        with (
            serve_asgi(create_app(SECRET)) as url,
            httpx.Client(base_url=url, verify=TLS) as client,
        ):
            assert client.post("/demo/vendor", json={"mode": mode}).json() == {"mode": mode}
            fields = solve(client)
            answer = client.post(COMMENT_PATH, data=fields, headers={"accept": "application/json"})
            assert answer.status_code == 200, (mode, answer.text)
            assert answer.json()["outcome"] == "fallback"
            reasons[mode] = answer.json()["reason"]
            assert client.post("/demo/vendor", json={"mode": "healthy"}).status_code == 200
            fields = solve(client)
            answer = client.post(COMMENT_PATH, data=fields, headers={"accept": "application/json"})
            assert answer.json()["outcome"] == "passed", (mode, answer.text)
            panel = client.get("/demo/panel").json()
            assert [v["outcome"] for v in panel["verdicts"]] == ["passed", "fallback"]
    assert "circuit open" not in reasons.values()
    assert reasons["hang"] == reasons["slow"] == "timeout"


def test_the_demo_endpoints_take_json_only(demo_url: str) -> None:
    assert (
        httpx.post(demo_url + "/demo/vendor", data={"mode": "500"}, verify=TLS).status_code == 415
    )
    assert httpx.post(demo_url + "/demo/geetest/solve", verify=TLS).status_code == 415
    assert (
        httpx.post(demo_url + "/demo/vendor", json={"mode": "down"}, verify=TLS).status_code == 400
    )
    assert httpx.get(demo_url + "/demo/panel", verify=TLS).json()["vendor"] == "healthy"


def test_the_panel_knows_only_what_the_hooks_said() -> None:
    """An open circuit counts down to its probe, then reads half open (as the breaker's own
    ``state`` does) until the hooks report the probe's result."""
    now = [100.0]
    breaker = CircuitBreaker(3, 10.0)
    panel = Panel({"geetest": breaker}, local=("proof_of_work",), clock=lambda: now[0])
    hooks = panel.hooks()
    assert sorted(hooks) == ["breaker", "store_error", "verdict"]

    def verdict(outcome: Outcome, code: str, **extra: object) -> VerdictEvent:
        return VerdictEvent("geetest", "/comment", outcome, code, None, **extra)  # type: ignore[arg-type]

    hooks["verdict"][0](verdict(Outcome.FALLBACK, "fallback", fallback="allowed"))
    hooks["breaker"][0](BreakerEvent("geetest", State.CLOSED, State.OPEN))
    replay = verdict(
        Outcome.REJECTED, "refused_replay", fallback="refused_replay", replay="fallback"
    )
    hooks["verdict"][0](replay)
    hooks["store_error"][0](StoreErrorEvent("replay", "timeout"))
    now[0] += 4
    shown = panel.snapshot()
    assert shown["breakers"] == [
        {
            "provider": "geetest",
            "state": "open",
            "probe_in": 6.0,
            "failure_threshold": 3,
            "reset_timeout": 10.0,
        },
        {"provider": "proof_of_work", "state": "local", "probe_in": None},
    ]
    assert shown["counts"] == {
        "passed": 0,
        "rejected": 0,
        "fallback": 1,
        "fallback_refused": 1,
        "replay_refused": 1,
    }
    assert shown["store_errors"] == 1
    assert [v["code"] for v in shown["verdicts"]] == ["refused_replay", "fallback"]
    now[0] += 6
    assert panel.snapshot()["breakers"][0]["state"] == "half_open"
    hooks["breaker"][0](BreakerEvent("geetest", State.HALF_OPEN, State.CLOSED))
    assert panel.snapshot()["breakers"][0]["state"] == "closed"
    assert [(c["old"], c["new"]) for c in panel.snapshot()["changes"]] == [
        ("half_open", "closed"),
        ("closed", "open"),
    ]
