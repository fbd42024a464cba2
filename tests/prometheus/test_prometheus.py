"""captcha_guard.prometheus: the metrics its hooks keep, in one process and across workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from captcha_guard import prometheus
from captcha_guard._breaker import State
from captcha_guard._events import BreakerEvent, StoreErrorEvent, VerdictEvent
from captcha_guard._verdict import Outcome
from captcha_guard.prometheus import event_hooks
from tests import ROOT, TLS


def feed(hooks: dict[str, list[prometheus.Hook]], name: str, event: object) -> None:
    for hook in hooks[name]:
        hook(event)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_verdicts_count_by_provider_rule_and_outcome() -> None:
    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    feed(hooks, "verdict", VerdictEvent("geetest", "/login", Outcome.PASSED, "ok", 0.04))
    feed(hooks, "verdict", VerdictEvent("geetest", "/login", Outcome.PASSED, "ok", 0.2))
    feed(hooks, "verdict", VerdictEvent("turnstile", "/api/signup", Outcome.REJECTED, "x", None))
    total = "captcha_guard_verifications_total"
    assert value(registry, total, provider="geetest", rule="/login", outcome="passed") == 2
    assert value(registry, total, provider="turnstile", rule="/api/signup", outcome="rejected") == 1
    assert value(registry, total, provider="geetest", rule="/login", outcome="rejected") is None


def test_duration_is_observed_only_for_calls_made() -> None:
    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    feed(hooks, "verdict", VerdictEvent("geetest", "/login", Outcome.PASSED, "ok", 0.04))
    feed(hooks, "verdict", VerdictEvent("geetest", "/login", Outcome.FALLBACK, "open", None))
    name = "captcha_guard_provider_request_duration_seconds"
    assert value(registry, f"{name}_count", provider="geetest") == 1
    assert value(registry, f"{name}_sum", provider="geetest") == pytest.approx(0.04)
    assert value(registry, f"{name}_bucket", provider="geetest", le="0.05") == 1
    assert value(registry, f"{name}_bucket", provider="geetest", le="0.025") == 0


def test_fallbacks_replays_and_store_errors() -> None:
    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    fallback = VerdictEvent("geetest", "/login", Outcome.FALLBACK, "t", 5.0, fallback="allowed")
    replay = VerdictEvent(
        "geetest", "/login", Outcome.REJECTED, "replayed", None, "refused_replay", "fallback"
    )
    pow_replay = VerdictEvent(
        "proof_of_work", "/", Outcome.REJECTED, "used", None, None, "proof_of_work"
    )
    for event in (fallback, fallback, replay, pow_replay):
        feed(hooks, "verdict", event)
    feed(hooks, "store_error", StoreErrorEvent("replay", "timeout"))
    fallbacks = "captcha_guard_fallbacks_total"
    assert value(registry, fallbacks, provider="geetest", decision="allowed") == 2
    assert value(registry, fallbacks, provider="geetest", decision="refused_replay") == 1
    assert value(registry, "captcha_guard_replays_refused_total", kind="fallback") == 1
    assert value(registry, "captcha_guard_replays_refused_total", kind="proof_of_work") == 1
    assert value(registry, "captcha_guard_store_errors_total", store="replay") == 1


def test_values_outside_the_closed_sets_become_other() -> None:
    # Only configured names and our own words may be label values: anything else would let
    # whoever produces it grow the number of series.
    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    odd = VerdictEvent("geetest", "/login", Outcome.FALLBACK, "t", None, "made-up", "weird")
    feed(hooks, "verdict", odd)
    feed(hooks, "store_error", StoreErrorEvent("somewhere", "timeout"))
    assert value(registry, "captcha_guard_fallbacks_total", provider="geetest", decision="other")
    assert value(registry, "captcha_guard_replays_refused_total", kind="other") == 1
    assert value(registry, "captcha_guard_store_errors_total", store="other") == 1


def test_a_compiled_rule_pattern_is_labelled_by_its_source() -> None:
    import re

    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    event = VerdictEvent("geetest", re.compile(r"/api/.*"), Outcome.PASSED, "ok", None)  # type: ignore[arg-type]
    feed(hooks, "verdict", event)
    total = "captcha_guard_verifications_total"
    assert value(registry, total, provider="geetest", rule="/api/.*", outcome="passed") == 1


def breaker_states(registry: CollectorRegistry, provider: str) -> dict[str, float | None]:
    return {
        state.value: value(
            registry, "captcha_guard_breaker_state", provider=provider, state=state.value
        )
        for state in State
    }


def test_breaker_gauge_is_one_hot_per_provider() -> None:
    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    assert breaker_states(registry, "geetest") == dict.fromkeys(("closed", "open", "half_open"))
    feed(hooks, "breaker", BreakerEvent("geetest", State.CLOSED, State.OPEN))
    feed(hooks, "breaker", BreakerEvent("turnstile", State.CLOSED, State.OPEN))
    feed(hooks, "breaker", BreakerEvent("geetest", State.OPEN, State.HALF_OPEN))
    assert breaker_states(registry, "geetest") == {"closed": 0, "open": 0, "half_open": 1}
    assert breaker_states(registry, "turnstile") == {"closed": 0, "open": 1, "half_open": 0}


def test_one_registry_is_shared_by_every_call() -> None:
    registry = CollectorRegistry()
    first, second = event_hooks(registry), event_hooks(registry)  # no duplicate registration
    feed(first, "store_error", StoreErrorEvent("breaker", "timeout"))
    feed(second, "store_error", StoreErrorEvent("breaker", "timeout"))
    assert value(registry, "captcha_guard_store_errors_total", store="breaker") == 2


def test_default_registry_is_prometheus_clients() -> None:
    from prometheus_client import REGISTRY

    before = value(REGISTRY, "captcha_guard_store_errors_total", store="clearance") or 0
    feed(event_hooks(), "store_error", StoreErrorEvent("clearance", "connection"))
    assert value(REGISTRY, "captcha_guard_store_errors_total", store="clearance") == before + 1


def test_one_hot_across_processes_whatever_their_clocks_and_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers' files, written in an order that contradicts their stamps: the collector
    keeps the newest transition whole, for all three states at once."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pid = [1001]
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid[0]))
    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    stamps = iter([200.0, 100.0, 300.0])
    monkeypatch.setattr(prometheus, "clock", lambda: next(stamps))
    # Worker 1001 opens at t=200; worker 1002 then writes "closed", stamped t=100 by a clock
    # that is behind: the newer transition (open) must win all three samples.
    feed(hooks, "breaker", BreakerEvent("geetest", State.CLOSED, State.OPEN))
    pid[0] = 1002
    prometheus._metrics(registry)._last_stamp = 0.0  # another process: its own last stamp
    feed(hooks, "breaker", BreakerEvent("geetest", State.OPEN, State.CLOSED))
    scraped = CollectorRegistry()
    MultiProcessCollector(scraped, path=str(tmp_path))
    assert breaker_states(scraped, "geetest") == {"closed": 0, "open": 1, "half_open": 0}
    pid[0] = 1001
    feed(hooks, "breaker", BreakerEvent("geetest", State.OPEN, State.HALF_OPEN))  # t=300
    assert breaker_states(scraped, "geetest") == {"closed": 0, "open": 0, "half_open": 1}


# A real /metrics endpoint under uvicorn --workers 2, multiprocess mode.


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("http://workers/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[httpx.Client]:
    metrics_dir = tmp_path / "metrics"
    markers = tmp_path / "markers"
    metrics_dir.mkdir()
    markers.mkdir()
    sock = tmp_path / "uvicorn.sock"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "CAPTCHA_GUARD_TEST_MARKERS": str(markers),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.prometheus.prometheus_app:app",
        "--workers",
        "2",
    ]
    command += ["--uds", str(sock), "--lifespan", "on", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        # Both workers have fed their startup batch once both markers exist.
        while len(list(markers.iterdir())) < 2 or not sock.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                assert process.stderr is not None
                raise AssertionError(f"uvicorn workers did not start: {process.stderr.read()}")
            time.sleep(0.02)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=10) as client:
            yield client
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def test_metrics_add_up_across_two_uvicorn_workers(workers: httpx.Client) -> None:
    samples = scrape(workers)
    total = "captcha_guard_verifications_total"
    login = {"provider": "geetest", "rule": "/login"}
    # Each worker fed 2 passed, 2 rejected, 1 fallback: the scrape sees both workers' counts.
    assert sample(samples, total, **login, outcome="passed") == 4
    assert sample(samples, total, **login, outcome="rejected") == 4
    assert sample(samples, total, **login, outcome="fallback") == 2
    duration = "captcha_guard_provider_request_duration_seconds"
    assert sample(samples, f"{duration}_count", provider="geetest") == 6
    assert sample(samples, f"{duration}_sum", provider="geetest") == pytest.approx(2 * 5.05)
    fallbacks = "captcha_guard_fallbacks_total"
    assert sample(samples, fallbacks, provider="geetest", decision="allowed") == 2
    assert sample(samples, fallbacks, provider="geetest", decision="refused_replay") == 2
    assert sample(samples, "captcha_guard_replays_refused_total", kind="fallback") == 2
    assert sample(samples, "captcha_guard_store_errors_total", store="breaker") == 2


def test_breaker_gauge_stays_one_hot_across_two_uvicorn_workers(workers: httpx.Client) -> None:
    def states() -> dict[str, float | None]:
        samples = scrape(workers)
        return {
            s.value: sample(
                samples, "captcha_guard_breaker_state", provider="geetest", state=s.value
            )
            for s in State
        }

    # Both workers opened at startup: each worker's file says open.
    assert states() == {"closed": 0, "open": 1, "half_open": 0}
    # Each transition below lands in whichever worker the kernel hands the connection to; the
    # other worker's file still says what it last saw. A max or sum mode would show two states.
    for old, new in [("open", "half_open"), ("half_open", "closed"), ("closed", "open")] * 2:
        response = workers.post(f"http://workers/breaker?old={old}&new={new}")
        assert response.status_code == 200
        expected = {"closed": 0.0, "open": 0.0, "half_open": 0.0, new: 1.0}
        assert states() == expected


# Through the real flow and both doors (issue 15 §7): no hand-made events.


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_a_proof_of_work_replay_counts_through_the_door(door: str) -> None:
    from captcha_guard import CaptchaGuard, ProofOfWork, Rule, WSGICaptchaGuard
    from tests.apps import echo_asgi, echo_wsgi
    from tests.helpers import solve_pow
    from tests.servers import serve_asgi, serve_wsgi

    registry = CollectorRegistry()
    options: dict[str, Any] = {
        "rules": [Rule("/login")],
        "provider": ProofOfWork("metrics-secret-0123456789abcdef", max_number=30),
        "event_hooks": event_hooks(registry),
    }
    server = (
        serve_asgi(CaptchaGuard(echo_asgi, **options))
        if door == "asgi"
        else serve_wsgi(WSGICaptchaGuard(echo_wsgi, **options))
    )
    with server as url, httpx.Client(base_url=url, verify=TLS) as client:
        solution = solve_pow(client.get("/captcha-guard/challenge").json())
        assert client.post("/login", data={"altcha": solution}).status_code == 200
        assert client.post("/login", data={"altcha": solution}).status_code == 403
    replays = "captcha_guard_replays_refused_total"
    assert value(registry, replays, kind="proof_of_work") == 1


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_the_in_process_breaker_reports_open_to_half_open(door: str) -> None:
    from captcha_guard.testing import Outage
    from tests.hardening_kit import CASES, guarded_site

    registry = CollectorRegistry()
    hooks = event_hooks(registry)
    gauge = "captcha_guard_breaker_state"
    seen: list[tuple[str, str, float | None]] = []

    def snapshot(event: BreakerEvent) -> None:  # after the metrics hook: the gauge now
        now = value(registry, gauge, provider="geetest", state=event.new.value)
        seen.append((event.old.value, event.new.value, now))

    hooks["breaker"].append(snapshot)
    with guarded_site(CASES[0], door=door, failure_threshold=1, event_hooks=hooks) as s:
        s.emulator.outage = Outage.HTTP_500
        s.post(data=s.issue())  # opens the circuit
        s.clock.advance(30.0)  # the cool-down is over: the next caller is the probe
        s.emulator.outage = None
        assert s.post(data=s.issue()).json()["outcome"] == "passed"
    assert seen == [
        ("closed", "open", 1.0),
        ("open", "half_open", 1.0),  # the gauge reads half-open through half-open
        ("half_open", "closed", 1.0),
    ]
