"""``python -m captcha_guard demo``: the command the README's quick start runs."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from captcha_guard.__main__ import main, parser
from captcha_guard.demo.app import CHALLENGE_PATH
from tests import ROOT, TLS


def read_line_matching(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    try:
        while (left := deadline - time.monotonic()) > 0 and selector.select(left):
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if re.search(pattern, line):
                return line
    finally:
        selector.close()
    raise AssertionError(f"no line matching {pattern!r} in {seen!r}")


def test_demo_defaults_to_loopback_port_8000() -> None:
    args = parser().parse_args(["demo"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    args = parser().parse_args(["demo", "--host", "::1", "--port", "0"])
    assert (args.host, args.port) == ("::1", 0)


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "demo" in capsys.readouterr().err


def test_a_taken_port_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_demo_command_serves_the_sign_in_page() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "captcha_guard", "demo", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = read_line_matching(process, r"open http://127\.0\.0\.1:\d+/", timeout=30)
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert match is not None
        url = match.group(0)
        page = httpx.get(url + "/", verify=TLS)
        challenge = httpx.get(url + CHALLENGE_PATH, verify=TLS)
        refused = httpx.post(url + "/login", data={"username": "ada"}, verify=TLS)
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl+C does: uvicorn shuts down cleanly
        try:
            code = process.wait(15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()
    assert page.status_code == 200
    assert '<form id="signin"' in page.text
    assert challenge.json()["algorithm"] == "SHA-256"
    assert refused.status_code == 403
    assert code == 0
