"""``captcha-guard explain`` and both doors give one routing decision (issue 14 §2, 15 §6).

One table of method/path cases, control characters and lower-case methods among them, goes
to ``explain`` (as the console script runs it) and to the ASGI and WSGI doors built from the
same file by ``from_file``; each must say the same thing: a rule protects it (the door asks for
a captcha: 403), the door refuses it itself (400 ``bad_path``), the door serves a challenge,
or the app gets it untouched.
"""

from __future__ import annotations

import asyncio
import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from captcha_guard import CaptchaGuard, WSGICaptchaGuard
from captcha_guard._cli import EXIT_NO_MATCH, EXIT_OK, EXIT_REFUSED, explain
from tests.helpers import RecordingApp, body_receive, call, http_scope

CONFIG = """
environment = "test"
[providers.pow]
type = "proof_of_work"
secret = "literal:explain-agrees-secret-0123456789abcdef"
[[rules]]
pattern = "/login"
[[rules]]
pattern = "/posts/{post_id:int}/comments"
methods = ["POST"]
[[rules]]
regex = "/api/v[0-9]+/signup"
[[rules]]
pattern = "/search"
methods = ["GET"]
"""

CASES: list[tuple[str, str]] = [
    ("POST", "/login"),
    ("post", "/login"),
    ("pOsT", "/login/"),
    ("PO\u017fT", "/login"),  # upper-cases to POST, as Django's str.upper() does
    ("GET", "/login"),
    ("get", "/search"),
    ("HEAD", "/search"),  # a rule on GET guards HEAD too
    ("OPTIONS", "/login"),
    ("POST", "/LOGIN"),
    ("POST", "//login"),
    ("POST", "/login.json"),
    ("POST", "/login.json/"),
    ("POST", "/login\n"),
    ("post", "/login\r\n"),
    ("POST", "/lo\x00gin"),
    ("DELETE", "/x\x7f"),
    ("POST", "/login\x85"),
    ("GET", "/login\n"),  # no rule names GET on it: the app's business
    ("GET", "/search\t"),
    ("POST", "login"),
    ("POST", "/login\u2028"),
    ("POST", "/posts/7/comments"),
    ("post", "/posts/+7/comments/"),
    ("PUT", "/posts/7/comments"),
    ("POST", "/posts/x/comments"),
    ("POST", "/api/v2/signup"),
    ("patch", "/API/V2/SIGNUP"),
    ("POST", "/api/v2/signup.json"),
    ("GET", "/captcha-guard/challenge"),
    ("POST", "/captcha-guard/challenge"),
]


def explained(file: Path, method: str, path: str, root_path: str = "") -> str:
    out = io.StringIO()
    code = explain(str(file), method, path, root_path=root_path, out=out)
    if code == EXIT_OK:
        return "captcha"
    if code == EXIT_REFUSED:
        assert "400 bad_path" in out.getvalue()
        return "bad_path"
    assert code == EXIT_NO_MATCH, out.getvalue()
    return "challenge" if "challenge endpoint" in out.getvalue() else "app"


def door_answer(status: int, body: bytes, app_calls: int) -> str:
    if app_calls:
        assert status == 200
        return "app"
    if status == 200:
        assert "challenge" in json.loads(body)
        return "challenge"
    error = json.loads(body)["error"]
    assert (status, error) in {(403, "captcha_rejected"), (400, "bad_path")}, (status, error)
    return "captcha" if status == 403 else "bad_path"


def asgi_says(guard_for: Any, method: str, path: str, root_path: str = "") -> str:
    app = RecordingApp()
    guard = guard_for(app)
    scope = http_scope(root_path + path, method, [(b"accept", b"application/json")], b"")
    scope["root_path"] = root_path
    capture = asyncio.run(call(guard, scope, body_receive(b"")))
    return door_answer(capture.status, capture.body, app.calls)


def wsgi_says(file: Path, method: str, path: str) -> str:
    calls: list[int] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        calls.append(1)
        start_response("200 OK", [])
        return [b""]

    guard = WSGICaptchaGuard.from_file(app, file)
    # PEP 3333: PATH_INFO is the UTF-8 bytes of the path, as latin-1.
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "HTTP_ACCEPT": "application/json",
        "wsgi.input": io.BytesIO(b""),
        "CONTENT_LENGTH": "0",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }
    statuses: list[str] = []
    body = b"".join(guard(environ, lambda status, headers, *_: statuses.append(status)))
    return door_answer(int(statuses[0].split()[0]), body, len(calls))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explain") / "captcha.toml"
    path.write_text(textwrap.dedent(CONFIG).lstrip(), encoding="utf-8")
    return path


@pytest.mark.parametrize(("method", "path"), CASES, ids=[f"{m} {p!r}" for m, p in CASES])
def test_explain_and_both_doors_decide_alike(config_file: Path, method: str, path: str) -> None:
    said = explained(config_file, method, path)
    asgi = asgi_says(lambda app: CaptchaGuard.from_file(app, config_file), method, path)
    wsgi = wsgi_says(config_file, method, path)
    assert (said, asgi, wsgi) == (said, said, said)


def test_the_table_covers_every_answer(config_file: Path) -> None:
    # The table above is worth something only if it reaches each kind of decision.
    said = {explained(config_file, m, p) for m, p in CASES}
    assert said == {"captcha", "bad_path", "app", "challenge"}


ROOT_CASES = [
    ("POST", "/login"),
    ("post", "/login"),
    ("POST", "/login\n"),
    ("POST", "login"),  # /applogin: what follows a root_path without a "/"
    ("POST", "/other"),
    ("GET", "/captcha-guard/challenge"),
]


@pytest.mark.parametrize(("method", "path"), ROOT_CASES, ids=[f"{m} {p!r}" for m, p in ROOT_CASES])
def test_explain_and_the_asgi_door_agree_below_a_root_path(
    config_file: Path, method: str, path: str
) -> None:
    said = explained(config_file, method, "/app" + path, root_path="/app")
    asgi = asgi_says(lambda app: CaptchaGuard.from_file(app, config_file), method, path, "/app")
    assert asgi == said
