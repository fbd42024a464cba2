from __future__ import annotations

import re

import pytest
from starlette.convertors import Convertor, register_url_convertor

from captcha_guard import CaptchaGuard, GeeTest, Rule
from captcha_guard.rules import (
    DEFAULT_METHODS,
    compile_pattern,
    first_match,
    normalize_path,
    route_path,
)
from tests.helpers import RecordingApp

# ---------------------------------------------------------------- converters


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("/u/{name}", ["/u/bob", "/u/b.o-b_1", "/u/%20"], ["/u/", "/u/a/b"]),
        ("/u/{name:str}", ["/u/bob"], ["/u/", "/u/a/b"]),
        ("/n/{n:int}", ["/n/0", "/n/42", "/n/007"], ["/n/", "/n/-1", "/n/1.5", "/n/x", "/n/4 2"]),
        ("/f/{x:float}", ["/f/1", "/f/1.5", "/f/10.25"], ["/f/.5", "/f/1.", "/f/-1.0", "/f/1e3"]),
        (
            "/id/{u:uuid}",
            [
                "/id/0b7a1c2e-3f4d-4a5b-8c6d-7e8f9a0b1c2d",
                "/id/0B7A1C2E3F4D4A5B8C6D7E8F9A0B1C2D",
            ],
            ["/id/0b7a1c2e-3f4d-4a5b-8c6d", "/id/zb7a1c2e-3f4d-4a5b-8c6d-7e8f9a0b1c2d"],
        ),
        ("/files/{rest:path}", ["/files/", "/files/a", "/files/a/b/c.txt"], ["/file", "/filesx"]),
    ],
)
def test_converters(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    rule = Rule(pattern)
    for path in matching:
        assert rule.matches("POST", path), path
    for path in not_matching:
        assert not rule.matches("POST", path), path


def test_converters_match_what_starlette_routes() -> None:
    from starlette.routing import compile_path

    for name in ("str", "int", "float", "uuid", "path"):
        ours = compile_pattern(f"/x/{{v:{name}}}")
        theirs, _, _ = compile_path(f"/x/{{v:{name}}}")
        for sample in ("/x/12", "/x/1.5", "/x/a/b", "/x/0b7a1c2e3f4d4a5b8c6d7e8f9a0b1c2d", "/x/"):
            assert (ours.match(sample) is not None) == (theirs.match(sample) is not None), (
                name,
                sample,
            )


def test_a_convertor_registered_with_starlette_is_known() -> None:
    class Slug(Convertor[str]):
        regex = "[a-z]+(?:-[a-z]+)*"

        def convert(self, value: str) -> str:
            return value

        def to_string(self, value: str) -> str:
            return value

    register_url_convertor("cg-test-slug", Slug())
    rule = Rule("/blog/{s:cg-test-slug}")
    assert rule.matches("POST", "/blog/hello-world")
    assert not rule.matches("POST", "/blog/Hello")


# ---------------------------------------------------------------- matching


def test_pattern_is_anchored_at_both_ends() -> None:
    rule = Rule("/login")
    assert rule.matches("POST", "/login")
    for path in ("/login2", "/x/login", "/loginx", "/log", "login", "/login/x", "/api/login"):
        assert not rule.matches("POST", path), path


def test_literal_characters_are_not_regex() -> None:
    rule = Rule("/a.b/c+d/(e)")
    assert rule.matches("POST", "/a.b/c+d/(e)")
    assert not rule.matches("POST", "/aXb/c+d/(e)")
    assert not rule.matches("POST", "/a.b/ccd/e")


def test_trailing_slash_is_optional_either_way() -> None:
    plain, slashed = Rule("/login"), Rule("/login/")
    for rule in (plain, slashed):
        assert rule.matches("POST", "/login")
        assert rule.matches("POST", "/login/")
        assert not rule.matches("POST", "/login/x")
    with_param = Rule("/posts/{id:int}/comments")
    assert with_param.matches("POST", "/posts/1/comments/")


def test_root_pattern_matches_only_root() -> None:
    rule = Rule("/")
    assert rule.matches("POST", "/")
    assert rule.matches("POST", "//")
    assert not rule.matches("POST", "/x")


def test_repeated_slashes_are_collapsed() -> None:
    rule = Rule("/api/login")
    for path in ("//api/login", "/api//login", "/api/login//", "///api///login"):
        assert rule.matches("POST", path), path
    assert normalize_path("//a///b") == "/a/b"
    assert normalize_path("") == "/"
    assert normalize_path("/a/b") == "/a/b"


def test_matching_is_case_sensitive_like_starlette() -> None:
    assert not Rule("/login").matches("POST", "/LOGIN")


def test_root_path_is_stripped_before_matching() -> None:
    assert route_path("/app/login", "/app") == "/login"
    assert route_path("/app", "/app") == "/"
    assert route_path("/app/", "/app") == "/"
    assert route_path("/application/login", "/app") == "/application/login"
    assert route_path("/login", "/app") == "/login"
    assert route_path("/login", "") == "/login"


def test_compiled_regex_is_the_escape_hatch() -> None:
    rule = Rule(re.compile(r"/(?:login|signin)"))
    assert rule.matches("POST", "/login")
    assert rule.matches("POST", "/signin")
    # fullmatch: a regex written without anchors is still anchored at both ends
    assert not rule.matches("POST", "/login/extra")
    assert not rule.matches("POST", "/x/login")
    # and it is taken as written: no slash folding, no optional trailing slash
    assert not rule.matches("POST", "/login/")
    assert rule.pattern.pattern == r"/(?:login|signin)"  # type: ignore[union-attr]


def test_first_match_wins() -> None:
    specific = Rule("/api/signup", provider="turnstile")
    general = Rule("/api/{name}")
    rules = [specific, general]
    assert first_match(rules, "POST", "/api/signup") is specific
    assert first_match(rules, "POST", "/api/login") is general
    assert first_match(rules, "POST", "/other") is None
    assert first_match(list(reversed(rules)), "POST", "/api/signup") is general


def test_default_methods_let_get_and_head_pass() -> None:
    rule = Rule("/login")
    assert rule.methods == DEFAULT_METHODS == {"POST", "PUT", "PATCH", "DELETE"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert rule.matches(method, "/login")
    for method in ("GET", "HEAD", "OPTIONS"):
        assert not rule.matches(method, "/login")


def test_methods_are_uppercased_and_only_those_match() -> None:
    rule = Rule("/search", methods=["get", "Post"])
    assert {"GET", "POST"} <= rule.methods
    assert rule.matches("GET", "/search")
    assert not rule.matches("PUT", "/search")


def test_a_rule_on_get_also_covers_head() -> None:
    # Starlette answers HEAD with the GET endpoint: a gate on GET alone would leave a side door.
    rule = Rule("/export", methods=["GET"])
    assert rule.matches("HEAD", "/export")


# ---------------------------------------------------------------- bad rules fail at start-up


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("login", "must start with '/'"),
        ("", "must start with '/'"),
        ("/u/{id:integer}", "unknown converter 'integer'"),
        ("/u/{id:}", "unknown converter ''"),
        ("/u/{1id}", "bad parameter name '1id'"),
        ("/u/{}", "bad parameter name ''"),
        ("/u/{a-b}", "bad parameter name 'a-b'"),
        ("/u/{id}/{id:int}", "duplicated parameter 'id'"),
        ("/u/{id", "unbalanced braces"),
        ("/u/id}", "unbalanced braces"),
        ("/u/{{id}}", "unbalanced braces"),
        ("/u/{id}}", "unbalanced braces"),
    ],
)
def test_bad_patterns_raise(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Rule(pattern)


def test_pattern_of_wrong_type_raises() -> None:
    with pytest.raises(TypeError):
        Rule(b"/login")  # type: ignore[arg-type]


@pytest.mark.parametrize("methods", [["PO ST"], ["GET\r\n"], [""], [None], [1], ["G/T"]])
def test_bad_methods_raise(methods: list[object]) -> None:
    with pytest.raises(ValueError, match="bad HTTP method"):
        Rule("/login", methods=methods)  # type: ignore[arg-type]


def test_methods_given_as_a_string_raise() -> None:
    with pytest.raises(TypeError, match="not a string"):
        Rule("/login", methods="POST")


def test_no_methods_raises() -> None:
    with pytest.raises(ValueError, match="at least one method"):
        Rule("/login", methods=[])


def test_bad_provider_and_fail_open_types_raise() -> None:
    with pytest.raises(TypeError):
        Rule("/login", provider=GeeTest)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Rule("/login", fail_open="no")  # type: ignore[arg-type]


def _geetest() -> GeeTest:
    return GeeTest("647f5ed2ed8acb4be36784e01556bb71", "k", endpoint="http://127.0.0.1:9/v")


def test_unknown_provider_name_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown provider 'turnstile'"):
        CaptchaGuard(
            RecordingApp(),
            rules=[Rule("/signup", provider="turnstile")],
            provider=_geetest(),
            providers={"geetest2": _geetest()},
        )


def test_default_provider_missing_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="provider= is not set"):
        CaptchaGuard(RecordingApp(), rules=[Rule("/login")])


def test_named_provider_is_bound() -> None:
    named = _geetest()
    guard = CaptchaGuard(
        RecordingApp(),
        rules=[Rule("/signup", provider="other", fail_open=False), Rule("/login")],
        provider=_geetest(),
        providers={"other": named},
    )
    route = guard.gate.match("POST", "/signup")
    assert route is not None
    assert route.provider is named
    assert route.provider_name == "other"
    assert route.fail_open is False
    login = guard.gate.match("POST", "/login")
    assert login is not None and login.fail_open is True and login.provider_name == "geetest"
    assert guard.gate.match("GET", "/login") is None


def test_rules_compare_by_pattern_and_settings() -> None:
    assert Rule("/a") == Rule("/a")
    assert Rule("/a") != Rule("/a", methods=["POST"])
    assert "regex" not in repr(Rule("/a"))


def test_compiled_regex_also_sees_the_slash_merged_path() -> None:
    rule = Rule(re.compile(r"/login"))
    assert rule.matches("POST", "//login")
    assert rule.matches("POST", "/login")
    assert not rule.matches("POST", "/login/extra")
