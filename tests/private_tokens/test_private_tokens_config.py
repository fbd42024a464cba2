"""[private_tokens] in the configuration file: built, applied by both doors, and checked."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from captcha_guard import CaptchaGuard, WSGICaptchaGuard
from captcha_guard._privacy_pass._wire import b64encode
from captcha_guard.config import ConfigError, load
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.privacy_pass_issuer import Issuer
from tests.servers import serve_asgi, serve_wsgi

ENV = {
    "CLEAR": "clearance-secret-0123456789abcdef",
    "PAT": "private-token-secret-0123456789abcdef",
    "POW": "pow-secret-0123456789abcdef-0123",
}
BASE = """
[providers.pow]
type = "proof_of_work"
secret = "env:POW"
[clearance]
secret = "env:CLEAR"
secure = false
"""


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "captcha.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def tokens_block(issuer: Issuer, **extra: str) -> str:
    lines = [
        "[private_tokens]",
        'secret = "env:PAT"',
        'origin = ["site.test", "www.site.test"]',
        'issuers = ["issuer.test"]',
        "fetch = false",
        "window = 120",
        "grease = 0",
        'path = "/pat"',
        *(f"{k} = {v}" for k, v in extra.items()),
        "[private_tokens.keys]",
        f'"issuer.test" = ["{b64encode(issuer.spki)}"]',
    ]
    return "\n".join(lines) + "\n"


RULES = """
[[rules]]
pattern = "/comments"
clearance = true
private_tokens = true
[[rules]]
pattern = "/login"
clearance = true
"""


@pytest.mark.parametrize(
    ("door", "app", "serve"),
    [(CaptchaGuard, echo_asgi, serve_asgi), (WSGICaptchaGuard, echo_wsgi, serve_wsgi)],
    ids=["asgi", "wsgi"],
)
def test_the_file_turns_private_tokens_on(
    tmp_path: Path, issuer: Issuer, door: type, app: object, serve: object
) -> None:
    path = write(tmp_path, BASE + tokens_block(issuer) + RULES)
    config = load(path, environ=ENV)
    assert config.private_tokens is not None and "PAT" not in repr(config.private_tokens)
    import os

    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        guard = door.from_file(app, path)  # type: ignore[attr-defined]
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    tokens = guard.gate.tokens.tokens
    assert tokens.path == "/pat" and tokens.window == 120.0 and tokens.grease == 0.0
    assert tokens.origin_info == b"site.test,www.site.test"
    assert [r.private_tokens for r in guard.gate.routes] == [True, False]
    with serve(guard) as url:  # type: ignore[operator]
        answer = httpx.get(url + "/pat", verify=TLS)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('PrivateToken challenge="AAI')


def test_private_tokens_need_a_clearance(tmp_path: Path, issuer: Issuer) -> None:
    text = BASE.replace('[clearance]\nsecret = "env:CLEAR"\nsecure = false\n', "") + tokens_block(
        issuer
    )
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text + '[[rules]]\npattern = "/a"\n'), environ=ENV)
    assert [p.key for p in error.value.problems] == ["private_tokens"]
    assert "[clearance]" in error.value.problems[0].message


def test_a_rule_asking_for_tokens_needs_the_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, BASE + RULES), environ=ENV)
    assert [p.key for p in error.value.problems] == ["rules[1].private_tokens"]


def test_a_rule_asking_for_tokens_needs_clearance(tmp_path: Path, issuer: Issuer) -> None:
    rule = '[[rules]]\npattern = "/a"\nprivate_tokens = true\n'
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, BASE + tokens_block(issuer) + rule), environ=ENV)
    (problem,) = error.value.problems
    assert "clearance" in problem.message


def test_bad_keys_and_stray_pins_are_reported(tmp_path: Path, issuer: Issuer) -> None:
    text = BASE + tokens_block(issuer).replace(b64encode(issuer.spki), "bm90IGEga2V5")
    text += '"other.test" = ["x"]\n'
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text + '[[rules]]\npattern = "/a"\n'), environ=ENV)
    keys = sorted(p.key for p in error.value.problems)
    assert keys == ["private_tokens.issuers[1]", "private_tokens.keys.other.test"]


def test_explain_names_the_token_path_and_the_opted_in_rule(tmp_path: Path, issuer: Issuer) -> None:
    from tests.config.test_cli import cli

    path = write(tmp_path, BASE + tokens_block(issuer) + RULES)
    run = cli("explain", path, "POST", "/comments", env=ENV)
    assert run.code == 0 and "clearance: yes, private tokens: yes" in run.out
    run = cli("explain", path, "GET", "/pat", env=ENV)
    assert run.code == 4 and "served as the private-token path" in run.out  # no rule
