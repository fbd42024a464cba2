"""A GeeTest DeepKnow ``/deepknow/v2/verify`` server that judges like the vendor's.

It decodes the posted JWT with the monitoring secret (PyJWT, HS256 only), checks the claims,
and answers for the sessions it issued with the risk each was issued with. Statuses follow the
grouping in GeeTest's documentation; where GeeTest does not say which case gets which number
inside a group, the emulator picks one (listed in ``STATUS_MESSAGES``).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from ._emulator import Emulator

STATUS_MESSAGES = {
    1: "ok",
    2: "server busy",
    3: "missing parameter: session_id",
    4: "server error",
    5: "engine timeout",
    21: "jwt signature verification failed",
    22: "jwt decode error",
    31: "illegal session_id",
    32: "session_id does not belong to this scene",
    33: "engine error",
    34: "scene not found",
    41: "session expired or not found",
    42: "account not found",
    43: "account disabled",
    51: "jwt algorithm not supported",
    52: "rule engine error",
    53: "illegal jwt payload",
    99: "unknown error",
}


@dataclass
class _Session:
    scene: str
    issued_at: float
    risk_level: int
    risk_code: list[int]
    action: str | None
    private_action: list[str]
    finger_print: str = field(default_factory=lambda: secrets.token_hex(16).upper())


class DeepKnowEmulator(Emulator):
    """Knows the monitoring secret, the scenes configured in the console and the sessions its
    client SDK handed out.

    ``issue(risk_level=7, action="block")`` plays GeeTest's client SDK and returns
    ``{"session_id": ...}``; the verification answers with that risk. An ``action`` is only
    answered when the JWT carries a ``flow_id`` (GeeTest's processing flows). Set
    ``force_status`` to answer any status; ``disabled = True`` makes the account status 43.
    """

    def __init__(
        self,
        secret: str = "emulated-deepknow-monitoring-secret-0000",
        *,
        scenes: Iterable[str] = ("login", "register", "comment"),
        session_lifetime: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.secret = secret
        self.scenes = set(scenes)
        self.session_lifetime = session_lifetime
        self.clock = clock
        self.force_status: int | None = None
        self.disabled = False
        #: The claims of every JWT that decoded, in order (what the site sent GeeTest).
        self.claims: list[dict[str, Any]] = []
        self._sessions: dict[str, _Session] = {}

    def issue(
        self,
        *,
        scene: str = "login",
        risk_level: int = 0,
        risk_code: Iterable[int] = (),
        action: str | None = None,
        private_action: Iterable[str] = (),
        field: str = "session_id",
        session_id: str | None = None,
    ) -> dict[str, str]:
        """The field the client sends with the business request (``session_id`` picks the id,
        say the one in GeeTest's example)."""
        session_id = session_id or secrets.token_hex(16)
        session = _Session(
            scene, self.clock(), risk_level, list(risk_code), action, list(private_action)
        )
        with self._lock:
            self._sessions[session_id] = session
        return {field: session_id}

    def answer(self, request: httpx.Request) -> httpx.Response:
        if self.force_status is not None:
            return _status(self.force_status)
        token = request.content.decode("ascii", "replace").strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            return _status(22)
        if header.get("alg") != "HS256":
            return _status(51)
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.InvalidSignatureError:
            return _status(21)
        except jwt.InvalidTokenError:
            return _status(22)
        if not isinstance(claims, dict):
            return _status(53)
        self.claims.append(claims)
        if self.disabled:
            return _status(43)
        scene, user_id, flow_id = claims.get("scene"), claims.get("user_id"), claims.get("flow_id")
        if not isinstance(scene, str) or not isinstance(user_id, str) or not user_id:
            return _status(53)
        if flow_id is not None and (isinstance(flow_id, bool) or not isinstance(flow_id, int)):
            return _status(53)
        if "attr" in claims and not isinstance(claims["attr"], dict):
            return _status(53)
        if scene not in self.scenes:
            return _status(34)
        session_id = claims.get("session_id")
        if not session_id:
            return _status(3)
        if not isinstance(session_id, str) or not _session_shape(session_id):
            return _status(31)
        session = self._sessions.get(session_id)
        if session is None or self.clock() - session.issued_at > self.session_lifetime:
            return _status(41)
        if session.scene != scene:
            return _status(32)
        answer: dict[str, Any] = {
            "status": 1,
            "message": "ok",
            "risk_code": session.risk_code,
            "risk_level": session.risk_level,
            "challenge": secrets.token_hex(16),
            "finger_print": session.finger_print,
            "info": {"client_type": "web", "ip": "127.0.0.1", "refer": "", "ua": "emulated"},
            "private_action": session.private_action,
        }
        if flow_id is not None and session.action is not None:
            answer["action"] = session.action
        return httpx.Response(200, json=answer)


def _session_shape(session_id: str) -> bool:
    if len(session_id) == 32 and all(c in "0123456789abcdef" for c in session_id):
        return True
    try:
        uuid.UUID(session_id)
    except ValueError:
        return False
    return True


def _status(status: int) -> httpx.Response:
    message = STATUS_MESSAGES.get(status, "error")
    return httpx.Response(200, json={"status": status, "message": message})
