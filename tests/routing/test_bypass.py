"""The bypass catalogue: every client-controllable input that a vendor's sample (which "allows
on any exception") would let through, each refused under every provider state: up, failing,
circuit open. None reaches the app, and none makes a network call: a malformed field must
never become a provider error that falls back."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from captcha_guard.testing import Outage
from tests.hardening_kit import CASES, DOORS, PROTECTED, ProviderCase, Site, guarded_site
from tests.routing.routing_zoo import request as raw_request

THRESHOLD = 3
MAX_BODY = 256 * 1024
STATES = ["up", "failing", "circuit open"]

Fields = dict[str, Any]
#: Builds the keyword arguments of ``httpx.Client.build_request`` from solved fields.
Builder = Callable[[Fields], dict[str, Any]]


@dataclass(frozen=True)
class Attempt:
    name: str
    build: Builder
    status: int = 403


def form(fields: Fields) -> dict[str, Any]:
    return {"content": urlencode(fields).encode(), "headers": {"content-type": FORM}}


def form_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"content": urlencode(pairs).encode(), "headers": {"content-type": FORM}}


def as_json(document: Any) -> dict[str, Any]:
    return {"content": json.dumps(document).encode(), "headers": {"content-type": JSON}}


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def smuggled(
    fields: Fields,
    boundary: str,
    disposition: bytes = b'form-data; name="user_id"',
    kind: str = "multipart/form-data",
) -> dict[str, Any]:
    """The fields in the query string and a multipart body the gate must refuse: with a
    boundary another parser reads as XX, a disposition it splits otherwise, or a list of media
    types (Werkzeug, Litestar, Falcon read a user_id part out of these)."""
    part = b"--XX\r\ncontent-disposition: " + disposition + b"\r\n\r\nvictim\r\n--XX--\r\n"
    body = part
    if boundary != "XX":  # the part is inside another, to the gate
        delimiter = b"--" + boundary.encode()
        head = b'\r\ncontent-disposition: form-data; name="a"\r\n\r\nq\r\n'
        body = b"--XX\r\n" + delimiter + head + part + delimiter + b"--\r\n"
    return {
        "params": fields,
        "content": body,
        "headers": {"content-type": f"{kind}; boundary={boundary}"},
    }


def replaced(name: str, value: Any) -> Callable[[Fields], Fields]:
    return lambda fields: {**fields, name: value}


#: Fields whose vendor documents a bound above 8 KB: the "oversized" value is just over it.
OVERSIZED = {"frc-captcha-response": 16_385}


def field_attempts(name: str) -> list[Attempt]:
    """What a client can do to one field that makes it malformed for any provider. (A value
    of the right shape that is merely false is the provider's to judge, and passes in
    fallback by design: SECURITY.md says so, and test_fallback bounds it.)"""
    without = lambda f: {k: v for k, v in f.items() if k != name}  # noqa: E731
    # Friendly Captcha documents responses up to 16 KB: 8k is a well-formed one there.
    oversized = OVERSIZED.get(name, 8192)
    bad_values = {
        "empty": "",
        "space": " ",
        "padded": lambda v: f" {v} ",
        "trailing-newline": lambda v: v + "\n",
        "nul": lambda v: v + "\x00",
        "control": lambda v: "\x1b[31m" + v,
        "crlf-injection": lambda v: v + "\r\nX-Injected: 1",
        "non-ascii": lambda v: v[:-1] + "é",
        "fullwidth": lambda v: "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in v),
        "oversized-8k": lambda v: (v * (oversized // max(1, len(v)) + 1))[:oversized],
        "oversized-100k": "A" * 100_000,
        "sql": "' OR '1'='1",
    }
    attempts = [Attempt(f"{name}:missing", lambda f: form(without(f)))]
    for label, bad in bad_values.items():

        def build(f: Fields, bad: Any = bad) -> dict[str, Any]:
            value = bad(f[name]) if callable(bad) else bad
            return form({**f, name: value})

        attempts.append(Attempt(f"{name}:{label}", build))
    for label, value in {
        "int": 1700000000,
        "float": 1.5,
        "null": None,
        "true": True,
        "list": ["x"],
        "object": {"value": "x"},
    }.items():
        attempts.append(Attempt(f"{name}:json-{label}", lambda f, v=value: as_json({**f, name: v})))
    attempts += [
        Attempt(f"{name}:json-list-of-the-value", lambda f: as_json({**f, name: [f[name]]})),
        Attempt(
            f"{name}:twice-in-form",
            lambda f: form_pairs([*f.items(), (name, f[name])]),
        ),
        Attempt(
            f"{name}:twice-in-form-other-value",
            lambda f: form_pairs([(name, "0"), *f.items()]),
        ),
        Attempt(
            f"{name}:body-and-query",
            lambda f: {**form(f), "params": {name: f[name]}},
        ),
        Attempt(
            f"{name}:body-and-header",
            lambda f: {
                "content": form(f)["content"],
                "headers": {"content-type": FORM, "x-captcha": urlencode({name: f[name]})},
            },
        ),
        Attempt(
            f"{name}:json-top-and-nested",
            lambda f: as_json({**f, "captcha": {name: f[name]}}),
        ),
        Attempt(
            f"{name}:json-duplicate-key",
            lambda f: {
                "content": (
                    json.dumps(f)[:-1] + f", {json.dumps(name)}: {json.dumps(f[name])}}}"
                ).encode(),
                "headers": {"content-type": JSON},
            },
        ),
        Attempt(f"{name}:wrong-case", lambda f: form({**without(f), name.upper(): f[name]})),
        Attempt(f"{name}:in-a-cookie", lambda f: {**form(without(f)), "cookies": {name: f[name]}}),
        Attempt(
            f"{name}:in-its-own-header",
            lambda f: {
                "content": form(without(f))["content"],
                "headers": {"content-type": FORM, name.replace("_", "-"): f[name]},
            },
        ),
        Attempt(
            f"{name}:in-a-file-part",
            lambda f: {
                "data": without(f),
                "files": {name: ("x.txt", str(f[name]).encode(), "text/plain")},
            },
        ),
    ]
    return attempts


def placement_attempts() -> list[Attempt]:
    """The whole set of fields, somewhere the gate does not look, or in a body it cannot read."""
    return [
        Attempt("nothing", lambda f: {}),
        Attempt("empty-form", lambda f: form({})),
        Attempt("unrelated-fields", lambda f: form({"user": "a", "password": "b"})),
        Attempt("json-nested-elsewhere", lambda f: as_json({"data": f})),
        Attempt("json-nested-deeper", lambda f: as_json({"captcha": {"captcha": f}})),
        Attempt("json-array", lambda f: as_json([f])),
        Attempt("json-string", lambda f: as_json(urlencode(f))),
        Attempt("json-as-text-plain", lambda f: {"content": json.dumps(f), "headers": {}}),
        Attempt(
            "form-as-octet-stream",
            lambda f: {
                "content": urlencode(f).encode(),
                "headers": {"content-type": "application/octet-stream"},
            },
        ),
        Attempt("all-in-cookies", lambda f: {"cookies": f}),
        Attempt(
            "all-in-headers",
            lambda f: {"headers": {k.replace("_", "-"): str(v) for k, v in f.items()}},
        ),
        Attempt(
            "form-labelled-json",
            lambda f: {"content": urlencode(f).encode(), "headers": {"content-type": JSON}},
            400,
        ),
        Attempt(
            "json-truncated",
            lambda f: {"content": json.dumps(f).encode()[:-1], "headers": {"content-type": JSON}},
            400,
        ),
        Attempt(
            # Not UTF-8 in a captcha field: frameworks decode it differently (a junk field of
            # the app's own may be anything: the gate reads the form's other fields).
            "form-not-utf8",
            lambda f: {
                "content": urlencode(f).encode().replace(b"=", b"=\xff\xfe", 1),
                "headers": {"content-type": FORM},
            },
            403,
        ),
        Attempt(
            "multipart-without-boundary",
            lambda f: {
                "content": urlencode(f).encode(),
                "headers": {"content-type": "multipart/form-data"},
            },
            400,
        ),
        Attempt(
            "multipart-unterminated",
            lambda f: {
                "content": b"--b\r\ncontent-disposition: form-data; name=lot_number\r\n\r\nx",
                "headers": {"content-type": "multipart/form-data; boundary=b"},
            },
            400,
        ),
        # The fields in the query string, and a form that some framework cuts differently
        # from the gate: what it reads from the body would be another value than the one the
        # provider judged (tests/fields/test_fields_differential.py has the frameworks' readings).
        Attempt("multipart-boundary-cut-short", lambda f: smuggled(f, "XX:YY"), 400),
        Attempt(
            "multipart-filename-after-tab",
            lambda f: smuggled(f, "XX", b'form-data; name="user_id";\tfilename="f"'),
            400,
        ),
        Attempt(
            "multipart-as-a-media-type-list",
            lambda f: smuggled(f, "XX", kind="text/plain, multipart/form-data"),
            400,
        ),
        # Headers and encodings frameworks read differently (issue 15, section 3): refused before
        # the body is read (ASGI sees the repeat; WSGI servers pick the first content-type, which
        # is JSON here and no JSON body, or join the encodings into a list).
        Attempt(
            "content-type-twice",
            lambda f: {
                "content": urlencode(f).encode(),
                "headers": [("content-type", JSON), ("content-type", FORM)],
            },
            400,
        ),
        Attempt(
            "content-encoding-twice",
            lambda f: {
                "content": urlencode(f).encode(),
                "headers": [
                    ("content-type", FORM),
                    ("content-encoding", "identity"),
                    ("content-encoding", "identity"),
                ],
            },
            400,
        ),
        Attempt(
            "form-gzip-encoded",
            lambda f: {
                "content": gzip.compress(urlencode(f).encode()),
                "headers": {"content-type": FORM, "content-encoding": "gzip"},
            },
            400,
        ),
        Attempt(
            "form-in-utf7",
            lambda f: {
                "content": urlencode(f).encode(),
                "headers": {"content-type": FORM + "; charset=utf-7"},
            },
            400,
        ),
        Attempt(
            "json-in-utf7",
            lambda f: {
                "content": json.dumps(f).encode(),
                "headers": {"content-type": JSON + "; charset=utf-7"},
            },
            400,
        ),
        Attempt(
            "header-flood",
            lambda f: {
                "content": urlencode(f).encode(),
                "headers": [("content-type", FORM), *[(f"x-a{i}", "b") for i in range(120)]],
            },
            431,
        ),
        Attempt(
            "headers-over-64k",
            lambda f: {
                "content": urlencode(f).encode(),
                "headers": [("content-type", FORM), *[(f"x-a{i}", "b" * 1000) for i in range(70)]],
            },
            431,
        ),
        Attempt(
            "body-over-the-limit",
            lambda f: form({**f, "padding": "x" * MAX_BODY}),
            413,
        ),
    ]


def geetest_attempts() -> list[Attempt]:
    """GeeTest's own: gen_time must be digits (else -50005, which the sample lets through)."""
    bad_gen_times = {
        "alpha": "abc",
        "negative": "-1",
        "decimal": "1700000000.5",
        "exponent": "1e9",
        "hex": "0x6553f100",
        "superscript": "¹²³",
        "arabic-indic": "\u0661\u0667" + "\u0660" * 8,
        "too-long": "9" * 14,
        "plus": "+1700000000",
    }
    attempts = [
        Attempt(f"gen_time:{label}", lambda f, v=value: form(replaced("gen_time", v)(f)))
        for label, value in bad_gen_times.items()
    ]
    attempts.append(
        Attempt(
            "lot_number:dashed-uuid",
            lambda f: form(replaced("lot_number", "4dc3cfc2-cdff-448c-ad8d-13107198d473")(f)),
        )
    )
    return attempts


SPECIFIC: dict[str, Callable[[], list[Attempt]]] = {"geetest": geetest_attempts}


#: Attempts that are well-formed for a provider, so not in its catalogue: Alibaba's parameter
#: is JSON, and JSON may be padded with blanks (the genuine parameter, padded, still verifies
#: once, with the provider up; that is no bypass).
WELL_FORMED: dict[str, set[str]] = {"aliyun": {"padded"}}


def catalogue(case: ProviderCase) -> list[Attempt]:
    fields = case.issue(case.emulator())
    exempt = {f"{name}:{label}" for name in fields for label in WELL_FORMED.get(case.name, ())}
    attempts = [a for name in fields for a in field_attempts(name) if a.name not in exempt]
    attempts += placement_attempts()
    attempts += SPECIFIC.get(case.name, list)()
    return attempts


CATALOGUE = [(case, attempt) for case in CASES for attempt in catalogue(case)]


@pytest.fixture(scope="module")
def sites() -> Iterator[Callable[..., Site]]:
    """One site per provider and front door, made when first asked for, kept for the module."""
    made: dict[tuple[str, str], Site] = {}
    with ExitStack() as stack:

        def site_for(case: ProviderCase, door: str, http: str = "auto") -> Site:
            key = (case.name, door, http)
            if key not in made:
                made[key] = stack.enter_context(
                    guarded_site(
                        case,
                        door=door,
                        failure_threshold=THRESHOLD,
                        max_body_size=MAX_BODY,
                        http=http,
                    )
                )
            return made[key]

        yield site_for


def test_the_catalogue_is_large_and_named_uniquely() -> None:
    names = [f"{case}/{attempt.name}" for case, attempt in CATALOGUE]
    assert len(names) == len(set(names))
    assert len(names) >= 40 * len(CASES)


def enter(site: Site, state: str) -> None:
    site.reset()
    if state == "up":
        return
    site.emulator.outage = Outage.HTTP_500
    if state == "circuit open":
        for _ in range(THRESHOLD):
            assert site.post(data=site.issue()).json()["outcome"] == "fallback"
        assert site.breaker.state.value == "open"


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(
    ("case", "attempt"), CATALOGUE, ids=[f"{c}-{a.name}" for c, a in CATALOGUE]
)
def test_refused_in_every_state(
    sites: Callable[[ProviderCase, str], Site],
    case: ProviderCase,
    attempt: Attempt,
    door: str,
    state: str,
) -> None:
    site = sites(case, door)
    enter(site, state)
    request = site.client.build_request(
        "POST", site.url + PROTECTED, **_with_accept(attempt.build(site.issue()))
    )
    app_calls, provider_calls = site.app.calls, site.emulator.calls
    response = site.client.send(request)
    assert response.status_code == attempt.status, response.text
    assert site.app.calls == app_calls
    assert site.emulator.calls == provider_calls  # refused locally, before any network call
    if attempt.status == 403:
        assert response.json()["error"] == "captcha_rejected"


def _with_accept(kwargs: dict[str, Any]) -> dict[str, Any]:
    given = kwargs.pop("headers", {})
    # A list of pairs keeps a repeated header repeated.
    headers = list(given.items()) if isinstance(given, dict) else list(given)
    if not any(name.lower() == "accept" for name, _ in headers):
        headers.append(("accept", "application/json"))
    cookies = kwargs.pop("cookies", None)
    if cookies:
        headers.append(("cookie", "; ".join(f"{k}={quote(str(v))}" for k, v in cookies.items())))
    return {**kwargs, "headers": headers}


# ---------------------------------------------------------------- routing

#: Request lines a real router sends to a protected view (tests/routing/test_routing_differential.py
#: shows which one does what), each sent as raw bytes so no client normalises it: the gate must
#: match them (403, no fields) or refuse them (400 bad_path), never hand them to the app.
ROUTING_ATTEMPTS: list[tuple[str, str, int]] = [
    *[(m, "/login", 403) for m in ("post", "Post", "pOsT", "put", "Delete", "patch")],
    *[
        ("POST", p, 403)
        for p in (
            "/login/",
            "//login",
            "/login//",
            "/login///",  # Litestar strips every trailing slash
            "/l%6Fgin",
            "/%6C%6F%67%69%6E",
            "/login%2F",
        )
    ],
    *[
        ("POST", f"/posts/{seg}/comments", 403)
        for seg in ("%D9%A1", "%EF%BC%91", "+1", "-1", "%201", "1%20", "1_0", "1.0", "007")
    ],
    ("post", "/posts/1/comments/", 403),
    *[
        ("POST", p, 400)
        for p in (
            "/login%0A",
            "/login%0D%0A",
            "/login%0D",
            "/login%00",
            "/login%09",
            "/login%1F",
            "/login%7F",
            "/login%C2%85",
            "/lo%0Agin",
            "/%0Alogin",
            "/login/%0A",
            "/posts/1%0A/comments",
            "/posts/1/comments%0A",
            "/about%0A",  # no rule, but a protected method: refused whole
            # No leading slash: Falcon, Litestar and Flask route `login` to /login.
            "login",
            "login/",
            "posts/1/comments",
            "about",
        )
    ],
    ("post", "/login%0A", 400),
    ("post", "login", 400),
]


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(
    ("method", "target", "status"),
    ROUTING_ATTEMPTS,
    ids=[f"{m} {t}" for m, t, _ in ROUTING_ATTEMPTS],
)
def test_routing_variants_are_matched_or_refused(
    sites: Callable[..., Site],
    method: str,
    target: str,
    status: int,
    door: str,
    state: str,
) -> None:
    # Routing is decided before any provider is consulted: one provider stands for all. h11,
    # because httptools refuses a lower-case method itself (400 before any app sees it).
    site = sites(CASES[0], door, "h11")
    enter(site, state)
    app_calls, provider_calls = site.app.calls, site.emulator.calls
    answer = raw_request(int(site.url.rsplit(":", 1)[1]), method, target)
    assert answer.status == status, answer
    assert answer.error == ("bad_path" if status == 400 else "captcha_rejected")
    assert site.app.calls == app_calls
    assert site.emulator.calls == provider_calls
