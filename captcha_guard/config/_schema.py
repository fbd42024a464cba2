"""The schema of a configuration file: each table's keys and the check of each value, and
``PROVIDER_TYPES``, one block per provider type (its class, its keys, which are required, which
are passed positionally). Every key is named as the constructor argument or door option it
becomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..providers import (
    AliyunCaptcha,
    DeepKnow,
    GeeTest,
    HCaptcha,
    ProofOfWork,
    Provider,
    ReCaptcha,
    Turnstile,
)
from ..providers._pow_pressure import Pressure
from ..providers._pow_v2 import ALGORITHMS as POW_V2_ALGORITHMS
from ..providers.cap import Cap
from ..providers.friendly import FriendlyCaptcha
from ..providers.tencent import TencentCaptcha
from ._locate import Key
from ._values import (
    Check,
    Context,
    Invalid,
    _boolean,
    _credential,
    _endpoint,
    _field_or_int,
    _field_or_table,
    _integer,
    _nonempty,
    _number,
    _one_of,
    _secret,
    _secrets,
    _string_array,
    _strings,
    _table,
    _type_name,
)

ENVIRONMENTS = ("production", "staging", "development", "test")

#: Vendors' public test keys and the sample keys their docs print (anyone may use them, so a
#: production site configured with one is not protected): value -> what it is.
TEST_KEYS: dict[str, str] = {
    "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe": "reCAPTCHA's test secret (passes every token)",
    "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI": "reCAPTCHA's test site key",
    "0x0000000000000000000000000000000000000000": "hCaptcha's test secret",
    "10000000-ffff-ffff-ffff-000000000001": "hCaptcha's test site key",
    "1x0000000000000000000000000000000AA": "Turnstile's always-pass test secret",
    "2x0000000000000000000000000000000AA": "Turnstile's always-fail test secret",
    "3x0000000000000000000000000000000AA": "Turnstile's already-spent test secret",
    "647f5ed2ed8acb4be36784e01556bb71": "the captcha_id of GeeTest's documentation samples",
    "b09a7aafbfd83f73b35a9b530d0337bf": "the captcha_key of GeeTest's documentation samples",
    "your-256-bit-secret": "the secret of GeeTest DeepKnow's documentation example",
    "YourAccessKeyId": "the AccessKey ID of Alibaba Cloud's signature example",
    "YourAccessKeySecret": "the AccessKey secret of Alibaba Cloud's signature example",
    # captcha_guard.testing's emulators' defaults.
    "6Lemulated-recaptcha-secret-000000000000": "captcha_guard.testing's reCAPTCHA secret",
    "0xEmulatedHCaptchaSecret000000000000000000": "captcha_guard.testing's hCaptcha secret",
    "0x4AAAAAAAEmulatedTurnstileSecret000": "captcha_guard.testing's Turnstile secret",
    "LTAI5tEmulatedAccessKeyId": "captcha_guard.testing's Alibaba Cloud AccessKey ID",
    "EmulatedAccessKeySecret0123456789": "captcha_guard.testing's Alibaba Cloud secret",
    "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE": "the SecretKey of Tencent Cloud's signature example",
    "AKIDEmulatedTencentSecretId000000000": "captcha_guard.testing's Tencent SecretId",
    "EmulatedTencentSecretKey00000000": "captcha_guard.testing's Tencent SecretKey",
    "EmulatedAppSecretKey00000": "captcha_guard.testing's Tencent AppSecretKey",
    "A1EMULATEDFRIENDLYCAPTCHAAPIKEY0": "captcha_guard.testing's Friendly Captcha API key",
    "emulated-cap-secret-0000000000000000": "captcha_guard.testing's Cap secret",
}

#: The vendors' test secrets proper: the vendor answers them with test behaviour (always pass,
#: always fail, only the dummy token), so probing one proves nothing.
VENDOR_TEST_SECRETS = frozenset(
    {
        "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe",
        "0x0000000000000000000000000000000000000000",
        "1x0000000000000000000000000000000AA",
        "2x0000000000000000000000000000000AA",
        "3x0000000000000000000000000000000AA",
    }
)

_BREAKER: dict[str, Check] = {
    "failure_threshold": _integer(1),
    "reset_timeout": _number(0),
}
_REMOTE: dict[str, Check] = {
    "endpoint": _endpoint,
    "timeout": _number(0, strict=True),
}
_SITEVERIFY: dict[str, Check] = {
    **_REMOTE,
    "secret": _secret,
    "hostnames": _strings,
    "field": _nonempty,
}


@dataclass(frozen=True)
class ProviderType:
    cls: type[Provider]
    schema: Mapping[str, Check]
    required: tuple[str, ...]
    #: The argument passed positionally (the constructors' first parameters).
    positional: tuple[str, ...]


PROVIDER_TYPES: dict[str, ProviderType] = {
    "geetest": ProviderType(
        GeeTest,
        {
            **_REMOTE,
            "captcha_id": _credential,
            "captcha_key": _secret,
            "region": _one_of("cn", "global", "eu", "na"),
        },
        ("captcha_id", "captcha_key"),
        ("captcha_id", "captcha_key"),
    ),
    "deepknow": ProviderType(
        DeepKnow,
        {
            **_REMOTE,
            "secret": _secret,
            "scene": _nonempty,
            "session_field": _nonempty,
            "user_id": _nonempty,
            "user_email": _nonempty,
            "phone_num": _nonempty,
            "attr": _field_or_table,
            "flow_id": _field_or_int,
            "max_risk_level": _integer(0),
            "blocking_actions": _strings,
        },
        ("secret", "scene"),
        ("secret",),
    ),
    "aliyun": ProviderType(
        AliyunCaptcha,
        {
            **_REMOTE,
            "access_key_id": _credential,
            "access_key_secret": _secret,
            "scene_id": _nonempty,
            "region": _one_of("cn", "sgp"),
            "field": _nonempty,
            "prefix": _nonempty,  # the page widget's identity prefix (captcha_guard.widgets)
        },
        ("access_key_id", "access_key_secret"),
        ("access_key_id", "access_key_secret"),
    ),
    "recaptcha": ProviderType(
        ReCaptcha,
        {
            **_SITEVERIFY,
            "min_score": _number(0, maximum=1),
            "action": _strings,
            "sitekey": _credential,  # the page widget's (captcha_guard.widgets)
        },
        ("secret",),
        ("secret",),
    ),
    "hcaptcha": ProviderType(
        HCaptcha,
        {**_SITEVERIFY, "sitekey": _credential, "max_score": _number(0, maximum=1)},
        ("secret",),
        ("secret",),
    ),
    "turnstile": ProviderType(
        Turnstile,
        {**_SITEVERIFY, "action": _strings, "sitekey": _credential},  # sitekey: the widget's
        ("secret",),
        ("secret",),
    ),
    "proof_of_work": ProviderType(
        ProofOfWork,
        {
            "secret": _secret,
            "max_number": _integer(1),
            "expires": _number(1),
            "challenge_path": _nonempty,
            "field": _nonempty,
        },
        ("secret",),
        ("secret",),
    ),
    # Tencent Cloud Captcha, Friendly Captcha, Cap (issue 17). CaptchaAppId may be written as
    # an integer or come from the environment as digits; the constructors check the rest.
    "tencent": ProviderType(
        TencentCaptcha,
        {
            **_REMOTE,
            "secret_id": _credential,
            "secret_key": _secret,
            "captcha_app_id": lambda ctx, path, value: (
                value
                if isinstance(value, int) and not isinstance(value, bool)
                else _credential(ctx, path, value)
            ),
            "app_secret_key": _secret,
            "region": _nonempty,
            "refuse_evil": _boolean,
        },
        ("secret_id", "secret_key", "captcha_app_id", "app_secret_key"),
        ("secret_id", "secret_key"),
    ),
    "friendly_captcha": ProviderType(
        FriendlyCaptcha,
        {**_REMOTE, "api_key": _secret, "sitekey": _credential, "version": _integer(1)},
        ("api_key",),
        ("api_key",),
    ),
    "cap": ProviderType(
        Cap,
        {**_REMOTE, "site_key": _credential, "secret": _secret},
        ("site_key", "secret", "endpoint"),
        ("site_key", "secret"),
    ),
}


# ProofOfWork's protocol version, the v2 key derivation (issue 17 §4) and the pressure table
# (issue 18 §2), in one block.
def _one_of_ints(*choices: int) -> Check:
    def check(ctx: Context, path: Key, value: Any) -> int:
        if isinstance(value, bool) or value not in choices:
            raise Invalid(path, f"must be one of {', '.join(map(str, choices))}")
        return int(value)

    return check


def _int_array(ctx: Context, path: Key, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid(path, "must be a non-empty array of integers")
    return tuple(_integer(1)(ctx, (*path, index), item) for index, item in enumerate(value))


def _levels_table(ctx: Context, path: Key, value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise Invalid(path, f"must be a table, not {_type_name(value)}")
    return {name: _integer(1)(ctx, (*path, name), extra) for name, extra in value.items()}


_PRESSURE: dict[str, Check] = {
    "fleet": _int_array,
    "network": lambda ctx, path, value: None if value is False else _int_array(ctx, path, value),
    "window": _number(0, strict=True),
    "hold": _number(0, strict=True),
    "ipv4_prefix": _integer(0),
    "ipv6_prefix": _integer(0),
    "signals": _levels_table,
}


def _pow_pressure(ctx: Context, path: Key, value: Any) -> Pressure | bool:
    """``pressure = false``, or a table of ``Pressure``'s fields (the rest keep defaults)."""
    if isinstance(value, bool):
        return value
    options = _table(ctx, path, value, _PRESSURE)
    try:
        policy = Pressure(**options)
        # The provider checks the tables against its own levels; here, their own sense.
        policy.check(max(len(policy.fleet), len(policy.network or ())))
    except (TypeError, ValueError) as exc:
        raise Invalid(path, str(exc).removeprefix("Pressure: ")) from None
    return policy


PROVIDER_TYPES["proof_of_work"] = ProviderType(
    ProofOfWork,
    {
        **PROVIDER_TYPES["proof_of_work"].schema,
        "version": _one_of_ints(1, 2),
        "algorithm": _one_of(*POW_V2_ALGORITHMS),
        "cost": _integer(1),
        "memory_cost": _integer(1),
        "parallelism": _integer(1),
        "issue_budget": _number(0, strict=True, maximum=1),
        "pressure": _pow_pressure,
    },
    ("secret",),
    ("secret",),
)


_LIMITS: dict[str, Check] = {
    "max_body_size": _integer(0),
    "body_timeout": _number(0, strict=True),
    "fallback_limit": _integer(1),
}
#: Parse limits (``[limits.parse]``): key -> what it bounds. Passed as one mapping,
#: ``parse_limits={...}``, under these names.
PARSE_LIMITS: dict[str, str] = {
    "max_fields": "fields per source (form, query, X-Captcha) and non-file multipart parts",
    "max_files": "file parts in a multipart body",
    "max_json_depth": "nesting of a JSON body",
    "max_json_items": "values of a JSON body (its , [ and { counted)",
    "max_header_fields": "header lines of a protected request (431 above)",
    "max_header_bytes": "bytes of a protected request's header names and values (431 above)",
}
_STATE: dict[str, Check] = {
    "url": _credential,  # may carry a password: env:/file: welcome, a plain URL allowed
    "prefix": _nonempty,
    "timeout": _number(0, strict=True),
    # What shared state may answer (docs/shared-state.md): "refuse" unless the site opts in.
    "in_outage": _one_of("refuse", "per_process"),
    "clock_skew": _number(0),
    "max_entries": _integer(1),
}
# secure: true behind a TLS proxy the server is not told about; false for plain-HTTP loopback
# development only (docs/clearance.md). Unset: decided from the request's scheme.
_CLEARANCE: dict[str, Check] = {"secret": _secrets, "ttl": _number(1), "secure": _boolean}
_CLIENT_IP: dict[str, Check] = {"trusted_hops": _integer(0)}
_METRICS: dict[str, Check] = {"prometheus": _boolean}
_RULE: dict[str, Check] = {
    "pattern": _nonempty,
    "regex": _nonempty,
    "methods": _string_array,
    "provider": _nonempty,
    "fail_open": _boolean,
    "clearance": _boolean,
    "private_tokens": _boolean,
}
_TOP: dict[str, Check] = {
    "environment": _one_of(*ENVIRONMENTS),
    "provider": _nonempty,
}
_TABLES = (
    "limits",
    "client_ip",
    "state",
    "clearance",
    "private_tokens",
    "metrics",
    "providers",
    "rules",
)


__all__ = [
    "ENVIRONMENTS",
    "PARSE_LIMITS",
    "PROVIDER_TYPES",
    "TEST_KEYS",
    "VENDOR_TEST_SECRETS",
    "ProviderType",
]
