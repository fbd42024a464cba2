"""A headless Chromium for tests, driven through chromedriver's W3C WebDriver HTTP API.

WebDriver is plain JSON over HTTP, so httpx (already a dependency) is the whole client: no
selenium, no websocket library. Chromium and chromedriver are Debian's ``chromium`` and
``chromium-driver`` packages (``.ci/run`` installs them).
"""

from __future__ import annotations

import base64
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests import TLS

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1024,1100",
]


class WebDriverError(RuntimeError):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Chromium found: apt-get install chromium chromium-driver")


class Browser:
    """One WebDriver session: one headless Chromium with a fresh profile."""

    def __init__(self, client: httpx.Client, session_id: str) -> None:
        self._client = client
        self._session = f"/session/{session_id}"

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = self._client.request(method, self._session + path, json=payload)
        value = response.json()["value"]
        if response.status_code != 200:
            raise WebDriverError(value.get("error", "?"), value.get("message", "")[:500])
        return value

    def get(self, url: str) -> None:
        """Load ``url`` and wait for its load event (WebDriver's page load strategy)."""
        self._call("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return str(self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def clear_and_type(self, css: str, text: str) -> None:
        element = self.find(css)
        self._call("POST", f"/element/{element}/clear", {})
        self._call("POST", f"/element/{element}/value", {"text": text})

    def run(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body; ``arguments`` holds ``args``) in the page."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(self, script: str, *args: Any, timeout: float = 30.0, what: str = "") -> Any:
        """Poll ``script`` until it returns something truthy, or fail after ``timeout`` s.

        Errors while the page is being replaced (a navigation in flight) count as "not yet".
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = self.run(script, *args)
            except WebDriverError as exc:
                last = exc
            else:
                if last:
                    return last
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for {what or script!r}; last: {last!r}")
            time.sleep(0.05)

    def cookies(self) -> list[dict[str, Any]]:
        """The cookies the browser holds for the current page, HttpOnly ones included."""
        return list(self._call("GET", "/cookie"))

    def delete_cookies(self) -> None:
        """Forget every cookie of the current page's site (cookies ignore ports)."""
        self._call("DELETE", "/cookie")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path


def _read_port(process: subprocess.Popen[str], timeout: float) -> int:
    """chromedriver started with --port=0 prints the port it got; wait for that line."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = ""
    try:
        while time.monotonic() < deadline:
            if not selector.select(deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            if not line:
                break
            seen += line
            found = re.search(r"started successfully on port (\d+)", line)
            if found:
                return int(found.group(1))
    finally:
        selector.close()
    raise RuntimeError(f"chromedriver did not start: {seen!r}")


def _start_driver(driver: str, timeout: float) -> tuple[subprocess.Popen[str], int]:
    """chromedriver and the port it got. Started twice at most: on a loaded machine one in a
    few dozen starts has printed its banner and then nothing more (seen in full runs beside
    other suites), and a fresh process starts at once."""
    for attempt in (1, 2):
        process = subprocess.Popen(
            [driver, "--port=0", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "LANG": "C.UTF-8"},
        )
        try:
            return process, _read_port(process, timeout / 2)
        except RuntimeError:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@contextmanager
def chromium(
    timeout: float = 30.0,
    *,
    accept_insecure_certs: bool = False,
    accept_languages: str | None = None,
) -> Iterator[Browser]:
    """A headless Chromium session with a throw-away profile, closed on exit.

    ``accept_insecure_certs`` lets it load pages from a test server's self-signed certificate
    (WebDriver's capability of that name), so HTTPS-only behaviour can be tested on 127.0.0.1.
    ``accept_languages`` (``"zh-TW,zh"``) is the browser's language list, which it sends as
    ``Accept-Language``.
    """
    driver = shutil.which("chromedriver")
    if driver is None:
        raise RuntimeError("no chromedriver found: apt-get install chromium-driver")
    profile = tempfile.mkdtemp(prefix="captcha-guard-chromium-")
    process, port = _start_driver(driver, timeout)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=timeout, verify=TLS
        ) as client:
            options: dict[str, Any] = {
                "binary": chromium_binary(),
                "args": [*CHROMIUM_ARGS, f"--user-data-dir={profile}"],
            }
            if accept_languages is not None:
                options["prefs"] = {"intl.accept_languages": accept_languages}
            capabilities: dict[str, Any] = {
                "browserName": "chrome",
                "goog:chromeOptions": options,
                "acceptInsecureCerts": accept_insecure_certs,
            }
            answer = client.post("/session", json={"capabilities": {"alwaysMatch": capabilities}})
            value = answer.json()["value"]
            if answer.status_code != 200:
                raise WebDriverError(value.get("error", "?"), value.get("message", "")[:500])
            browser = Browser(client, value["sessionId"])
            try:
                yield browser
            finally:
                client.delete(f"/session/{value['sessionId']}")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(profile, ignore_errors=True)
