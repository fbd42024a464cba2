"""The gate's own events, counted by captcha_guard.prometheus across two uvicorn workers and
scraped from a real /metrics endpoint (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import ROOT, TLS
from tests.helpers import solve_pow as solve


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    sock = tmp_path / "site.sock"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_SITE_SECRET": "metrics-site-secret-0123456789abcdef",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.prometheus.metrics_site:app",
        "--workers",
        "2",
    ]
    command += ["--uds", str(sock), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        pids: set[str] = set()
        while len(pids) < 2:  # both workers answer before the test starts
            if process.poll() is not None or time.monotonic() > deadline:
                assert process.stderr is not None
                raise AssertionError(f"uvicorn workers did not start: {process.stderr.read()}")
            if sock.exists():
                try:
                    with _client(sock) as client:
                        pids.add(client.get("/ready").headers["x-pid"])
                except httpx.TransportError:
                    pass
            time.sleep(0.02)
        yield sock
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def _client(sock: Path) -> httpx.Client:
    """A client on a fresh connection, so the kernel may hand it to either worker."""
    transport = httpx.HTTPTransport(uds=str(sock), verify=TLS)
    return httpx.Client(transport=transport, base_url="http://site", timeout=10)


def test_verdicts_from_both_workers_are_counted_once_each(site: Path) -> None:
    pids: set[str] = set()
    passed = rejected = 0
    deadline = time.monotonic() + 30
    while (len(pids) < 2 or passed < 6) and time.monotonic() < deadline:
        with _client(site) as client:
            challenge = client.get("/captcha-guard/challenge").json()
            answer = client.post("/login", data={"altcha": solve(challenge)})
            assert (answer.status_code, answer.text) == (200, "passed")
            pids.add(answer.headers["x-pid"])
            passed += 1
        with _client(site) as client:
            refused = client.post("/login", data={"altcha": "not-a-solution"})
            assert refused.status_code == 403  # the gate's own answer: no x-pid
            rejected += 1
    assert len(pids) == 2, "every request went to one worker"
    with _client(site) as client:
        text = client.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = (("outcome", "passed"), ("provider", "proof_of_work"), ("rule", "/login"))
    assert samples[("captcha_guard_verifications_total", labels)] == passed
    labels = (("outcome", "rejected"), ("provider", "proof_of_work"), ("rule", "/login"))
    assert samples[("captcha_guard_verifications_total", labels)] == rejected
    # Proof of work makes no provider call: nothing is observed as a call's duration.
    assert not any(
        name.startswith("captcha_guard_provider_request_duration_seconds_count") and value
        for (name, _), value in samples.items()
    )
