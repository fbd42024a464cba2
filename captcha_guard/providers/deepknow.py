"""GeeTest DeepKnow (深知) risk verification: ``/deepknow/v2/verify``.

The browser or app gets a ``session_id`` from GeeTest's client SDK and sends it with the
business request. We post GeeTest a compact HS256 JWT of that session id, the site's own
``user_id`` and ``scene`` (and the optional claims), signed with the console's monitoring
secret, and judge the risk level and action it answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeAlias

from .._breaker import CircuitBreaker
from .._clearance_token import b64
from .._fields import FieldError, Fields
from .._verdict import Fault, Hint, Note, ProviderFailure, Verdict
from ._base import (
    DEFAULT_TIMEOUT,
    Claim,
    ClientRequest,
    Provider,
    ProviderRequest,
    ProviderResponse,
    matching,
    short_text,
)
from ._faults import DEEPKNOW

ENDPOINT = "https://dkapi.geetest.com/deepknow/v2/verify"

#: A claim's value: the name of a request field, or a callable given the request's ASGI scope
#: (the WSGI environ under WSGI) that returns the value (None: the request has none).
ClaimSource: TypeAlias = str | Callable[[Any], Any]
# How a claim is found: ("field", name), ("call", function) or ("fixed", checked text).
_Source: TypeAlias = tuple[str, Any]

# Session ids in GeeTest's samples are 32 hex digits or a UUID; the bound is generous.
SESSION_ID = re.compile(r"[0-9A-Za-z_\-]{1,128}")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,256}")
_EMAIL = re.compile(r"[\x21-\x7e]{1,254}")
_PHONE = re.compile(r"[0-9A-Za-z+\-]{1,64}")  # a number, or its lowercase MD5 as GeeTest allows
_FLOW_ID = re.compile(r"[0-9]{1,18}")
_MAX_ATTR = 4096  # bytes of JSON
# GeeTest's own examples nest attr one level; the bound keeps every walk of it shallow.
_MAX_ATTR_DEPTH = 16

# The bins of DeepKnow's statuses are in the one fault table (providers/_faults.py).
USER_STATUSES = frozenset(int(code) for code in DEEPKNOW.codes(Fault.USER))
OPERATOR_STATUSES = frozenset(int(code) for code in DEEPKNOW.codes(Fault.OPERATOR))

# The claims in the order of GeeTest's own example, so the seed's token is reproduced exactly.
_ORDER = ("session_id", "user_id", "user_email", "phone_num", "flow_id", "scene", "attr")


# The header as PyJWT writes it (sorted keys, no spaces): the seed's token is PyJWT's.
_HEADER = b64(b'{"alg":"HS256","typ":"JWT"}')


def encode_jwt(claims: Mapping[str, Any], secret: str) -> str:
    """A compact HS256 JWT of ``claims`` (in their order), as PyJWT's ``jwt.encode`` makes it."""
    # allow_nan=False: NaN is not JSON, and a vendor that refuses it would blame our JWT.
    # Written here, not with PyJWT: HS256 is one HMAC, and PyJWT would cost every site 65 ms
    # of import for one vendor. The DeepKnow emulator checks these tokens with PyJWT.
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    signed = f"{_HEADER}.{b64(payload.encode())}"
    signature = hmac.new(secret.encode(), signed.encode("ascii"), hashlib.sha256).digest()
    return f"{signed}.{b64(signature)}"


class DeepKnow(Provider):
    """GeeTest DeepKnow.

    ``user_id`` (and ``user_email``, ``phone_num``) is a field name or a callable given the
    ASGI scope (WSGI environ). ``attr`` may also be a fixed mapping, ``flow_id`` a fixed int.
    A request passes when GeeTest answers status 1 with ``risk_level <= max_risk_level`` and
    an ``action`` that is not in ``blocking_actions``.
    """

    name: ClassVar[str] = "deepknow"

    def __init__(
        self,
        secret: str,
        *,
        scene: str,
        endpoint: str = ENDPOINT,
        session_field: str = "session_id",
        user_id: ClaimSource = "user_id",
        user_email: ClaimSource | None = None,
        phone_num: ClaimSource | None = None,
        attr: ClaimSource | Mapping[str, Any] | None = None,
        flow_id: ClaimSource | int | None = None,
        max_risk_level: int = 3,
        blocking_actions: Iterable[str] = ("block",),
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not isinstance(secret, str) or not secret:
            raise ValueError("DeepKnow: secret must be the console's monitoring secret")
        if not isinstance(scene, str) or not _TEXT.fullmatch(scene):
            raise ValueError("DeepKnow: scene must be the scene keyword, e.g. 'login'")
        if not isinstance(session_field, str) or not session_field:
            raise ValueError("DeepKnow: session_field must be a field name")
        if isinstance(max_risk_level, bool) or not isinstance(max_risk_level, int):
            raise ValueError("DeepKnow: max_risk_level must be an int (0, 3, 7 or 9)")
        if isinstance(blocking_actions, str):
            blocking_actions = [blocking_actions]
        blocking = frozenset(blocking_actions)
        if any(not isinstance(a, str) for a in blocking):
            raise ValueError("DeepKnow: blocking_actions must be strings")
        super().__init__(endpoint=endpoint, timeout=timeout, breaker=breaker)
        self._secret = secret
        self.scene = scene
        self.session_field = session_field
        self.max_risk_level = max_risk_level
        self.blocking_actions = blocking
        self._sources: dict[str, _Source] = {"user_id": _source("user_id", user_id, required=True)}
        for claim, value in (("user_email", user_email), ("phone_num", phone_num)):
            if value is not None:
                self._sources[claim] = _source(claim, value)
        if attr is not None:
            self._sources["attr"] = (
                _fixed_attr(attr) if isinstance(attr, Mapping) else _source("attr", attr)
            )
        if flow_id is not None:
            if isinstance(flow_id, int) and not isinstance(flow_id, bool):
                self._sources["flow_id"] = _fixed_flow_id(flow_id)
            else:
                self._sources["flow_id"] = _source("flow_id", flow_id)

    def check(self, fields: Fields, request: ClientRequest) -> Claim | Verdict:
        session_id = matching(SESSION_ID, self.session_field, fields.one(self.session_field))
        values = {"session_id": session_id, "scene": self.scene}
        for claim, source in self._sources.items():
            try:
                value = _resolve(source, fields, request)
            except FieldError:
                raise
            except Exception as exc:
                # The site's callable failed. Said at WARNING: a callable often fails for one
                # kind of request only (no session), which any client can send at will.
                hint = f"the {claim} callable raised {type(exc).__name__}"
                return self.rejected(f"deepknow: no {claim}", note=Note(Hint.suspect(hint)))
            if value is None:
                if claim == "user_id":
                    raise FieldError("missing user_id")
                continue
            values[claim] = _shape(claim, value)
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return Claim(values, replay_key=f"deepknow:{digest}", request=request)

    def claims(self, claim: Claim) -> dict[str, Any]:
        """The JWT's claims for ``claim``, typed and in GeeTest's order."""
        typed: dict[str, Any] = {}
        for name in _ORDER:
            value = claim.values.get(name)
            if value is None:
                continue
            if name == "flow_id":
                typed[name] = int(value)
            elif name == "attr":
                typed[name] = json.loads(value)
            else:
                typed[name] = value
        return typed

    def build_request(self, claim: Claim) -> ProviderRequest:
        # GeeTest's demo posts the bare token with no content type; so do we.
        token = encode_jwt(self.claims(claim), self._secret)
        return ProviderRequest("POST", self.endpoint, (), token.encode("ascii"))

    def read_document(
        self, claim: Claim, body: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        status = _status(body.get("status"))
        message = short_text(body.get("message"))
        if status == 1:
            return self._judge(body)
        reason = f"deepknow status {status if status is not None else '?'}: {message}"
        code = str(status) if status is not None else None
        return DEEPKNOW.sort(code, provider=self.name, reason=reason, details={"status": status})

    def _judge(self, body: Mapping[str, Any]) -> Verdict | ProviderFailure:
        level = body.get("risk_level")
        if isinstance(level, bool) or not isinstance(level, int):
            return ProviderFailure("deepknow answer without a risk_level")
        codes = body.get("risk_code")
        action = body.get("action")
        details: dict[str, Any] = {
            "risk_level": level,
            "risk_code": [c for c in codes[:32] if isinstance(c, int | str)]
            if isinstance(codes, list)
            else [],
            "finger_print": short_text(body.get("finger_print"), 128) or None,
            "action": short_text(action, 128) if isinstance(action, str) and action else None,
        }
        if level > self.max_risk_level:
            return self.rejected(
                f"deepknow: risk level {level} above {self.max_risk_level}", details
            )
        if details["action"] is not None and details["action"] in self.blocking_actions:
            return self.rejected(f"deepknow: action {details['action']}", details)
        return self.passed("ok", details)


# Where a claim's value comes from.


def _source(claim: str, value: object, *, required: bool = False) -> _Source:
    if isinstance(value, str) and value:
        return ("field", value)
    if callable(value):
        return ("call", value)
    what = "a field name or a callable" + ("" if required else ", or None")
    raise ValueError(f"DeepKnow: {claim} must be {what}")


def _fixed_attr(value: Mapping[str, Any]) -> _Source:
    return ("fixed", _attr_text(value, error=ValueError))


def _fixed_flow_id(value: int) -> _Source:
    if value < 0:
        raise ValueError("DeepKnow: flow_id must be >= 0")
    return ("fixed", str(value))


def _resolve(source: _Source, fields: Fields, request: ClientRequest) -> object:
    kind, value = source
    if kind == "field":
        # A claim is acted on by the app too (who logs in): the gate must read the value the
        # app will, or refuse.
        return fields.claim(value)
    if kind == "call":
        return value(request.raw)
    return value  # fixed, already checked


def _shape(claim: str, value: object) -> str:
    """The claim's value as checked text (attr as JSON, flow_id as digits); FieldError if bad."""
    if claim == "attr":
        if isinstance(value, str):
            if len(value) > _MAX_ATTR:
                raise FieldError(f"attr is over {_MAX_ATTR} bytes of JSON")
            try:
                value = json.loads(value, parse_constant=_no_constant)
            except RecursionError:
                raise FieldError("attr is nested too deep") from None
            except ValueError:
                raise FieldError("attr is not a JSON object") from None
        if not isinstance(value, Mapping):
            raise FieldError("attr is not a JSON object")
        return _attr_text(value, error=FieldError)
    if claim == "flow_id":
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise FieldError("malformed flow_id")
        return matching(_FLOW_ID, claim, value)
    if isinstance(value, int) and not isinstance(value, bool) and claim == "user_id":
        value = str(value)
    if not isinstance(value, str):
        raise FieldError(f"{claim} is not a string")
    pattern = {"user_email": _EMAIL, "phone_num": _PHONE}.get(claim, _TEXT)
    checked = matching(pattern, claim, value)
    if not _is_unicode(checked):
        raise FieldError(f"malformed {claim}")  # a lone surrogate: not encodable, not JSON
    return checked


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth_over(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _attr_text(value: Mapping[str, Any], *, error: type[ValueError]) -> str:
    """attr as the compact JSON that goes into the JWT: strict JSON only (no NaN or Infinity,
    no lone surrogates), at most _MAX_ATTR bytes and _MAX_ATTR_DEPTH levels."""
    if _depth_over(value, _MAX_ATTR_DEPTH):
        raise error(f"attr is nested deeper than {_MAX_ATTR_DEPTH}")
    try:
        text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise error("attr must be strict JSON (no NaN or Infinity)") from None
    if not _is_unicode(text):
        raise error("attr has a lone surrogate, which is not JSON text")
    text = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=True)
    if len(text) > _MAX_ATTR:
        raise error(f"attr is over {_MAX_ATTR} bytes of JSON")
    return text


def _status(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 6:
        return int(value)
    return None


__all__ = ["ENDPOINT", "ClaimSource", "DeepKnow", "encode_jwt"]
