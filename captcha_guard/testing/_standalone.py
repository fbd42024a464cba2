"""``captcha-guard emulate VENDOR``: one provider emulator as a process of its own.

A site under development runs several workers (gunicorn, uvicorn ``--workers``), and each must
talk to the same vendor for its replay guards, breakers and budgets to mean anything; an
emulator inside one test process cannot serve them all. This serves one emulator on 127.0.0.1
and prints a JSON line on stdout with what the site needs:

    {"vendor": "geetest", "endpoint": "http://127.0.0.1:PORT/validate",
     "control": "http://127.0.0.1:PORT2", "credentials": {"captcha_id": ..., ...}}

``credentials`` are the provider's keywords (point the provider's ``endpoint=`` at
``endpoint``; for Cap it is the instance's base URL). ``--api-version 1`` serves an older API
where the vendor still has one (Friendly Captcha's v1). The control endpoint plays the widget
and the outages:

    POST {control}/issue      a solved captcha's client fields (JSON; a JSON object body gives
                              the emulator's ``issue()`` keywords: {"scene": "login"}, ...)
    POST {control}/outage     {"mode": "500"} (an ``Outage`` value), {"mode": null} to end it;
                              "delay" sets the seconds of the "slow" mode
    GET  {control}/           the state: vendor, endpoint, outage, calls so far

Both listen on 127.0.0.1 only: this is a development tool, and the control endpoint mints
tokens the emulator accepts. It runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from .._check import seconds_arg
from ._aliyun import AliyunCaptchaEmulator
from ._cap import CapEmulator
from ._deepknow import DeepKnowEmulator
from ._emulator import Emulator, EmulatorServer, Outage
from ._friendly import FriendlyCaptchaEmulator
from ._geetest import GeeTestEmulator
from ._siteverify import HCaptchaEmulator, ReCaptchaEmulator, TurnstileEmulator
from ._tencent import TencentCaptchaEmulator

#: How often the waiting main thread looks for a stop signal, in seconds.
_STOP_POLL = 0.05

_MAX_CONTROL_BODY = 16_384


@dataclass(frozen=True)
class Vendor:
    """How to emulate one vendor: the emulator, its verification path, the site's keywords."""

    make: Callable[[], Emulator]
    path: str
    credentials: Callable[[Any], dict[str, Any]]
    #: Keywords ``POST /issue`` gives the emulator's ``issue()`` unless the body names them.
    issue: Mapping[str, Any] = field(default_factory=dict)


def _siteverify(emulator: Any) -> dict[str, Any]:
    return {"secret": emulator.secret, "sitekey": emulator.sitekey}


def _friendly(emulator: Any) -> dict[str, Any]:
    return {"api_key": emulator.api_key, "sitekey": emulator.sitekey}


VENDORS: dict[str, Vendor] = {
    "geetest": Vendor(
        GeeTestEmulator,
        "/validate",
        lambda e: {"captcha_id": e.captcha_id, "captcha_key": e.captcha_key},
    ),
    "deepknow": Vendor(DeepKnowEmulator, "/deepknow/v2/verify", lambda e: {"secret": e.secret}),
    "aliyun": Vendor(
        AliyunCaptchaEmulator,
        "/",
        lambda e: {
            "access_key_id": e.access_key_id,
            "access_key_secret": e.access_key_secret,
            "scene_id": e.scene_id,
        },
    ),
    "recaptcha": Vendor(ReCaptchaEmulator, "/siteverify", _siteverify),
    "hcaptcha": Vendor(HCaptchaEmulator, "/siteverify", _siteverify),
    "turnstile": Vendor(TurnstileEmulator, "/siteverify", _siteverify),
    "tencent": Vendor(
        TencentCaptchaEmulator,
        "/",
        lambda e: {
            "secret_id": e.secret_id,
            "secret_key": e.secret_key,
            "captcha_app_id": e.captcha_app_id,
            "app_secret_key": e.app_secret_key,
        },
    ),
    "friendly_captcha": Vendor(FriendlyCaptchaEmulator, "/api/v2/captcha/siteverify", _friendly),
    # Cap's provider takes the instance's base URL and adds /<site-key>/siteverify itself.
    "cap": Vendor(CapEmulator, "", lambda e: {"site_key": e.site_key, "secret": e.secret}),
}

#: Older APIs a vendor still serves, by ``(vendor, version)``; ``VENDORS`` holds the current.
OLDER_APIS: dict[tuple[str, int], Vendor] = {
    ("friendly_captcha", 1): Vendor(
        FriendlyCaptchaEmulator,
        "/api/v1/siteverify",
        lambda e: {**_friendly(e), "version": 1},
        {"version": 1},
    ),
}


#: The version ``VENDORS`` serves, for vendors with ``OLDER_APIS`` (so it may be named too).
CURRENT_APIS: dict[str, int] = {"friendly_captcha": 2}


def vendor_spec(vendor: str, version: int | None = None) -> Vendor:
    """How to emulate ``vendor`` at API ``version`` (None: the current one); ``LookupError``
    for a version this emulator does not serve."""
    if version is None or version == CURRENT_APIS.get(vendor):
        return VENDORS[vendor]
    try:
        return OLDER_APIS[(vendor, version)]
    except KeyError:
        served = sorted(v for name, v in OLDER_APIS if name == vendor)
        if vendor in CURRENT_APIS:
            served.append(CURRENT_APIS[vendor])
        offered = ", ".join(map(str, served)) or "the current one only"
        raise LookupError(f"{vendor}: no API version {version} (served: {offered})") from None


class Standalone:
    """One emulator served on 127.0.0.1, with its control server beside it."""

    def __init__(
        self, vendor: str, *, port: int = 0, control_port: int = 0, version: int | None = None
    ) -> None:
        self.vendor = vendor
        spec = vendor_spec(vendor, version)
        self.issue_defaults = dict(spec.issue)
        self.emulator = spec.make()
        self.server = EmulatorServer(self.emulator, port=port)
        self.endpoint = self.server.endpoint(spec.path)
        self.credentials = spec.credentials(self.emulator)
        try:
            self._control = ThreadingHTTPServer(("127.0.0.1", control_port), _control_handler(self))
        except OSError:
            self.server.close()
            raise
        self._control.daemon_threads = True
        self.control = f"http://127.0.0.1:{self._control.server_address[1]}"
        self._thread = threading.Thread(
            target=self._control.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def announcement(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "endpoint": self.endpoint,
            "control": self.control,
            "credentials": self.credentials,
        }

    def state(self) -> dict[str, Any]:
        outage = self.emulator.outage
        return {
            **self.announcement(),
            "outage": None if outage is None else outage.value,
            "delay": self.emulator.delay,
            "calls": self.emulator.calls,
            "modes": [mode.value for mode in Outage],
        }

    def close(self) -> None:
        self._control.shutdown()
        self._control.server_close()
        self._thread.join()
        self.server.close()


def _control_handler(owner: Standalone) -> type[BaseHTTPRequestHandler]:
    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return  # the tokens it mints must not reach a log

        def _answer(self, status: int, document: object) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _document(self) -> dict[str, Any] | None:
            try:
                length = int(self.headers.get("content-length") or 0)
            except ValueError:
                return None
            if not 0 <= length <= _MAX_CONTROL_BODY:
                return None
            raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return {}
            try:
                document = json.loads(raw)
            except ValueError:
                return None
            return document if isinstance(document, dict) else None

        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/":
                self._answer(200, owner.state())
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            document = self._document()
            if document is None:
                self.close_connection = True
                self._answer(400, {"error": "bad_request", "reason": "a JSON object, please"})
            elif path == "/issue":
                self._issue(document)
            elif path == "/outage":
                self._outage(document)
            else:
                self._answer(404, {"error": "not_found"})

        def _issue(self, keywords: dict[str, Any]) -> None:
            try:
                issue = owner.emulator.issue  # type: ignore[attr-defined]
                fields = issue(**{**owner.issue_defaults, **keywords})
            except Exception as exc:  # keywords the emulator refuses, values of the wrong type
                reason = f"{type(exc).__name__}: {exc}"[:200]
                self._answer(400, {"error": "bad_request", "reason": reason})
                return
            self._answer(200, fields)

        def _outage(self, document: dict[str, Any]) -> None:
            mode = document.get("mode")
            delay = document.get("delay", owner.emulator.delay)
            try:
                outage = None if mode is None else Outage(mode)
                seconds_arg(delay, "delay", inclusive=True)
            except ValueError as exc:
                modes = ", ".join(m.value for m in Outage)
                reason = f"{exc} (modes: {modes}, or null)"
                self._answer(400, {"error": "bad_request", "reason": reason[:300]})
                return
            owner.emulator.delay = float(delay)
            owner.emulator.outage = outage
            self._answer(200, owner.state())

    return Control


@contextmanager
def standalone(
    vendor: str, *, port: int = 0, control_port: int = 0, version: int | None = None
) -> Iterator[Standalone]:
    """``Standalone`` for the length of a block (closed on exit)."""
    served = Standalone(vendor, port=port, control_port=control_port, version=version)
    try:
        yield served
    finally:
        served.close()


def emulate(args: argparse.Namespace, *, out: TextIO = sys.stdout) -> int:
    """Run ``captcha-guard emulate`` until SIGINT or SIGTERM; exit code 0, 1 if it cannot
    listen on the ports asked for, 2 for an API version it does not serve."""
    # A plain list, not a threading.Event: the handler runs in the main thread, which may hold
    # the Event's lock inside wait() just then, and set() would wait on that lock for ever.
    stopping: list[int] = []
    version = getattr(args, "api_version", None)
    try:
        served = Standalone(
            args.vendor, port=args.port, control_port=args.control_port, version=version
        )
    except LookupError as exc:
        print(f"emulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot listen: {exc}", file=sys.stderr)
        return 1
    previous = {
        number: signal.signal(number, lambda number, _: stopping.append(number))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        print(json.dumps(served.announcement()), file=out, flush=True)
        credentials = ", ".join(f"{k}={v!r}" for k, v in served.credentials.items())
        print(
            f"{args.vendor} emulator: endpoint={served.endpoint!r}, {credentials}\n"
            f"mint a solved captcha: curl -X POST {served.control}/issue\n"
            f"start an outage:       curl -X POST {served.control}/outage"
            """ -d '{"mode": "500"}'""",
            file=sys.stderr,
            flush=True,
        )
        while not stopping:
            time.sleep(_STOP_POLL)
    finally:
        served.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


__all__ = [
    "CURRENT_APIS",
    "OLDER_APIS",
    "VENDORS",
    "Standalone",
    "Vendor",
    "emulate",
    "standalone",
    "vendor_spec",
]
