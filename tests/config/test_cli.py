"""``captcha-guard check`` and ``explain``, run as the user runs them: a subprocess. Probes go
to captcha_guard.testing's emulators on 127.0.0.1 through each provider's ``endpoint``."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import redis

from captcha_guard import Rule
from captcha_guard.testing import (
    AliyunCaptchaEmulator,
    DeepKnowEmulator,
    Emulator,
    GeeTestEmulator,
    HCaptchaEmulator,
    Outage,
    ReCaptchaEmulator,
    TurnstileEmulator,
)
from tests import ROOT
from tests.helpers import EXAMPLE_ENV

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXAMPLE = ROOT / "examples" / "captcha.toml"
RECAPTCHA_TEST_SECRET = "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe"


@dataclass
class Run:
    code: int
    out: str

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.out.splitlines() if line.startswith(prefix)]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Run:
    environ = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "captcha_guard", *map(str, args)],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert not done.stderr, done.stderr
    return Run(done.returncode, done.stdout)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "captcha.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# check, without the network.


def test_check_the_example_is_sound_and_says_what_it_did_not_check() -> None:
    run = cli("check", EXAMPLE, env=EXAMPLE_ENV)
    assert run.code == 0, run.out
    assert not run.lines("warning") and not run.lines("error")
    notes = "\n".join(run.lines("note"))
    assert "maxmemory-policy not checked" in notes
    assert "secrets of geetest, turnstile not proven" in notes
    assert run.out.splitlines()[-1].endswith(
        "2 providers, 3 rules (production): 0 errors, 0 warnings"
    )
    for secret in EXAMPLE_ENV.values():
        assert secret not in run.out


def test_check_errors_exit_1_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [providers.turnstile]
        secret = "0x4AAAAAAA-pasted"
        [[rules]]
        pattern = "/a"
        methods = ["POST"]
        fail_opn = false
        """,
    )
    run = cli("check", path)
    assert run.code == 1
    assert run.lines("error") == [
        f'error: {path}:2: providers.turnstile.secret: a secret must be "env:NAME" or '
        '"file:/path"; a secret written in the file itself must be marked "literal:..."',
        f"error: {path}:6: rules[1].fail_opn: unknown key (known here: clearance, fail_open, "
        "methods, pattern, private_tokens, provider, regex)",
    ]
    assert "0x4AAAAAAA-pasted" not in run.out


def test_check_refuses_every_file_from_file_refuses(tmp_path: Path) -> None:
    # Two proof-of-work providers serve their challenges at one path: load() accepts the
    # file, the door refuses it. check builds the door as from_file does.
    path = write(
        tmp_path,
        """
        environment = "test"
        [providers.a]
        type = "proof_of_work"
        secret = "env:A"
        [providers.b]
        type = "proof_of_work"
        secret = "env:B"
        [[rules]]
        pattern = "/a"
        provider = "a"
        [[rules]]
        pattern = "/b"
        provider = "b"
        """,
    )
    env = {"A": "a" * 32, "B": "b" * 32}
    run = cli("check", path, env=env)
    assert run.code == 1, run.out
    assert run.lines("error") == [
        f"error: {path}: the door refuses it: two providers serve challenges at "
        "'/captcha-guard/challenge'"
    ]
    from captcha_guard import CaptchaGuard, ConfigError, WSGICaptchaGuard

    os.environ.update(env)
    try:
        for door in (CaptchaGuard, WSGICaptchaGuard):
            with pytest.raises(ConfigError, match="two providers serve challenges"):
                door.from_file(lambda *_: None, path)
    finally:
        for name in env:
            del os.environ[name]


def test_check_flags_a_plain_http_vendor_endpoint(tmp_path: Path) -> None:
    body = """
        environment = "test"
        [providers.turnstile]
        secret = "env:S"
        endpoint = "{url}"
        [[rules]]
        pattern = "/a"
        fail_open = false
        """
    remote = write(tmp_path, body.format(url="http://challenges.example.com/siteverify"))
    run = cli("check", remote, env={"S": "s"})
    assert run.code == 3, run.out
    [line] = run.lines("warning")
    assert line.startswith(f"warning: {remote}:4: providers.turnstile.endpoint: the endpoint is")
    assert "challenges.example.com" in line and line.endswith("[plain-http]")
    assert cli("check", remote, "--allow", "plain-http", env={"S": "s"}).code == 0
    for url in ("https://challenges.example.com/siteverify", "http://127.0.0.1:9/x"):
        assert cli("check", write(tmp_path, body.format(url=url)), env={"S": "s"}).code == 0


@pytest.mark.parametrize(
    "pasted",
    [
        "b09a7aafbfd83f73b35a9b530d0337bf",  # a valid variable name, and a GeeTest key
        "0x4AAAAAAA-pasted-secret-value",  # not a variable name at all
        "A1EMULATEDFRIENDLYCAPTCHAAPIKEY0",
    ],
)
def test_a_secret_pasted_after_env_is_never_printed(tmp_path: Path, pasted: str) -> None:
    path = write(
        tmp_path,
        f"""
        [providers.turnstile]
        secret = "env:{pasted}"
        [[rules]]
        pattern = "/a"
        """,
    )
    run = cli("check", path)
    assert run.code == 1
    assert pasted not in run.out and pasted[:12] not in run.out
    digest = hashlib.sha256(pasted.encode()).hexdigest()[:8]
    [line] = run.lines("error")
    assert f"{len(pasted)} characters, sha256 {digest}" in line, line
    # A name that reads as one is still named, so a typo can be found.
    named = write(tmp_path, '[providers.t]\ntype = "turnstile"\nsecret = "env:TURNSTILE_SECRET"\n')
    assert "environment variable TURNSTILE_SECRET is not set" in cli("check", named).out


def test_check_warnings_exit_3_unless_allowed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        [providers.recaptcha]
        secret = "literal:{RECAPTCHA_TEST_SECRET}"
        [[rules]]
        pattern = "/login"
        [[rules]]
        pattern = "/login"
        methods = ["POST"]
        """,
    )
    run = cli("check", path)
    assert run.code == 3
    codes = sorted(line.rsplit("[", 1)[1].rstrip("]") for line in run.lines("warning"))
    assert codes == ["fail-open-budget", "fail-open-replay", "test-key", "unreachable-rule"]
    assert RECAPTCHA_TEST_SECRET not in run.out
    allow = ["--allow", "fail-open-budget", "--allow", "fail-open-replay", "--allow", "test-key"]
    assert cli("check", path, *allow).code == 3  # the unreachable rule still counts
    run = cli("check", path, *allow, "--allow", "unreachable-rule")
    assert run.code == 0
    assert len(run.lines("allowed")) == 4


# check --probe, against the emulators.


@contextmanager
def serving(*emulators: Emulator) -> Iterator[list[str]]:
    servers = [emulator.serve() for emulator in emulators]
    try:
        yield [server.__enter__().endpoint("/verify") for server in servers]
    finally:
        for server in servers:
            server.__exit__(None, None, None)


def probe(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Run:
    return cli("check", write(tmp_path, 'environment = "test"\n' + text), "--probe", env=env)


def siteverify_config(kind: str, endpoint: str) -> str:
    return f"""
[providers.{kind}]
secret = "env:SECRET"
endpoint = "{endpoint}"
hostnames = ["localhost"]
[[rules]]
pattern = "/a"
fail_open = false
"""


@pytest.mark.parametrize(
    "emulator",
    [TurnstileEmulator(), ReCaptchaEmulator(), HCaptchaEmulator()],
    ids=lambda e: e.vendor,
)
def test_probe_tells_a_good_siteverify_secret_from_a_bad_one(
    tmp_path: Path, emulator: TurnstileEmulator | ReCaptchaEmulator | HCaptchaEmulator
) -> None:
    kind = emulator.vendor
    with serving(emulator) as (endpoint,):
        good = probe(tmp_path, siteverify_config(kind, endpoint), {"SECRET": emulator.secret})
        bad = probe(tmp_path, siteverify_config(kind, endpoint), {"SECRET": "wrong-secret"})
    assert good.code == 0, good.out
    assert good.lines("ok") == [
        f"ok: {tmp_path / 'captcha.toml'}: providers.{kind}: secret accepted "
        "(the made-up token was refused)"
    ]
    assert bad.code == 1, bad.out
    assert f"providers.{kind}: refused our credentials: {kind}: invalid-input-secret" in bad.out
    assert emulator.calls == 2
    assert emulator.secret not in good.out


class PassEverything(TurnstileEmulator):
    """A secret whose every answer is a pass, as a vendor's test secret behaves."""

    def answer(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "hostname": "x", "error-codes": []})


def test_probe_finds_a_secret_that_passes_everything(tmp_path: Path) -> None:
    emulator = PassEverything()
    with serving(emulator) as (endpoint,):
        run = probe(tmp_path, siteverify_config("turnstile", endpoint), {"SECRET": "s"})
    assert run.code == 3
    assert "a made-up token passed: this secret passes everything (a test key) [test-key]" in (
        run.out
    )


def test_probe_does_not_ask_about_a_known_test_key(tmp_path: Path) -> None:
    emulator = ReCaptchaEmulator()
    with serving(emulator) as (endpoint,):
        run = probe(
            tmp_path, siteverify_config("recaptcha", endpoint), {"SECRET": RECAPTCHA_TEST_SECRET}
        )
    assert run.code == 3
    assert "not probed: uses reCAPTCHA's test secret (passes every token) [test-key]" in run.out
    assert emulator.calls == 0


def geetest_config(endpoint: str, captcha_id: str) -> str:
    return f"""
[providers.geetest]
captcha_id = "{captcha_id}"
captcha_key = "env:KEY"
endpoint = "{endpoint}"
[[rules]]
pattern = "/a"
fail_open = false
"""


def test_probe_geetest_proves_the_id_and_says_it_cannot_prove_the_key(tmp_path: Path) -> None:
    emulator = GeeTestEmulator(captcha_id="0123456789abcdef0123456789abcdef")
    with serving(emulator) as (endpoint,):
        good = probe(tmp_path, geetest_config(endpoint, emulator.captcha_id), {"KEY": "wrong"})
        unknown = probe(tmp_path, geetest_config(endpoint, "f" * 32), {"KEY": "k"})
        emulator.paused.add(emulator.captcha_id)
        paused = probe(tmp_path, geetest_config(endpoint, emulator.captcha_id), {"KEY": "k"})
    assert good.code == 0, good.out
    assert "captcha_id is known and active" in good.out
    assert "captcha_key not proven" in good.out  # a wrong key, and the probe cannot see it
    assert unknown.code == 1 and "geetest error -50103" in unknown.out
    assert paused.code == 1 and "geetest error -50105" in paused.out


class SignatureFirstGeeTest(GeeTestEmulator):
    """A GeeTest that checks sign_token before it looks the lot number up (the real one's
    order is not documented): then the probe can see a wrong captcha_key."""

    def answer(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        lot = form.get("lot_number", "")
        expected = hmac.new(self.captcha_key.encode(), lot.encode(), hashlib.sha256).hexdigest()
        if form.get("sign_token") != expected:
            body = {"status": "success", "result": "fail", "reason": "illegal sign_token"}
            return httpx.Response(200, json={**body, "captcha_args": {}})
        return super().answer(request)


def test_probe_geetest_reports_a_wrong_key_when_the_answer_shows_it(tmp_path: Path) -> None:
    emulator = SignatureFirstGeeTest()
    with serving(emulator) as (endpoint,):
        wrong = probe(tmp_path, geetest_config(endpoint, emulator.captcha_id), {"KEY": "wrong"})
        right = probe(
            tmp_path, geetest_config(endpoint, emulator.captcha_id), {"KEY": emulator.captcha_key}
        )
    assert wrong.code == 1, wrong.out
    assert "refused our credentials: GeeTest refused sign_token: check captcha_key" in wrong.out
    assert right.code == 0 and "captcha_id is known and active" in right.out


def test_probe_deepknow(tmp_path: Path) -> None:
    emulator = DeepKnowEmulator()
    config = """
[providers.deepknow]
secret = "env:SECRET"
scene = "{scene}"
endpoint = "{endpoint}"
user_email = "email"
[[rules]]
pattern = "/a"
fail_open = false
"""
    with serving(emulator) as (endpoint,):
        good = probe(
            tmp_path, config.format(scene="login", endpoint=endpoint), {"SECRET": emulator.secret}
        )
        bad = probe(tmp_path, config.format(scene="login", endpoint=endpoint), {"SECRET": "wrong"})
        scene = probe(
            tmp_path, config.format(scene="nope", endpoint=endpoint), {"SECRET": emulator.secret}
        )
    assert good.code == 0 and "secret and scene accepted" in good.out, good.out
    assert bad.code == 1 and "deepknow status 21" in bad.out, bad.out
    assert scene.code == 1 and "deepknow status 34" in scene.out, scene.out
    assert emulator.claims[0]["user_email"] == "probe@example.com"


def test_probe_aliyun(tmp_path: Path) -> None:
    emulator = AliyunCaptchaEmulator()
    config = """
[providers.aliyun]
access_key_id = "{key_id}"
access_key_secret = "env:SECRET"
endpoint = "{endpoint}"
{scene}
[[rules]]
pattern = "/a"
fail_open = false
"""

    def run(key_id: str, secret: str, scene: str = "") -> Run:
        text = config.format(key_id=key_id, endpoint=endpoint, scene=scene)
        return probe(tmp_path, text, {"SECRET": secret})

    with serving(emulator) as (endpoint,):
        good = run(emulator.access_key_id, emulator.access_key_secret)
        wrong_secret = run(emulator.access_key_id, "wrong")
        wrong_id = run("LTAI-unknown", emulator.access_key_secret)
        scene = run(emulator.access_key_id, emulator.access_key_secret, 'scene_id = "other1"')
        emulator.forbidden = "Forbidden.RAMUserAccessDenied"
        forbidden = run(emulator.access_key_id, emulator.access_key_secret)
    assert good.code == 0 and "AccessKey pair accepted" in good.out, good.out
    assert wrong_secret.code == 1 and "aliyun SignatureDoesNotMatch" in wrong_secret.out
    assert wrong_id.code == 1 and "aliyun InvalidAccessKeyId.NotFound" in wrong_id.out
    assert scene.code == 1 and "aliyun F005" in scene.out, scene.out
    assert forbidden.code == 1 and "Forbidden.RAMUserAccessDenied" in forbidden.out
    assert emulator.access_key_secret not in good.out + wrong_id.out


def test_probe_cannot_tell_when_the_vendor_fails_or_is_away(tmp_path: Path) -> None:
    emulator = TurnstileEmulator()
    emulator.outage = Outage.HTTP_500
    with serving(emulator) as (endpoint,):
        failing = probe(tmp_path, siteverify_config("turnstile", endpoint), {"SECRET": "x"})
        emulator.outage = Outage.REFUSE
        away = probe(tmp_path, siteverify_config("turnstile", endpoint), {"SECRET": "x"})
    assert failing.code == 3 and "cannot tell: the vendor failed (HTTP 500) [probe]" in failing.out
    assert away.code == 3 and "did not answer (connect_error) [probe]" in away.out


def test_probe_skips_proof_of_work(tmp_path: Path) -> None:
    run = probe(
        tmp_path,
        '[providers.pow]\ntype = "proof_of_work"\nsecret = "env:S"\n[[rules]]\npattern = "/a"\n',
        {"S": "s" * 32},
    )
    assert run.code == 0 and "verified locally: nothing to probe" in run.out


# The shared store's eviction policy, against a real redis-server.


REDIS_COMMAND = ["redis-server", "--port", "0", "--save", "", "--appendonly", "no"]
REDIS_COMMAND += ["--maxmemory-policy", "allkeys-lru"]


@pytest.fixture
def redis_socket(tmp_path: Path) -> Iterator[Path]:
    sock = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [*REDIS_COMMAND, "--unixsocket", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(unix_socket_path=str(sock))
        deadline = time.monotonic() + 10
        while True:  # until it answers: a condition, bounded
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        client.close()
        yield sock
    finally:
        process.terminate()
        process.wait(10)


def test_probe_reads_the_shared_stores_eviction_policy(tmp_path: Path, redis_socket: Path) -> None:
    text = f"""
[providers.pow]
type = "proof_of_work"
secret = "env:S"
[[rules]]
pattern = "/a"
[state]
url = "unix://{redis_socket}"
"""
    env = {"S": "s" * 32}
    evicting = probe(tmp_path, text, env)
    assert evicting.code == 3, evicting.out
    assert "maxmemory-policy is 'allkeys-lru', not 'noeviction'" in evicting.out
    assert "[eviction]" in evicting.out
    redis.Redis(unix_socket_path=str(redis_socket)).config_set("maxmemory-policy", "noeviction")
    sound = probe(tmp_path, text, env)
    assert sound.code == 0, sound.out
    assert "maxmemory-policy is noeviction" in sound.out
    away = probe(tmp_path, text.replace(str(redis_socket), str(tmp_path / "none.sock")), env)
    assert away.code == 3 and "cannot reach Redis" in away.out


# explain.


def test_explain_says_which_rule_matches_why_and_what_would_be_next(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "test"
        [providers.pow]
        type = "proof_of_work"
        secret = "env:S"
        [[rules]]
        pattern = "/login"
        methods = ["POST"]
        [[rules]]
        pattern = "/posts/{post_id:int}/comments"
        [[rules]]
        pattern = "/{rest:path}"
        methods = ["PUT", "POST"]
        fail_open = false
        """,
    )
    env = {"S": "s" * 32}
    run = cli("explain", path, "POST", "/posts/7/comments/", env=env)
    assert run.code == 0, run.out
    assert run.out.splitlines() == [
        "POST /posts/7/comments/",
        f"  no: rules[1] /login ({path}:5): the path does not match /login/?\\Z",
        f"  matches: rules[2] /posts/{{post_id:int}}/comments ({path}:8): method POST is one "
        "of DELETE, PATCH, POST, PUT and the path matches "
        + Rule("/posts/{post_id:int}/comments").regex.pattern,
        "    provider pow (proof_of_work), fail open: yes",
        f"  would match next: rules[3] /{{rest:path}} ({path}:10): method POST is one of "
        "POST, PUT and the path matches /(?:.*)/?\\Z",
    ]
    get = cli("explain", path, "GET", "/login", env=env)
    assert get.code == 4
    assert "no: rules[1] /login" in get.out and "method GET is not one of POST" in get.out
    assert get.out.splitlines()[-1] == "  no rule matches: the request reaches the app untouched"
    challenge = cli("explain", path, "GET", "/captcha-guard/challenge", env=env)
    assert challenge.code == 4 and "served by pow's challenge endpoint" in challenge.out
    assert cli("explain", path, "POST", "/login", env={}).code == 1  # S unset: an error


def test_the_console_script_is_main() -> None:
    from captcha_guard.__main__ import main

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["captcha-guard"].partition(":")
    assert module == "captcha_guard.__main__"
    assert getattr(sys.modules[module], name) is main
