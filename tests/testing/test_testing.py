"""The emulators themselves: they must judge like the vendor and fail like a network."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any

import httpx
import pytest

from captcha_guard.testing import GeeTestEmulator, Outage
from captcha_guard.testing._geetest import ERROR_MESSAGES
from tests import TLS
from tests.helpers import FakeClock

KEY = "b09a7aafbfd83f73b35a9b530d0337bf"


def _sign(key: str, lot: str) -> str:
    # Independent of captcha_guard: the vendor's rule, written out again.
    return hmac.new(key.encode(), lot.encode(), hashlib.sha256).hexdigest()


def _form(emulator: GeeTestEmulator, fields: dict[str, str], **overrides: str) -> dict[str, str]:
    form = dict(fields)
    form["sign_token"] = _sign(emulator.captcha_key, fields["lot_number"])
    form.update(overrides)
    return form


def _verify(
    client: httpx.Client,
    url: str,
    form: dict[str, str],
    captcha_id: str | None,
) -> dict[str, Any]:
    params = {"captcha_id": captcha_id} if captcha_id is not None else {}
    response = client.post(url, params=params, data=form)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture
def emulator() -> GeeTestEmulator:
    return GeeTestEmulator()


@pytest.fixture
def served(emulator: GeeTestEmulator):  # type: ignore[no-untyped-def]
    with emulator.serve() as server, httpx.Client(timeout=5, verify=TLS) as client:
        yield client, server.endpoint("/validate")


def test_the_sign_token_vector_from_providers_md() -> None:
    lot = "4dc3cfc2cdff448cad8d13107198d473"
    assert _sign(KEY, lot) == "c99f3aa68104bdcd085f372dc6556a17a5a830a1a3d25125fb0010466977f3d8"
    assert GeeTestEmulator().captcha_key == KEY


def test_issue_plays_the_widget(emulator: GeeTestEmulator) -> None:
    fields = emulator.issue()
    assert set(fields) == {"lot_number", "captcha_output", "pass_token", "gen_time"}
    assert re.fullmatch(r"[0-9a-f]{32}", fields["lot_number"])
    assert fields["gen_time"].isdigit()
    assert abs(int(fields["gen_time"]) - time.time()) < 5
    assert emulator.issue()["lot_number"] != fields["lot_number"]


def test_a_genuine_solution_passes_once(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    fields = emulator.issue()
    first = _verify(client, url, _form(emulator, fields), emulator.captcha_id)
    assert first["status"] == "success"
    assert first["result"] == "success"
    assert first["captcha_args"]["lot_number"] == fields["lot_number"]
    again = _verify(client, url, _form(emulator, fields), emulator.captcha_id)
    assert (again["result"], again["reason"]) == ("fail", "pass_token expire")
    assert emulator.calls == 2


def test_the_request_the_emulator_saw_is_recorded(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    fields = emulator.issue()
    _verify(client, url, _form(emulator, fields), emulator.captcha_id)
    (request,) = emulator.requests
    assert request.method == "POST"
    assert request.url.params["captcha_id"] == emulator.captcha_id
    assert b"pass_token=" in request.content


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"sign_token": "0" * 64}, "illegal sign_token"),
        ({"sign_token": ""}, "illegal sign_token"),
        ({"pass_token": "f" * 64}, "pass_token error"),
        ({"captcha_output": "forged"}, "captcha_output error"),
        ({"gen_time": "1234567890"}, "captcha_output error"),
    ],
)
def test_forgeries_fail(
    emulator: GeeTestEmulator, served: Any, override: dict[str, str], reason: str
) -> None:
    client, url = served
    fields = emulator.issue()
    answer = _verify(client, url, _form(emulator, fields, **override), emulator.captcha_id)
    assert (answer["status"], answer["result"], answer["reason"]) == ("success", "fail", reason)
    # a failed attempt does not use the lot up
    good = _verify(client, url, _form(emulator, fields), emulator.captcha_id)
    assert good["result"] == "success"


def test_sign_token_is_checked_with_the_key_of_the_captcha_id(
    emulator: GeeTestEmulator, served: Any
) -> None:
    client, url = served
    fields = emulator.issue()
    form = _form(emulator, fields, sign_token=_sign("another-key", fields["lot_number"]))
    assert _verify(client, url, form, emulator.captcha_id)["reason"] == "illegal sign_token"


def _error_of(answer: dict[str, Any]) -> str:
    assert answer["status"] == "error", answer
    assert answer["msg"] == ERROR_MESSAGES[answer["code"]]
    return str(answer["code"])


def test_request_data_errors(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    fields = emulator.issue()
    cid = emulator.captcha_id
    assert _error_of(_verify(client, url, _form(emulator, fields, gen_time="abc"), cid)) == (
        "-50005"
    )
    assert _error_of(_verify(client, url, _form(emulator, fields, lot_number=""), cid)) == "-50302"
    bad_lot = _form(emulator, fields, lot_number="XYZ")
    assert _error_of(_verify(client, url, bad_lot, cid)) == "-50303"
    unknown = _form(emulator, {**fields, "lot_number": "ab" * 16})
    assert _error_of(_verify(client, url, unknown, cid)) == "-50301"


def test_captcha_id_errors(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    form = _form(emulator, emulator.issue())
    assert _error_of(_verify(client, url, form, None)) == "-50101"
    assert _error_of(_verify(client, url, form, "not-hex!")) == "-50102"
    assert _error_of(_verify(client, url, form, "0" * 32)) == "-50103"
    emulator.paused.add(emulator.captcha_id)
    assert _error_of(_verify(client, url, form, emulator.captcha_id)) == "-50105"


def test_a_lot_belongs_to_its_captcha_id(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    other_id, other_key = "1" * 32, "other-key"
    emulator.keys[other_id] = other_key
    fields = emulator.issue(captcha_id=other_id)
    form = dict(fields, sign_token=_sign(emulator.captcha_key, fields["lot_number"]))
    assert _error_of(_verify(client, url, form, emulator.captcha_id)) == "-50304"
    form["sign_token"] = _sign(other_key, fields["lot_number"])
    assert _verify(client, url, form, other_id)["result"] == "success"


def test_a_lot_expires() -> None:
    clock = FakeClock(start=1_700_000_000.0)
    emulator = GeeTestEmulator(lot_lifetime=600, clock=clock)
    with emulator.serve() as server, httpx.Client(verify=TLS) as client:
        url = server.endpoint("/validate")
        early, late = emulator.issue(), emulator.issue()
        clock.advance(600)
        assert _verify(client, url, _form(emulator, early), emulator.captcha_id)["result"] == (
            "success"
        )
        clock.advance(0.5)
        answer = _verify(client, url, _form(emulator, late), emulator.captcha_id)
        assert _error_of(answer) == "-50305"


@pytest.mark.parametrize("code", sorted(ERROR_MESSAGES))
def test_force_error_answers_any_code(emulator: GeeTestEmulator, served: Any, code: str) -> None:
    client, url = served
    emulator.force_error = code
    answer = _verify(client, url, _form(emulator, emulator.issue()), emulator.captcha_id)
    assert _error_of(answer) == code
    emulator.force_error = None
    answer = _verify(client, url, _form(emulator, emulator.issue()), emulator.captcha_id)
    assert answer["result"] == "success"


# ---------------------------------------------------------------- outages, served for real


def _post(client: httpx.Client, url: str, emulator: GeeTestEmulator) -> httpx.Response:
    return client.post(
        url, params={"captcha_id": emulator.captcha_id}, data=_form(emulator, emulator.issue())
    )


@pytest.mark.parametrize(("outage", "status"), [(Outage.HTTP_500, 500), (Outage.HTTP_429, 429)])
def test_status_outages(
    emulator: GeeTestEmulator, served: Any, outage: Outage, status: int
) -> None:
    client, url = served
    emulator.outage = outage
    assert _post(client, url, emulator).status_code == status
    emulator.outage = None
    assert _post(client, url, emulator).json()["result"] == "success"


def test_garbage_and_html_outages_are_200_without_json(
    emulator: GeeTestEmulator, served: Any
) -> None:
    client, url = served
    emulator.outage = "garbage"  # the str form is accepted too
    garbage = _post(client, url, emulator)
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        garbage.json()
    emulator.outage = Outage.HTML
    page = _post(client, url, emulator)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<html>")


def test_hang_never_answers(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    emulator.outage = Outage.HANG
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post(url, data={}, timeout=0.2)
    assert time.monotonic() - started < 2
    assert emulator.calls == 1


def test_slow_answers_after_the_delay(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    emulator.outage = Outage.SLOW
    emulator.delay = 0.3
    started = time.monotonic()
    answer = _post(client, url, emulator)
    elapsed = time.monotonic() - started
    assert answer.json()["result"] == "success"
    assert 0.3 <= elapsed < 2
    with pytest.raises(httpx.ReadTimeout):
        client.post(url, data={}, timeout=0.1)


def test_reset_breaks_the_answer(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    emulator.outage = Outage.RESET
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        _post(client, url, emulator)


def test_refuse_stops_listening_then_listens_again_on_the_same_port(
    emulator: GeeTestEmulator,
) -> None:
    with emulator.serve() as server:
        url = server.endpoint("/validate")
        emulator.outage = Outage.REFUSE
        assert not server.listening
        with httpx.Client(verify=TLS) as client, pytest.raises(httpx.ConnectError):
            _post(client, url, emulator)
        assert emulator.calls == 0
        emulator.outage = None
        assert server.listening
        with httpx.Client(verify=TLS) as client:
            assert _post(client, url, emulator).json()["result"] == "success"


def test_refuse_also_ends_pooled_connections(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    assert _post(client, url, emulator).status_code == 200  # a keep-alive connection now
    emulator.outage = Outage.REFUSE
    with pytest.raises(httpx.ConnectError):
        _post(client, url, emulator)
    assert emulator.calls == 1


def test_refuse_set_before_serving() -> None:
    emulator = GeeTestEmulator()
    emulator.outage = Outage.REFUSE
    with emulator.serve() as server, httpx.Client(verify=TLS) as client:
        assert not server.listening
        with pytest.raises(httpx.ConnectError):
            _post(client, server.endpoint("/validate"), emulator)


def test_a_pooled_client_reuses_one_connection(emulator: GeeTestEmulator, served: Any) -> None:
    client, url = served
    for _ in range(5):
        assert _post(client, url, emulator).json()["result"] == "success"
    server = emulator._servers[0]
    assert server.connections == 1


def test_a_closed_server_refuses(emulator: GeeTestEmulator) -> None:
    with emulator.serve() as server:
        url = server.endpoint("/validate")
    with httpx.Client(verify=TLS) as client, pytest.raises(httpx.ConnectError):
        _post(client, url, emulator)


def test_closing_releases_a_hanging_handler(emulator: GeeTestEmulator) -> None:
    emulator.outage = Outage.HANG
    with emulator.serve() as server, httpx.Client(verify=TLS) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(server.endpoint("/validate"), data={}, timeout=0.1)
        started = time.monotonic()
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- in-process transport


def test_transport_judges_like_the_server(emulator: GeeTestEmulator) -> None:
    with httpx.Client(transport=emulator.transport()) as client:
        url = "http://geetest.test/validate"
        fields = emulator.issue()
        assert _verify(client, url, _form(emulator, fields), emulator.captcha_id)["result"] == (
            "success"
        )
        again = _verify(client, url, _form(emulator, fields), emulator.captcha_id)
        assert again["reason"] == "pass_token expire"


@pytest.mark.parametrize(
    ("outage", "error"),
    [
        (Outage.HANG, httpx.ReadTimeout),
        (Outage.RESET, httpx.ReadError),
        (Outage.REFUSE, httpx.ConnectError),
    ],
)
def test_transport_outages_raise_what_httpx_would(
    emulator: GeeTestEmulator, outage: Outage, error: type[Exception]
) -> None:
    emulator.outage = outage
    with httpx.Client(transport=emulator.transport()) as client, pytest.raises(error):
        _post(client, "http://geetest.test/validate", emulator)


def test_transport_slow_with_a_delay_is_a_timeout(emulator: GeeTestEmulator) -> None:
    emulator.outage = Outage.SLOW
    emulator.delay = 1.0
    with httpx.Client(transport=emulator.transport()) as client, pytest.raises(httpx.ReadTimeout):
        _post(client, "http://geetest.test/validate", emulator)


@pytest.mark.parametrize(
    ("outage", "status"),
    [(Outage.HTTP_500, 500), (Outage.HTTP_429, 429), (Outage.GARBAGE, 200), (Outage.HTML, 200)],
)
def test_transport_answering_outages(
    emulator: GeeTestEmulator, outage: Outage, status: int
) -> None:
    emulator.outage = outage
    with httpx.Client(transport=emulator.transport()) as client:
        response = _post(client, "http://geetest.test/validate", emulator)
    assert response.status_code == status
    with pytest.raises(ValueError):
        response.json()


@pytest.mark.asyncio
async def test_transport_serves_async_clients(emulator: GeeTestEmulator) -> None:
    async with httpx.AsyncClient(transport=emulator.transport()) as client:
        fields = emulator.issue()
        response = await client.post(
            "http://geetest.test/validate",
            params={"captcha_id": emulator.captcha_id},
            data=_form(emulator, fields),
        )
    assert response.json()["result"] == "success"
