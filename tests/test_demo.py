"""The offline demo, served by uvicorn and driven in a real headless Chromium.

The browser solves the proof of work with the page's own Web Crypto code; the server judges it
with ``ProofOfWork``; and the ``altcha`` package, an independent implementation of the same
protocol, checks what the browser sent. Screenshots land in ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import altcha
import httpx
import pytest

from captcha_guard.demo.app import CHALLENGE_PATH, DEMO_MAX_NUMBER, EXPIRES, FIELD, create_app
from captcha_guard.providers.proof_of_work import derive_key
from tests.browser import Browser, chromium
from tests.servers import serve_asgi

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
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
    again = httpx.post(demo_url + "/login", data={"username": "ada", FIELD: sent})
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
    with httpx.Client(base_url=demo_url) as client:
        page = client.get("/")
        assets = [client.get(path) for path in re.findall(r'(?:src|href)="([^"]+)"', page.text)]
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert [a.status_code for a in assets] == [200, 200]
    for text in [page.text, *(a.text for a in assets)]:
        assert "http://" not in text
        assert "https://" not in text


def test_the_challenge_is_served_by_the_gate(demo_url: str) -> None:
    challenge = httpx.get(demo_url + CHALLENGE_PATH).json()
    assert challenge["algorithm"] == "SHA-256"
    assert challenge["maxnumber"] == DEMO_MAX_NUMBER
    assert "?expires=" in challenge["salt"]


def test_each_process_makes_its_own_secret() -> None:
    with serve_asgi(create_app()) as first, serve_asgi(create_app()) as second:
        challenge = httpx.get(first + CHALLENGE_PATH).json()
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
        elsewhere = httpx.post(second + "/login", data={FIELD: payload})
        here = httpx.post(first + "/login", data={FIELD: payload})
    assert elsewhere.status_code == 403
    assert here.status_code == 200
    assert "Signed in as someone" in here.text


def test_the_login_page_leads_to_the_form(demo_url: str) -> None:
    answer = httpx.get(demo_url + "/login")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    assert httpx.get(demo_url + "/static/nothing.js").status_code == 404
