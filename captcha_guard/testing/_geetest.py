"""A GeeTest v4 ``/validate`` server that judges like the vendor's."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx

from ._emulator import Emulator

_LOT = re.compile(r"[0-9a-f]{32}")

ERROR_MESSAGES = {
    "-50000": "runtime error",
    "-50001": "illegal risk_type",
    "-50002": "param decrypt error",
    "-50003": "illegal verify",
    "-50004": "jsonp xss",
    "-50005": "illegal gen_time",
    "-50101": "not captcha_id",
    "-50102": "illegal captcha_id",
    "-50103": "not captcha",
    "-50104": "captcha_id deleted",
    "-50105": "captcha_id paused",
    "-50301": "not proof",
    "-50302": "not lot_number",
    "-50303": "illegal lot_number",
    "-50304": "lot_number not match",
    "-50305": "lot_number Expired",
    "-50306": "process_token Error",
    "-50307": "payload Error",
    "-50308": "payload Used",
}


@dataclass
class _Issued:
    captcha_id: str
    captcha_output: str
    pass_token: str
    gen_time: str
    issued_at: float
    used: bool = False


class GeeTestEmulator(Emulator):
    """Knows the captcha ids it serves and the lot numbers it issued.

    ``issue()`` plays the widget: it returns the four client fields of a solved captcha, good
    for one verification within ``lot_lifetime`` seconds. ``force_error = "-50000"`` makes the
    next answers that error; ``paused`` holds captcha ids the console has paused.
    """

    def __init__(
        self,
        captcha_id: str = "647f5ed2ed8acb4be36784e01556bb71",
        captcha_key: str = "b09a7aafbfd83f73b35a9b530d0337bf",
        *,
        lot_lifetime: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.keys: dict[str, str] = {captcha_id: captcha_key}
        self.captcha_id = captcha_id
        self.captcha_key = captcha_key
        self.lot_lifetime = lot_lifetime
        self.clock = clock
        self.paused: set[str] = set()
        self.force_error: str | None = None
        self._issued: dict[str, _Issued] = {}

    def issue(self, captcha_id: str | None = None) -> dict[str, str]:
        """The fields the widget's ``getValidate()`` would hand the browser."""
        lot = secrets.token_hex(16)
        issued = _Issued(
            captcha_id=captcha_id or self.captcha_id,
            captcha_output=secrets.token_urlsafe(96),
            pass_token=secrets.token_hex(32),
            gen_time=str(int(self.clock())),
            issued_at=self.clock(),
        )
        with self._lock:
            self._issued[lot] = issued
        return {
            "lot_number": lot,
            "captcha_output": issued.captcha_output,
            "pass_token": issued.pass_token,
            "gen_time": issued.gen_time,
        }

    def answer(self, request: httpx.Request) -> httpx.Response:
        form: dict[str, str] = dict(parse_qsl(request.content.decode("utf-8", "replace")))
        query = dict(request.url.params)
        captcha_id = query.get("captcha_id") or form.get("captcha_id", "")
        if self.force_error:
            return _error(self.force_error)
        if not captcha_id:
            return _error("-50101")
        if not re.fullmatch(r"[0-9a-f]{32}", captcha_id):
            return _error("-50102")
        key = self.keys.get(captcha_id)
        if key is None:
            return _error("-50103")
        if captcha_id in self.paused:
            return _error("-50105")
        gen_time = form.get("gen_time", "")
        if not gen_time.isdigit():
            return _error("-50005")
        lot = form.get("lot_number", "")
        if not lot:
            return _error("-50302")
        if not _LOT.fullmatch(lot):
            return _error("-50303")
        issued = self._issued.get(lot)
        if issued is None:
            return _error("-50301")
        if issued.captcha_id != captcha_id:
            return _error("-50304")
        if self.clock() - issued.issued_at > self.lot_lifetime:
            return _error("-50305")
        expected = hmac.new(key.encode(), lot.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(form.get("sign_token", ""), expected):
            return _result("fail", "illegal sign_token", lot)
        if issued.used:
            return _result("fail", "pass_token expire", lot)
        if form.get("pass_token") != issued.pass_token:
            return _result("fail", "pass_token error", lot)
        output_ok = form.get("captcha_output") == issued.captcha_output
        if not output_ok or form.get("gen_time") != issued.gen_time:
            return _result("fail", "captcha_output error", lot)
        issued.used = True
        return _result("success", "", lot)


def _result(result: str, reason: str, lot: str) -> httpx.Response:
    args: dict[str, Any] = {
        "used_type": "slide",
        "user_ip": "127.0.0.1",
        "lot_number": lot,
        "scene": "emulated",
        "referer": "http://127.0.0.1/",
    }
    return httpx.Response(
        200, json={"status": "success", "result": result, "reason": reason, "captcha_args": args}
    )


def _error(code: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "status": "error",
            "code": code,
            "msg": ERROR_MESSAGES.get(code, "error"),
            "desc": {"type": "defined error"},
        },
    )
