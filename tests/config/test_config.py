"""Configuration files: captcha_guard.config.load and from_file on both doors."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from captcha_guard import (
    CaptchaGuard,
    GeeTest,
    ProofOfWork,
    Rule,
    Turnstile,
    WSGICaptchaGuard,
)
from captcha_guard._fields import ParseLimits
from captcha_guard.config import ConfigError, Problem, load
from captcha_guard.config._locate import Locator
from captcha_guard.providers.proof_of_work import derive_key
from captcha_guard.testing import EmulatorServer, GeeTestEmulator
from tests import ROOT
from tests.helpers import EXAMPLE_ENV, RecordingApp

EXAMPLE = ROOT / "examples" / "captcha.toml"


def write(tmp_path: Path, text: str, name: str = "captcha.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, snippet: str, occurrence: int = 1) -> int:
    """The number of the line holding ``snippet`` (its ``occurrence``-th time)."""
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if snippet in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{snippet!r} not in {path}")


def problems(path: Path, environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as error:
        load(path, environ=environ or {})
    return error.value.problems


def only_problem(path: Path, environ: dict[str, str] | None = None) -> Problem:
    found = problems(path, environ)
    assert len(found) == 1, found
    return found[0]


POW = """
    environment = "development"
    [providers.pow]
    type = "proof_of_work"
    secret = "literal:a-development-secret-0123456789"
    """


# The example file.


def test_the_example_file_loads_and_builds_every_option() -> None:
    config = load(EXAMPLE, environ=EXAMPLE_ENV)
    assert config.environment == "production"
    assert config.default_provider == "geetest"
    geetest = config.providers["geetest"].provider
    assert isinstance(geetest, GeeTest)
    assert geetest.endpoint == "https://cap-global.geelabapi.com/validate"
    assert (geetest.breaker.failure_threshold, geetest.breaker.reset_timeout) == (5, 30.0)
    turnstile = config.providers["turnstile"].provider
    assert isinstance(turnstile, Turnstile) and turnstile.hostnames == {"example.com"}
    rules = [spec.rule for spec in config.rules]
    assert rules == [
        Rule("/login", methods=["POST"], provider="geetest"),
        Rule("/posts/{post_id:int}/comments", methods=["POST"], provider="geetest", clearance=True),
        Rule("/api/signup", provider="turnstile", fail_open=False),
    ]
    assert config.rules[1].options["clearance"] is True
    assert (config.max_body_size, config.body_timeout, config.fallback_limit) == (
        1_048_576,
        10.0,
        30,
    )
    assert config.parse_limits == {"max_fields": 1000, "max_files": 100, "max_json_depth": 32}
    assert config.client_ip == 1
    assert config.state is not None
    assert (config.state.url, config.state.timeout) == ("redis://127.0.0.1:6379/0", 0.2)
    assert config.clearance is not None
    assert config.clearance.secrets == (
        EXAMPLE_ENV["CLEARANCE_KEY"],
        EXAMPLE_ENV["CLEARANCE_KEY_PREVIOUS"],
    )
    assert config.clearance.ttl == 900
    assert config.prometheus is True
    assert config.warnings == ()  # fails closed on one rule, budget and shared state set


def test_the_example_builds_both_doors(caplog: pytest.LogCaptureFixture) -> None:
    for door in (CaptchaGuard, WSGICaptchaGuard):
        with pytest.MonkeyPatch.context() as patch:
            for name, value in EXAMPLE_ENV.items():
                patch.setenv(name, value)
            with caplog.at_level(logging.WARNING, "captcha_guard"):
                guard = door.from_file(RecordingApp(), EXAMPLE)  # type: ignore[attr-defined]
        assert isinstance(guard, door)
        assert [r.rule.pattern for r in guard.gate.routes] == [
            "/login",
            "/posts/{post_id:int}/comments",
            "/api/signup",
        ]
        assert guard.gate.max_body_size == 1_048_576
        # Every option the file sets reaches the door: none is dropped.
        assert guard.gate.body_timeout == 10.0
        assert guard.gate.parse_limits.max_files == 100
        assert guard.state is not None and guard.state.shared
        assert guard.gate.clearance is not None
        assert guard.gate.routes[1].clearance_scope is not None
        assert set(guard.gate.hooks) == {
            "verdict",
            "breaker",
            "store_error",
            "pow_level",
            "private_token",
            "clearance",
        }
    assert not [r for r in caplog.records if "not apply" in r.getMessage()]


def test_every_secret_in_the_example_comes_from_the_environment() -> None:
    found = problems(EXAMPLE, environ={})
    unset = {p.key for p in found if "is not set" in p.message}
    assert unset == {
        "state.url",
        "clearance.secret[1]",
        "providers.geetest.captcha_id",
        "providers.geetest.captcha_key",
        "providers.turnstile.secret",
    }
    # The default provider failed to build: its rules do not pile on errors of their own.
    assert not [p for p in found if p.key.startswith("rules")]


# From a file to a door that judges.


@pytest.fixture
def geetest_server() -> Iterator[tuple[GeeTestEmulator, EmulatorServer]]:
    emulator = GeeTestEmulator()
    with emulator.serve() as server:
        yield emulator, server


def geetest_config(tmp_path: Path, server: EmulatorServer) -> Path:
    return write(
        tmp_path,
        f"""
        environment = "test"
        [providers.geetest]
        captcha_id = "647f5ed2ed8acb4be36784e01556bb71"
        captcha_key = "env:GEETEST_KEY"
        endpoint = "{server.endpoint("/validate")}"
        [[rules]]
        pattern = "/login"
        """,
    )


@pytest.mark.asyncio
async def test_from_file_asgi_door_verifies_through_the_configured_provider(
    tmp_path: Path,
    geetest_server: tuple[GeeTestEmulator, EmulatorServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, server = geetest_server
    monkeypatch.setenv("GEETEST_KEY", emulator.captcha_key)
    app = RecordingApp()
    guard = CaptchaGuard.from_file(app, geetest_config(tmp_path, server))
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        passed = await client.post("/login", data=emulator.issue())
        bad = emulator.issue()
        bad["pass_token"] = "0" * 64
        refused = await client.post("/login", data=bad)
    await guard.aclose()
    assert passed.status_code == 200
    assert refused.status_code == 403
    assert emulator.calls == 2


def test_from_file_wsgi_door_verifies_through_the_configured_provider(
    tmp_path: Path,
    geetest_server: tuple[GeeTestEmulator, EmulatorServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.apps import echo_wsgi

    emulator, server = geetest_server
    monkeypatch.setenv("GEETEST_KEY", emulator.captcha_key)
    guard = WSGICaptchaGuard.from_file(echo_wsgi, geetest_config(tmp_path, server))
    with httpx.Client(transport=httpx.WSGITransport(app=guard), base_url="http://t") as client:
        passed = client.post("/login", data=emulator.issue())
        missing = client.post("/login", data={"user": "x"})
    guard.close()
    assert passed.status_code == 200
    assert missing.status_code == 403
    assert emulator.calls == 1


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, POW + "[limits]\nmax_body_size = 100\n[[rules]]\npattern = '/a'\n")
    guard = CaptchaGuard.from_file(RecordingApp(), path, max_body_size=5)
    assert guard.gate.max_body_size == 5


def test_a_bad_file_raises_config_error_from_the_door(tmp_path: Path) -> None:
    path = write(tmp_path, "[limits]\nmax_body = 1\n")
    with pytest.raises(ConfigError, match=r"captcha.toml:2: limits.max_body: unknown key"):
        WSGICaptchaGuard.from_file(RecordingApp(), path)


# Errors name the file, the line and the key.


def test_unknown_keys_name_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW
        + """
        [[rules]]
        pattern = "/a"

        [[rules]]
        pattern = "/b"
        method = ["POST"]
        """,
    )
    problem = only_problem(path)
    assert problem.file == str(path)
    assert (problem.line, problem.key) == (line_of(path, "method ="), "rules[2].method")
    assert "unknown key" in problem.message and "methods" in problem.message
    assert str(problem).startswith(f"{path}:{problem.line}: rules[2].method: unknown key")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "prod"
        [limits]
        max_body_size = -1
        body_timeout = "10s"
        [providers.t]
        type = "turnstile"
        secret = "env:T_SECRET"
        timeout = 0
        [[rules]]
        pattern = "/a"
        methods = "POST"
        fail_open = "no"
        """,
    )
    found = {(p.line, p.key): p.message for p in problems(path)}
    assert found == {
        (1, "environment"): "must be one of production, staging, development, test, not 'prod'",
        (3, "limits.max_body_size"): "must be >= 0",
        (4, "limits.body_timeout"): "must be a number, not a string",
        (7, "providers.t.secret"): "environment variable T_SECRET is not set (or empty)",
        (8, "providers.t.timeout"): "must be > 0",
        (11, "rules[1].methods"): "must be an array of strings, not a string",
        (12, "rules[1].fail_open"): "must be true or false, not a string",
    }


def test_a_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'environment = "test"\n[limits\nmax_body_size = 1\n')
    problem = only_problem(path)
    assert problem.line == 2 and "not valid TOML" in problem.message


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    problem = only_problem(tmp_path / "missing.toml")
    assert "cannot read" in problem.message
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'environment = "test"\n# caf\xe9\n')
    assert only_problem(bad).line == 2


def test_provider_constructor_errors_point_at_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "test"
        [providers.geetest]
        captcha_id = "not alphanumeric!"
        captcha_key = "literal:k"
        """,
    )
    problem = only_problem(path)
    assert (problem.line, problem.key) == (3, "providers.geetest.captcha_id")
    assert "alphanumeric" in problem.message


def test_unknown_provider_types_and_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW
        + """
        [providers.other]
        type = "friendlycaptcha"
        [[rules]]
        pattern = "/a"
        provider = "nope"
        """,
    )
    found = {(p.line, p.key): p.message for p in problems(path)}
    at_type = (line_of(path, "friendlycaptcha"), "providers.other.type")
    assert found[at_type].startswith("unknown provider type 'friendlycaptcha'")
    at_rule = (line_of(path, '"nope"'), "rules[1].provider")
    assert found[at_rule] == "names no provider 'nope' (known: pow)"


def test_a_rule_needs_a_provider_when_there_are_several(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW
        + """
        [providers.pow2]
        type = "proof_of_work"
        secret = "literal:another-development-secret-0123"
        challenge_path = "/other"
        [[rules]]
        pattern = "/a"
        """,
    )
    assert "no provider" in only_problem(path).message
    fixed = path.read_text().replace('environment = "development"', 'provider = "pow2"')
    path.write_text('environment = "development"\n' + fixed)
    config = load(path, environ={})
    assert config.rules[0].rule.provider == "pow2"


def test_bad_patterns_and_exactly_one_of_pattern_or_regex(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW
        + """
        [[rules]]
        pattern = "login"
        [[rules]]
        regex = "/a("
        [[rules]]
        pattern = "/b"
        regex = "/b"
        [[rules]]
        pattern = "/c"
        methods = ["PO ST"]
        """,
    )
    found = {(p.line, p.key): p.message for p in problems(path)}
    assert "must start with '/'" in found[(line_of(path, '"login"'), "rules[1].pattern")]
    assert "not a valid regular" in found[(line_of(path, '"/a("'), "rules[2].regex")]
    third = (line_of(path, "[[rules]]", 3), "rules[3]")
    assert found[third] == "a rule needs exactly one of 'pattern' or 'regex'"
    assert "bad HTTP method" in found[(line_of(path, "PO ST"), "rules[4].methods")]


def test_a_regex_rule(tmp_path: Path) -> None:
    path = write(tmp_path, POW + '[[rules]]\nregex = "/api/v[0-9]+/login"\n')
    rule = load(path, environ={}).rules[0].rule
    assert rule.matches("POST", "/api/v2/login") and not rule.matches("POST", "/api/vx/login")


# Secrets.


def test_a_literal_secret_is_refused_unless_marked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "test"
        [providers.turnstile]
        secret = "0x4AAAAAAA-pasted-secret"
        """,
    )
    problem = only_problem(path)
    assert (problem.line, problem.key) == (3, "providers.turnstile.secret")
    assert '"env:NAME"' in problem.message and '"literal:..."' in problem.message
    assert "0x4AAAAAAA-pasted-secret" not in str(problem)
    path.write_text(path.read_text().replace('"0x4', '"literal:0x4'))
    provider = load(path, environ={}).providers["turnstile"].provider
    assert provider._secret == "0x4AAAAAAA-pasted-secret"  # type: ignore[attr-defined]


def test_secrets_from_the_environment_and_from_files(tmp_path: Path) -> None:
    (tmp_path / "pow.secret").write_text("a-mounted-secret-0123456789abcdef\n")
    path = write(
        tmp_path,
        """
        environment = "test"
        [providers.a]
        type = "proof_of_work"
        secret = "file:pow.secret"
        [providers.b]
        type = "turnstile"
        secret = "env:TS"
        [[rules]]
        pattern = "/a"
        provider = "a"
        """,
    )
    config = load(path, environ={"TS": "from-the-environment"})
    pow_provider = config.providers["a"].provider
    assert pow_provider._key == derive_key(  # type: ignore[attr-defined]
        "a-mounted-secret-0123456789abcdef",
        pow_provider.realm,  # type: ignore[attr-defined]
        pow_provider.expires,  # type: ignore[attr-defined]
    )
    assert config.providers["b"].provider._secret == "from-the-environment"  # type: ignore[attr-defined]
    assert "from-the-environment" not in repr(config)
    (tmp_path / "pow.secret").unlink()
    assert "cannot read" in only_problem(path, {"TS": "x"}).message
    assert (
        "does not name"
        in only_problem(
            write(tmp_path, '[providers.t]\ntype = "turnstile"\nsecret = "env:1X"\n', "b.toml")
        ).message
    )


def test_a_password_in_the_state_url_is_a_secret(tmp_path: Path) -> None:
    base = POW + '[[rules]]\npattern = "/a"\n[state]\n'
    path = write(tmp_path, base + 'url = "redis://:hunter2@redis.internal:6379/0"\n')
    problem = only_problem(path)
    assert problem.key == "state.url" and "password" in problem.message
    assert "hunter2" not in str(problem)
    for url in ("redis://redis.internal:6379/0", "literal:redis://:pw@r:6379/0", "env:REDIS"):
        path.write_text(textwrap.dedent(base).lstrip("\n") + f'url = "{url}"\n')
        assert load(path, environ={"REDIS": "rediss://u:pw@r/0"}).state is not None
    path.write_text(textwrap.dedent(base).lstrip("\n") + 'url = "http://r"\n')
    assert "redis://" in only_problem(path).message


def test_the_state_table_carries_the_failure_policy(tmp_path: Path) -> None:
    """``[state]`` says what shared state may answer (docs/shared-state.md): the opt-in to
    per-process answers, the tolerated clock skew and each namespace's capacity reach the
    RedisState the door gets; a value outside the choices is the file's error."""
    base = POW + '[[rules]]\npattern = "/a"\n[state]\nurl = "unix:///tmp/none.sock"\n'
    path = write(tmp_path, base + 'in_outage = "per_process"\nclock_skew = 5\nmax_entries = 10\n')
    state = load(path).state
    assert state is not None
    built = state.build()
    try:
        assert (built.in_outage, built.clock_skew) == ("per_process", 5)
    finally:
        built.close()
    path.write_text(textwrap.dedent(base).lstrip("\n") + 'in_outage = "allow"\n')
    problem = only_problem(path)
    assert problem.key == "state.in_outage"


# Options the doors do not take yet: built in Config, handed over by one table.


def test_every_option_is_built_and_applied(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW
        + """
        [limits]
        body_timeout = 3
        [limits.parse]
        max_fields = 10
        max_json_items = 4096
        max_header_fields = 50
        [client_ip]
        trusted_hops = 2
        [clearance]
        secret = "env:CLEAR"
        [metrics]
        prometheus = true
        [[rules]]
        pattern = "/a"
        clearance = true
        """,
    )
    config = load(path, environ={"CLEAR": "clearance-secret-0123456789abcdef"})
    assert config.body_timeout == 3.0
    assert config.parse_limits == {
        "max_fields": 10,
        "max_json_items": 4096,
        "max_header_fields": 50,
    }
    assert config.client_ip == 2
    assert config.clearance is not None and config.clearance.secrets == (
        "clearance-secret-0123456789abcdef",
    )
    options = config.door_kwargs()
    assert options["body_timeout"] == 3.0 and options["client_ip"] == 2
    assert options["parse_limits"] == ParseLimits(
        max_fields=10, max_json_items=4096, max_header_fields=50
    )
    # Every option the file sets reaches the doors.
    assert {"body_timeout", "parse_limits", "client_ip", "clearance", "event_hooks"} <= set(options)


def test_clearance_on_a_rule_needs_a_clearance_table(tmp_path: Path) -> None:
    path = write(tmp_path, POW + '[[rules]]\npattern = "/a"\nclearance = true\n')
    problem = only_problem(path)
    assert problem.key == "rules[1].clearance" and "[clearance]" in problem.message


def test_prometheus_hooks_are_built_for_the_doors(tmp_path: Path) -> None:
    path = write(tmp_path, POW + '[metrics]\nprometheus = true\n[[rules]]\npattern = "/a"\n')
    config = load(path, environ={})
    hooks: Any = config.door_kwargs()["event_hooks"]
    assert set(hooks) == {
        "verdict", "breaker", "store_error", "pow_level", "private_token", "clearance"
    }  # fmt: skip


# Warnings.


def test_test_keys_in_production_are_warnings(tmp_path: Path) -> None:
    text = """
        environment = "{env}"
        [providers.recaptcha]
        secret = "literal:6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe"
        [[rules]]
        pattern = "/a"
        fail_open = false
        """
    path = write(tmp_path, text.format(env="production"))
    warnings = load(path, environ={}).warnings
    assert [(w.code, w.line, w.key) for w in warnings] == [
        ("test-key", 3, "providers.recaptcha.secret")
    ]
    assert "reCAPTCHA's test secret" in warnings[0].message
    path = write(tmp_path, text.format(env="development"))
    assert load(path, environ={}).warnings == ()


def test_a_test_key_from_the_environment_is_found_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [providers.geetest]
        captcha_id = "env:GT_ID"
        captcha_key = "env:GT_KEY"
        [[rules]]
        pattern = "/a"
        fail_open = false
        """,
    )
    env = {
        "GT_ID": "647f5ed2ed8acb4be36784e01556bb71",
        "GT_KEY": "b09a7aafbfd83f73b35a9b530d0337bf",
    }
    warnings = load(path, environ=env).warnings
    assert [(w.code, w.key) for w in warnings] == [
        ("test-key", "providers.geetest.captcha_id"),
        ("test-key", "providers.geetest.captcha_key"),
    ]
    assert not any(env["GT_KEY"] in str(w) for w in warnings)


def test_rules_that_an_earlier_rule_always_matches_first(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW
        + """
        [[rules]]
        pattern = "/posts/{rest:path}"
        methods = ["POST"]
        fail_open = false
        [[rules]]
        pattern = "/posts/{post_id:int}/comments"
        methods = ["POST"]
        fail_open = false
        [[rules]]
        pattern = "/posts/{post_id:int}"
        methods = ["POST", "DELETE"]
        fail_open = false
        [[rules]]
        pattern = "/users/{name}"
        methods = ["POST"]
        fail_open = false
        [[rules]]
        pattern = "/users/{id:int}"
        methods = ["POST"]
        fail_open = false
        """,
    )
    warnings = {w.key: w for w in load(path, environ={}).warnings}
    assert set(warnings) == {"rules[2]", "rules[3]", "rules[5]"}
    assert warnings["rules[2]"].code == "unreachable-rule"
    assert warnings["rules[2]"].line == line_of(path, "[[rules]]", 2)
    assert "is never reached: rules[1] match every request" in warnings["rules[2]"].message
    assert "is never reached for POST: rules[1]" in warnings["rules[3]"].message
    assert "rules[4]" in warnings["rules[5]"].message


def test_fail_open_without_shared_state_or_budget(tmp_path: Path) -> None:
    text = """
        environment = "test"
        [providers.t]
        type = "turnstile"
        secret = "literal:x"
        [[rules]]
        pattern = "/a"
        [[rules]]
        pattern = "/b"
        fail_open = false
        """
    path = write(tmp_path, text)
    warnings = load(path, environ={}).warnings
    assert [(w.code, w.key) for w in warnings] == [
        ("fail-open-replay", "rules[1]"),
        ("fail-open-budget", "rules[1]"),
    ]
    assert "rules[1] fail open" in warnings[0].message
    path = write(
        tmp_path,
        text + '[state]\nurl = "redis://127.0.0.1/0"\n[limits]\nfallback_limit = 10\n',
    )
    assert load(path, environ={}).warnings == ()
    # A local provider cannot fail: no warning for proof of work.
    assert load(write(tmp_path, POW + '[[rules]]\npattern = "/a"\n'), environ={}).warnings == ()


# Finding lines.


def test_the_locator_follows_tables_arrays_and_dotted_keys() -> None:
    text = textwrap.dedent(
        '''
        a = 1
        b.c = "x = y"
        [providers.geetest]
        captcha_id = "x"
        note = """
        fake = 1
        """
        [providers.geetest.breaker]
        reset_timeout = 1
        [[rules]]
        pattern = "/a"
        [[rules]]
        pattern = "/b"
        inline = { x = 1 }
        [ "quoted.key" ]
        z = 1
        '''
    ).lstrip("\n")
    locator = Locator(text)
    assert locator.line(("a",)) == 1
    assert locator.line(("b", "c")) == 2
    assert locator.line(("providers", "geetest", "captcha_id")) == 4
    assert locator.line(("providers", "geetest", "fake")) == 3  # not a key: the table's line
    assert locator.line(("providers", "geetest", "breaker", "reset_timeout")) == 9
    assert locator.line(("rules", 0, "pattern")) == 11
    assert locator.line(("rules", 1, "pattern")) == 13
    assert locator.line(("rules", 1, "inline", "x")) == 14
    assert locator.line(("rules", 1)) == 12
    assert locator.line(("quoted.key", "z")) == 16
    assert locator.line(("nowhere",)) is None


def test_proof_of_work_from_a_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        POW + 'max_number = 5000\nexpires = 60\n[[rules]]\npattern = "/a"\n',
    )
    provider = load(path, environ={}).providers["pow"].provider
    assert isinstance(provider, ProofOfWork)
    assert (provider.max_number, provider.expires) == (5000, 60.0)


def test_breaker_settings_errors_point_inside_the_breaker_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "test"
        [providers.turnstile]
        secret = "literal:x"
        breaker = { failure_threshold = 0, reset = 1 }
        """,
    )
    found = {(p.line, p.key): p.message for p in problems(path)}
    line = line_of(path, "breaker =")
    assert found == {
        (line, "providers.turnstile.breaker.failure_threshold"): "must be >= 1",
        (line, "providers.turnstile.breaker.reset"): (
            "unknown key (known here: failure_threshold, reset_timeout)"
        ),
    }


def test_state_and_clearance_are_built_by_the_modules_that_own_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapping to RedisState.from_url and Clearance, with stand-ins for the two modules
    another branch builds (imported only when the doors take the options)."""
    import sys
    import types

    import captcha_guard

    made: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    class RedisState:
        @classmethod
        def from_url(cls, *args: Any, **kwargs: Any) -> str:
            made.append(("state", args, kwargs))
            return "state"

    def clearance(*args: Any, **kwargs: Any) -> str:
        made.append(("clearance", args, kwargs))
        return "clearance"

    redis_module = types.ModuleType("captcha_guard.redis")
    redis_module.RedisState = RedisState  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "captcha_guard.redis", redis_module)
    monkeypatch.setattr(captcha_guard, "Clearance", clearance, raising=False)
    path = write(
        tmp_path,
        POW
        + """
        [state]
        url = "env:REDIS_URL"
        prefix = "shop"
        timeout = 0.5
        [clearance]
        secret = ["env:NEW", "env:OLD"]
        ttl = 600
        [[rules]]
        pattern = "/a"
        """,
    )
    env = {"REDIS_URL": "redis://r:6379/2", "NEW": "n" * 32, "OLD": "o" * 32}
    kwargs = load(path, environ=env).door_kwargs()
    assert (kwargs["state"], kwargs["clearance"]) == ("state", "clearance")
    assert made == [
        ("state", ("redis://r:6379/2",), {"prefix": "shop", "timeout": 0.5}),
        ("clearance", (["n" * 32, "o" * 32],), {"ttl": 600.0}),
    ]


def test_from_file_logs_the_files_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        """
        [providers.turnstile]
        secret = "literal:1x0000000000000000000000000000000AA"
        [[rules]]
        pattern = "/a"
        fail_open = false
        """,
    )
    with caplog.at_level(logging.WARNING, "captcha_guard"):
        CaptchaGuard.from_file(RecordingApp(), path)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "Turnstile's always-pass test secret" in lines[0]
    assert lines[0].endswith("[test-key]")
    assert "1x0000000000000000000000000000000AA" not in lines[0]


def test_no_rules_and_unused_providers(tmp_path: Path) -> None:
    path = write(tmp_path, POW)
    assert [(w.code, w.key) for w in load(path, environ={}).warnings] == [("no-rules", "rules")]
    path = write(
        tmp_path,
        POW
        + """
        [providers.t]
        type = "turnstile"
        secret = "literal:x"
        [[rules]]
        pattern = "/a"
        provider = "pow"
        """,
    )
    warnings = load(path, environ={}).warnings
    assert [(w.code, w.key, w.line) for w in warnings] == [
        ("unused-provider", "providers.t", line_of(path, "[providers.t]"))
    ]


def test_config_error_is_public() -> None:
    import captcha_guard

    assert captcha_guard.ConfigError is ConfigError
    assert "ConfigError" in captcha_guard.__all__
