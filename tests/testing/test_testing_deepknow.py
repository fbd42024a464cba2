"""The DeepKnow emulator judges the JWT like GeeTest: signature, algorithm, claims, sessions."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from captcha_guard.testing import DeepKnowEmulator
from tests import TLS

URL = "https://dkapi.test/deepknow/v2/verify"
SECRET = "a-monitoring-secret-of-forty-bytes-00000"


def verify(emulator: DeepKnowEmulator, body: str) -> dict[str, Any]:
    with httpx.Client(transport=emulator.transport()) as client:
        answer = client.post(URL, content=body.encode())
    assert answer.status_code == 200
    document = answer.json()
    assert isinstance(document, dict)
    return document


def token(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_a_session_it_issued_answers_with_its_risk() -> None:
    emulator = DeepKnowEmulator(SECRET)
    session = emulator.issue(risk_level=7, risk_code=[4006], private_action=["debug_warn"])
    claims = {**session, "user_id": "u1", "scene": "login"}
    answer = verify(emulator, token(claims))
    assert answer["status"] == 1
    assert (answer["risk_level"], answer["risk_code"]) == (7, [4006])
    assert answer["private_action"] == ["debug_warn"]
    assert "action" not in answer
    assert emulator.claims == [claims]


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda s: "", 22),
        (lambda s: "not.a.jwt", 22),
        (lambda s: token({**s, "user_id": "u", "scene": "login"}, "another-secret-" * 3), 21),
        (lambda s: token({**s, "user_id": "u", "scene": "login"}, SECRET * 2, "HS512"), 51),
        (lambda s: token({**s, "scene": "login"}), 53),
        (lambda s: token({**s, "user_id": "u"}), 53),
        (lambda s: token({**s, "user_id": "u", "scene": "login", "flow_id": "1"}), 53),
        (lambda s: token({**s, "user_id": "u", "scene": "login", "attr": "x"}), 53),
        (lambda s: token({**s, "user_id": "u", "scene": "checkout"}), 34),
        (lambda s: token({"user_id": "u", "scene": "login"}), 3),
        (lambda s: token({"session_id": "nope", "user_id": "u", "scene": "login"}), 31),
        (
            lambda s: token(
                {
                    "session_id": "6d0372e5-6ef8-4180-913d-109ebd06f828",
                    "user_id": "u",
                    "scene": "login",
                }
            ),
            41,
        ),
        (lambda s: token({**s, "user_id": "u", "scene": "comment"}), 32),
    ],
)
def test_refusals(make: Any, status: int) -> None:
    emulator = DeepKnowEmulator(SECRET)
    session = emulator.issue()
    answer = verify(emulator, make(session))
    assert answer["status"] == status
    assert isinstance(answer["message"], str) and answer["message"]


def test_a_uuid_session_id_is_accepted_and_flow_ids_bring_the_action() -> None:
    emulator = DeepKnowEmulator(SECRET)
    session = emulator.issue(session_id="6d0372e5-6ef8-4180-913d-109ebd06f828", action="block")
    answer = verify(emulator, token({**session, "user_id": "u", "scene": "login", "flow_id": 3}))
    assert (answer["status"], answer["action"]) == (1, "block")


def test_sessions_expire_by_the_injected_clock() -> None:
    now = [100.0]
    emulator = DeepKnowEmulator(SECRET, session_lifetime=60, clock=lambda: now[0])
    session = emulator.issue()
    claims = {**session, "user_id": "u", "scene": "login"}
    assert verify(emulator, token(claims))["status"] == 1
    now[0] += 61
    assert verify(emulator, token(claims))["status"] == 41


def test_forced_statuses_and_a_disabled_account() -> None:
    emulator = DeepKnowEmulator(SECRET)
    claims = {**emulator.issue(), "user_id": "u", "scene": "login"}
    emulator.disabled = True
    assert verify(emulator, token(claims))["status"] == 43
    emulator.force_status = 99
    assert verify(emulator, token(claims)) == {"status": 99, "message": "unknown error"}


def test_served_for_real() -> None:
    emulator = DeepKnowEmulator(SECRET)
    claims = {**emulator.issue(), "user_id": "u", "scene": "register"}
    with emulator.serve() as server:
        answer = httpx.post(
            server.endpoint("/deepknow/v2/verify"), content=token(claims), verify=TLS
        )
    assert answer.json()["status"] == 32  # issued for "login"
