"""``captcha-guard check --probe``: prove each configured secret against the vendor's API.

Each remote provider is sent one verification of a deliberately invalid token, shaped so that
our own local check lets it through, and the answer is read with the provider's own fault
table. What the answer proves differs by vendor:

- reCAPTCHA, hCaptcha, Turnstile: a wrong secret is ``invalid-input-secret``, a right one
  refuses the token (``invalid-input-response``...): the probe tells. A test secret that
  passes every token passes the probe too, and says so.
- GeeTest: an unknown, deleted or paused ``captcha_id`` is an error code (-50101..-50105); a
  known one refuses the made-up lot number (-5030x). GeeTest looks up the lot number before it
  checks ``sign_token``, so a wrong ``captcha_key`` cannot be seen without a real solved
  captcha: the probe proves the id only and says so.
- DeepKnow: a JWT signed with a wrong secret is refused (status 21/22); a right one gets
  "session unknown" (41); an unknown scene is 34.
- Alibaba Cloud: a wrong AccessKey ID or secret, or missing permission, is an HTTP error
  (InvalidAccessKeyId, SignatureDoesNotMatch, Forbidden.*); a right pair gets a verdict on the
  parameter (F0xx). An unknown ``scene_id`` shows (F005/F006) only if Alibaba checks SceneId
  before the parameter, which its documentation does not promise: a pass there is not proof.
- Tencent Cloud: a wrong CAM SecretId or SecretKey is an ``AuthFailure.*`` error; then the
  captcha app: CaptchaCode 16 names a wrong ``captcha_app_id``, 100 a wrong ``app_secret_key``
  (two keys users mix up, and both would otherwise refuse every user quietly, as a 403); a
  right pair refuses the made-up ticket (15). Tencent does not document the order of its
  checks: the probe says so when it passes.
- Friendly Captcha: a wrong API key is ``auth_invalid``, a wrong ``sitekey`` ``sitekey_invalid``;
  right ones refuse the token (``response_invalid``).
- Cap: a wrong site key or secret is "Invalid site key or secret"; right ones answer "Token not
  found" for the made-up token.
- Proof of work is local: nothing to probe.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._effects import CallProblem, ProviderCall
from ._fields import FieldError, Fields
from ._sync import SyncHttpxSender, Urllib3Sender
from ._verdict import Fault, Outcome, ProviderFailure, Verdict
from .config import TEST_KEYS, VENDOR_TEST_SECRETS, Config, ProviderSpec, StateSpec
from .providers._base import Claim, ClientRequest

PROBE_TOKEN_PREFIX = "captcha-guard-probe-"


@dataclass(frozen=True)
class Finding:
    """One line of the probe's report. ``level``: ok, error, warning or note."""

    level: str
    subject: str
    message: str
    code: str = ""


def probe(config: Config, *, client: Any = None) -> Iterator[Finding]:
    """Probe every provider and the shared state of ``config`` (``client``: an httpx
    ``Client`` to send through; by default the WSGI door's own urllib3 sender)."""
    sender = Urllib3Sender() if client is None else SyncHttpxSender(client)
    try:
        for spec in config.providers.values():
            yield from probe_provider(spec, sender)
    finally:
        sender.close()
    if config.state is not None:
        yield probe_state(config.state)


def probe_fields(spec: ProviderSpec) -> Fields:
    """What a client would send, well-formed but made up, for ``spec``'s provider."""
    nonce = secrets.token_hex(16)
    values: dict[str, str]
    provider: Any = spec.provider
    if spec.type == "geetest":
        values = {
            "lot_number": nonce,
            "captcha_output": PROBE_TOKEN_PREFIX + nonce,
            "pass_token": secrets.token_hex(32),
            "gen_time": str(int(time.time())),
        }
    elif spec.type == "deepknow":
        values = {spec.options.get("session_field", "session_id"): nonce}
        samples = {
            "user_id": "captcha-guard-probe",
            "user_email": "probe@example.com",
            "phone_num": "10000000000",
            "attr": "{}",
            "flow_id": "1",
        }
        defaults = {"user_id": "user_id"}
        for claim, sample in samples.items():
            source = spec.options.get(claim, defaults.get(claim))
            if isinstance(source, str):
                values[source] = sample
    elif spec.type == "aliyun":
        param = {
            "sceneId": spec.options.get("scene_id") or "captcha-guard-probe",
            "certifyId": PROBE_TOKEN_PREFIX + nonce,
            "deviceToken": "cHJvYmU=",
            "data": "cHJvYmU=",
        }
        values = {provider.field: json.dumps(param, separators=(",", ":"))}
    elif spec.type == "tencent":
        values = {"ticket": PROBE_TOKEN_PREFIX + nonce, "randstr": "@prb"}
    elif spec.type == "cap":
        values = {"cap-token": f"{provider.site_key}:{PROBE_TOKEN_PREFIX}{nonce}:{nonce}"}
    else:  # the siteverify family and Friendly Captcha
        values = {provider.field: PROBE_TOKEN_PREFIX + nonce}
    fields = Fields()
    fields.extend(values.items())
    return fields


#: The client address a probe claims where a vendor requires one (Tencent's UserIp): TEST-NET-1.
PROBE_CLIENT = "192.0.2.1"


def _claim(spec: ProviderSpec) -> Claim:
    client = PROBE_CLIENT if spec.type == "tencent" else None
    request = ClientRequest(method="POST", path="/", client_host=client, headers={}, raw={})
    claim = spec.provider.check(probe_fields(spec), request)
    if not isinstance(claim, Claim):  # pragma: no cover - only local providers answer here
        raise FieldError("no claim")
    return claim


def probe_provider(
    spec: ProviderSpec, sender: Urllib3Sender | SyncHttpxSender
) -> Iterator[Finding]:
    name = f"providers.{spec.name}"
    if not spec.provider.remote:
        yield Finding("note", name, "proof of work is verified locally: nothing to probe")
        return
    secrets_given = [v for v in spec.options.values() if isinstance(v, str)]
    known = [TEST_KEYS[v] for v in secrets_given if v in VENDOR_TEST_SECRETS]
    if known:
        # A test key's answers are the vendor's test behaviour (Turnstile's refuse every token
        # but the dummy one as a bad secret): they prove nothing about a production secret.
        yield Finding("warning", name, f"not probed: uses {known[0]}", "test-key")
        return
    try:
        claim = _claim(spec)
    except FieldError as exc:  # pragma: no cover - our probe fields are well-formed
        yield Finding("error", name, f"cannot build a probe ({exc})")
        return
    request = spec.provider.build_request(claim)
    response = sender.send(ProviderCall(request, spec.provider.timeout, spec.name))
    if isinstance(response, CallProblem):
        parts = urlsplit(request.url)
        where = f"{parts.scheme}://{parts.netloc}"
        yield Finding("warning", name, f"cannot tell: {where} did not answer ({response})", "probe")
        return
    answer = spec.provider.read_response(claim, response)
    yield from _judge(spec, name, answer)


def _judge(spec: ProviderSpec, name: str, answer: Verdict | ProviderFailure) -> Iterator[Finding]:
    if isinstance(answer, ProviderFailure):
        if answer.fault is Fault.OPERATOR:
            yield Finding("error", name, f"refused our credentials: {answer.reason}", "probe")
        else:
            yield Finding(
                "warning", name, f"cannot tell: the vendor failed ({answer.reason})", "probe"
            )
        return
    siteverify = spec.type in ("recaptcha", "hcaptcha", "turnstile")
    # A siteverify refusal carries the vendor's error codes; a verdict without them is the
    # vendor's success refused by one of our own checks (hostname, action, score).
    vendor_passed = siteverify and "error_codes" not in answer.details
    if answer.outcome is Outcome.PASSED or vendor_passed:
        yield Finding(
            "warning",
            name,
            "a made-up token passed: this secret passes everything (a test key)",
            "test-key",
        )
        return
    if spec.type == "tencent":
        yield from _judge_tencent(spec, name, answer)
        return
    noted = answer.note.hint
    hint = noted.text if noted is not None and noted.level >= logging.ERROR else None
    if isinstance(hint, str) and spec.type == "geetest" and "sign_token" in hint:
        # A GeeTest that checks the signature before the lot number has just proven it.
        yield Finding("error", name, f"refused our credentials: {hint}", "probe")
        return
    if isinstance(hint, str):
        yield Finding("warning", name, f"answered as misconfigured: {hint}", "probe")
        return
    if spec.type == "geetest":
        yield Finding("ok", name, "captcha_id is known and active (the made-up lot was refused)")
        yield Finding(
            "note",
            name,
            "captcha_key not proven: GeeTest looks up the lot number before it checks "
            "sign_token, so only a really solved captcha tests the key",
        )
    elif spec.type == "aliyun":
        yield Finding("ok", name, "AccessKey pair accepted, with permission to verify")
        if spec.options.get("scene_id"):
            yield Finding(
                "note",
                name,
                "scene_id not proven: Alibaba does not document checking SceneId before the "
                "parameter it refused",
            )
    elif spec.type == "deepknow":
        yield Finding("ok", name, "secret and scene accepted (the made-up session was refused)")
    elif spec.type == "friendly_captcha":
        accepted = "API key and sitekey" if spec.options.get("sitekey") else "API key"
        yield Finding("ok", name, f"{accepted} accepted (the made-up response was refused)")
    elif spec.type == "cap":
        yield Finding("ok", name, "site key and secret accepted (the made-up token was refused)")
    else:
        yield Finding("ok", name, "secret accepted (the made-up token was refused)")
        if spec.options.get("sitekey"):
            yield Finding("note", name, "sitekey not proven: only a real token carries one")


def _judge_tencent(spec: ProviderSpec, name: str, answer: Verdict) -> Iterator[Finding]:
    """Codes 16 and 100 are a client's 403 in service (a ticket of another app causes them),
    but to a made-up ticket they can only be about our captcha app's two keys."""
    app = spec.options.get("captcha_app_id")
    code = answer.details.get("captcha_code")
    if code == 16:
        yield Finding(
            "error",
            name,
            f"captcha_app_id refused (CaptchaCode 16): {app} is not a CaptchaAppId of this "
            "account (it is the console's CaptchaAppId, not the CAM SecretId)",
            "probe",
        )
    elif code == 100:
        yield Finding(
            "error",
            name,
            f"app_secret_key refused (CaptchaCode 100): it is not the AppSecretKey of "
            f"CaptchaAppId {app} (it is the captcha app's key, not the CAM SecretKey)",
            "probe",
        )
    elif code is None:  # an API error in the client's bin: the parameters were refused
        yield Finding("warning", name, f"cannot tell: {answer.reason}", "probe")
    else:
        yield Finding("ok", name, f"CAM key accepted (the made-up ticket got {answer.reason})")
        yield Finding(
            "note",
            name,
            "captcha_app_id and app_secret_key are proven only if Tencent checks them before "
            "it decrypts the ticket, which its documentation does not promise",
        )


def probe_state(state: StateSpec) -> Finding:
    """Whether the shared Redis keeps every key until it expires (``noeviction``)."""
    try:
        import redis
    except ImportError:
        return Finding(
            "note", "state", "maxmemory-policy not checked: pip install 'captcha-guard[redis]'"
        )
    client = redis.Redis.from_url(state.url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        client.ping()
        try:
            answer: Mapping[Any, Any] = client.config_get("maxmemory-policy")
        except redis.ResponseError:
            return Finding(
                "note",
                "state",
                "maxmemory-policy cannot be read (CONFIG is disabled here): make sure it is "
                "noeviction",
            )
        policy = answer.get("maxmemory-policy")
    except redis.RedisError as exc:
        return Finding(
            "warning", "state", f"cannot reach Redis ({type(exc).__name__}): not checked", "probe"
        )
    finally:
        client.close()
    if policy != "noeviction":
        return Finding(
            "warning",
            "state",
            f"maxmemory-policy is {policy!r}, not 'noeviction': under memory pressure Redis "
            "would evict remembered tokens and let them be replayed",
            "eviction",
        )
    return Finding("ok", "state", "Redis answers and its maxmemory-policy is noeviction")


__all__ = ["Finding", "probe", "probe_fields", "probe_provider", "probe_state"]
