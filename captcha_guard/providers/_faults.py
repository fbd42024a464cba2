"""Every vendor's fault table: which answer is whose fault, in one place to audit.

Theory of operation. A provider's answer is either a judgement on the captcha (passed, or the
user's fault) or a failure to judge (the provider's fault, or ours). Each vendor names its
failures with codes; this module maps every documented code to one of the three bins of
DESIGN.md, with a one-line reason, and gives each vendor an explicit default for codes it
does not list. Providers' ``read_response`` look codes up here and nowhere else.

The rule behind every entry: an attacker controls everything the client sends and nothing
else, so a code that a client's input can cause must be the user's bin (a 403): if it fell
back, that input would be a bypass while the provider is healthy. A code lands in the
provider's or the operator's bin only when no client input can cause it. Where a code is in
the user's bin but may also mean our configuration is wrong (a token from another site key
looks the same as a wrong secret), the entry carries a ``hint`` that is logged at WARNING:
never at ERROR, which a client could then trigger at will.

The defaults differ per vendor, on purpose; ``docs/faults.md`` gives each one's reasoning:

- siteverify (reCAPTCHA, hCaptcha, Turnstile): unknown code → user. Its only client input
  is the token itself, and the vendors keep adding codes about tokens.
- GeeTest, DeepKnow, Alibaba (API errors): unknown code → provider. Their documented
  client-caused codes are all listed and every client field is shape-checked before the
  call; a new code is most likely the vendor's own trouble, and the fallback guard bounds
  what a fallback lets through.
- Alibaba (``VerifyCode`` in a verification result): unknown code → user: the answer is a
  judgement of the captcha, whatever its code.
- Tencent (API ``Error.Code``): unknown code → provider, as Alibaba's; its ``CaptchaCode``:
  unknown code → user, a judgement of the ticket.
- Friendly Captcha and Cap: unknown code → user, as siteverify: the token is the only free
  part of the request, and both vendors' own failures come as HTTP 5xx.
"""

from __future__ import annotations

from ._fault_table import Entry, FaultTable, operator, provider, user

# GeeTest v4 /validate: the codes of ``{"status": "error", "code": ...}`` answers (seed 002).
# A ``{"status": "success", "result": "fail"}`` answer is a judgement: always the user's.

GEETEST = FaultTable(
    "geetest",
    {
        "-50000": provider("GeeTest's runtime error"),
        "-50001": operator("illegal risk_type: a parameter only our request sets"),
        "-50002": user("param decrypt error: the client's encrypted output is bad"),
        "-50003": user("duplicate verification: the client replayed its captcha"),
        "-50004": user("jsonp xss: markup in the client's fields"),
        "-50005": user("illegal gen_time: the client's field (shape-checked, still theirs)"),
        "-50101": operator("captcha_id missing: we send it"),
        "-50102": operator("illegal captcha_id: our configuration"),
        "-50103": operator("captcha_id unknown: our configuration"),
        "-50104": operator("captcha_id deleted: our account"),
        "-50105": operator("captcha_id paused: our account"),
        "-50301": user("not proof: the client's lot_number is unknown or expired"),
        "-50302": user("lot_number missing: the client's field"),
        "-50303": user("illegal lot_number: the client's field"),
        "-50304": user("lot_number not issued for this captcha_id: the client's field"),
        "-50305": user("lot_number expired: the client was too slow or replays"),
        "-50306": user("process_token error: the client's pass_token"),
        "-50307": user("payload error: the client's captcha_output"),
        "-50308": user("payload used: the client replayed its captcha"),
    },
    provider("undocumented: every client field is shape-checked first, so GeeTest's own"),
)

# The siteverify family's ``error-codes`` (reCAPTCHA, hCaptcha and Turnstile documentation).

SITEVERIFY = FaultTable(
    "siteverify",
    {
        "missing-input-secret": operator("we send the secret"),
        "invalid-input-secret": operator("our secret is wrong"),
        "internal-error": provider("the vendor failed (Turnstile documents it: retry)"),
        "missing-input-response": user("the client sent no token"),
        "invalid-input-response": user("the client's token is not one"),
        "bad-request": user("the request's only free part is the client's token"),
        "timeout-or-duplicate": user("the client's token expired or was used"),
        "expired-input-response": user("the client's token expired"),
        "already-seen-response": user("the client's token was used"),
        "invalid-or-already-seen-response": user("the client's token is bad or was used"),
        "missing-remoteip": user("remoteip is the client's address, which it chooses"),
        "invalid-remoteip": user("remoteip is the client's address, which it chooses"),
        "sitekey-secret-mismatch": user(
            "any client can send a token minted under another site key",
            hint="the token's site key is not registered with this secret "
            "(check the secret and sitekey=, or a client sent a token from another site key)",
        ),
        "not-using-dummy-passcode": user(
            "any client can send hCaptcha's public test token",
            hint="a test secret or test site key is mixed with a real one "
            "(or a client sent hCaptcha's public test token)",
        ),
    },
    user("undocumented: the client's token is the request's only free part"),
)

# GeeTest DeepKnow: ``status`` of the /deepknow/v2/verify answer (seed 003); 1 is a judgement.

DEEPKNOW = FaultTable(
    "deepknow",
    {
        "2": provider("server busy"),
        "3": user("missing session_id: the client's field"),
        "4": provider("server error"),
        "5": provider("engine timeout"),
        "21": operator("JWT signature refused: our monitoring secret"),
        "22": operator("JWT decode error: we build the token"),
        "31": user("session_id illegal: the client's field"),
        "32": user("session_id not for this scene: the client's field"),
        "33": provider("engine error"),
        "34": operator("scene not found: scene= is ours"),
        "41": user("session expired or unknown: the client's field"),
        "42": operator("account not found: ours"),
        "43": operator("account disabled: ours"),
        "51": operator("JWT algorithm refused: we sign HS256"),
        "52": provider("rule engine error"),
        "53": operator("illegal JWT payload: we build it from checked claims"),
        "99": provider("unknown error, by the vendor's own word"),
    },
    provider("undocumented: the client's fields are all shape-checked before the call"),
)

# Alibaba Cloud: the ``Code`` of an OpenAPI error answer (4xx/5xx, no ``Result``), by prefix.

ALIYUN = FaultTable(
    "aliyun",
    {
        "InternalError": provider("Alibaba's own failure"),
        "ServiceUnavailable": provider("Alibaba's own failure"),
        "Throttling": provider("rate-limited: our volume, not the client's captcha"),
        "MissingParameter": user(
            "the only parameter we do not control is the client's CaptchaVerifyParam",
            hint="Alibaba Cloud refused the request's parameters: check scene_id",
        ),
        "InvalidParameter": user(
            "the only parameter we do not control is the client's CaptchaVerifyParam",
            hint="Alibaba Cloud refused the request's parameters: check scene_id",
        ),
        "SignatureDoesNotMatch": operator("our AccessKey secret"),
        "IncompleteSignature": operator("our signer"),
        "InvalidAccessKeyId": operator("our AccessKey id"),
        "InvalidSecurityToken": operator("our STS token"),
        "Forbidden": operator("our RAM permissions"),
        "InvalidTimeStamp": operator("our clock"),
        "SignatureNonceUsed": operator("our nonce (fresh per request: our bug)"),
        "InvalidAction": operator("our API action"),
        "InvalidVersion": operator("our API version"),
    },
    provider("undocumented: client complaints come as Parameter codes or F codes"),
    prefixes=True,
)

#: HTTP statuses that make an unlisted Alibaba code ours: an authentication or permission
#: answer is about our key, whatever its code says.
ALIYUN_OPERATOR_STATUSES = frozenset({401, 403})
ALIYUN_AUTH_REFUSED = operator("HTTP 401/403 with an unlisted code: about our key or account")

# Alibaba Cloud: the ``VerifyCode`` of a verification result (``VerifyResult: false``).

ALIYUN_VERIFY = FaultTable(
    "aliyun-verify",
    {
        "F001": user("risk: the captcha failed"),
        "F002": user("parameter empty: the client's"),
        "F003": user("parameter malformed: the client's"),
        "F004": user(
            "test mode: with scene_id unset, the client names the scene",
            hint="Alibaba Cloud CAPTCHA answers F004: test mode is on",
        ),
        "F005": user("scene unknown: the client's scene, unless we pinned scene_id"),
        "F006": user("scene not ours: the client's scene, unless we pinned scene_id"),
        "F007": user("expired: the client was too slow"),
        "F008": user("already verified: a replay"),
        "F009": user("virtual device: the client's"),
        "F010": user("too many requests from the client's IP"),
        "F011": user("too many requests from the client's device"),
        "F012": user("scene mismatch: the client's parameter"),
        "F013": user("parameter incomplete: the client's"),
    },
    user("a verification result judges the captcha, whatever its code (F015..F024 included)"),
)

#: Verify codes that mean our pinned ``scene_id`` is wrong: operator when we pinned it (the
#: client's parameter was checked to name the same scene), user otherwise (see ALIYUN_VERIFY).
ALIYUN_SCENE_CODES = frozenset({"F005", "F006"})

# Tencent Cloud Captcha: the ``Error.Code`` of a ``DescribeCaptchaResult`` API error, by prefix
# (``AuthFailure`` covers ``AuthFailure.SignatureFailure``). Tencent answers HTTP 200 for these.

_TENCENT_PARAMETERS = (
    "the only values we do not control are the client's Ticket and Randstr (shape-checked) "
    "and its address"
)
_TENCENT_PARAMETER_HINT = (
    "Tencent Cloud refused the request's parameters: check captcha_app_id and, if UserIp is "
    "missing, client_ip="
)

TENCENT = FaultTable(
    "tencent",
    {
        "AuthFailure": operator("our CAM SecretId/SecretKey, our signature or our clock"),
        "UnauthorizedOperation": operator("no captcha package, account in arrears, or CAM"),
        "InvalidAction": operator("our API action"),
        "NoSuchVersion": operator("our API version"),
        "NoSuchProduct": operator("our endpoint's product"),
        "UnsupportedRegion": operator("region= names a region without the service"),
        "UnsupportedProtocol": operator("our endpoint's scheme"),
        "UnknownParameter": operator("a parameter only our request sets"),
        "UnsupportedOperation": operator("our API call"),
        "IpInBlacklist": operator("our server's address is refused (the caller is us)"),
        "IpNotInWhitelist": operator("our server's address is not allowed (the caller is us)"),
        "InternalError": provider("Tencent's own failure"),
        "ServiceUnavailable": provider("Tencent's own failure"),
        "ResourceUnavailable": provider("Tencent's own failure"),
        "FailedOperation": provider("Tencent failed the operation"),
        "RequestLimitExceeded": provider("rate-limited: our volume, not the client's ticket"),
        "LimitExceeded": provider("rate-limited: our volume, not the client's ticket"),
        "InvalidParameter": user(_TENCENT_PARAMETERS, hint=_TENCENT_PARAMETER_HINT),
        "MissingParameter": user(_TENCENT_PARAMETERS, hint=_TENCENT_PARAMETER_HINT),
        "RequestSizeLimitExceeded": user("only the client's ticket makes our body large"),
    },
    provider("undocumented: client complaints come as Parameter codes or CaptchaCodes"),
    prefixes=True,
)

# Tencent Cloud Captcha: the ``CaptchaCode`` of a verification (``Response`` without ``Error``).
# 1 passes; every other code judges the ticket (API docs of DescribeCaptchaResult 2019-07-22).

TENCENT_KEY_HINT = (
    "the CaptchaAppId/AppSecretKey pair (the captcha app's, not the CAM SecretId/SecretKey) "
    "does not match the ticket: check captcha_app_id and app_secret_key, or a client sent a "
    "ticket minted for another app"
)

TENCENT_CAPTCHA = FaultTable(
    "tencent-captcha",
    {
        "7": user("captcha no match: the client's Randstr is not its ticket's"),
        "8": user("ticket expired: tickets live 5 minutes"),
        "9": user("ticket reused: the client replayed it"),
        "10": user("ticket format error: the client's ticket"),
        "15": user("decrypt fail: the client's ticket is not one"),
        "16": user(
            "appid-ticket mismatch: any client can send a ticket minted for another app",
            hint=TENCENT_KEY_HINT,
        ),
        "21": user("diff: Tencent's risk control refused it, or a trerror_ disaster ticket"),
        "25": user("bad visitor: Tencent's policy blocked the client"),
        "26": user(
            "system internal error, answered about one ticket: a fallback here could be "
            "provoked by a ticket",
            hint="Tencent Cloud answered CaptchaCode 26 (system internal error)",
        ),
        "31": operator("no valid captcha package, or the account is in arrears"),
        "100": user(
            "appid-secretkey-ticket mismatch: any client can send a ticket of another app",
            hint=TENCENT_KEY_HINT,
        ),
    },
    user("a CaptchaCode other than 1 judges the ticket, whatever its value"),
)

# Friendly Captcha v2: ``error.error_code`` of a ``success: false`` answer (HTTP 200, 400, 401).
# v1's ``errors`` list shares the table: its codes are listed beside v2's.

FRIENDLY = FaultTable(
    "friendly-captcha",
    {
        "response_invalid": user("the client's response is not a valid solution"),
        "response_timeout": user("the client's response expired"),
        "response_duplicate": user("the client's response was used before"),
        "response_missing": user("the client sent no response (refused locally first)"),
        "auth_required": operator("we send the API key"),
        "auth_invalid": operator("our API key is wrong or revoked"),
        "sitekey_invalid": operator("sitekey= is ours: unknown or not this key's"),
        "bad_request": operator("after our local checks only our own request can be malformed"),
        # v1 (api/v1/siteverify ``errors``).
        "solution_invalid": user("v1: the client's solution is not valid"),
        "solution_timeout_or_duplicate": user("v1: the client's solution expired or was used"),
        "solution_missing": user("v1: the client sent no solution (refused locally first)"),
        "secret_missing": operator("v1: we send the secret"),
        "secret_invalid": operator("v1: our API key is wrong"),
    },
    user("undocumented: the client's response is the request's only free part"),
)

# Cap Standalone: the ``error`` text of ``{"success": false, "error": ...}`` (siteverify.js).
# Its HTTP statuses mix the bins (404 is both a wrong secret and an unknown token), so the text
# decides.

CAP = FaultTable(
    "cap",
    {
        "Token not found": user("unknown, forged or already used token (single use)"),
        "Token expired": user("the client's token is past its lifetime"),
        "Invalid site key or secret": operator(
            "our site key or secret: the token's own site key is checked locally first"
        ),
        "Missing required parameters": operator(
            "we send the secret, and the token's three parts are checked locally first"
        ),
        "Internal server error": provider("Cap Standalone failed"),
        "VALIDATION": operator("Cap refused our request's shape"),
        "NOT_FOUND": operator("no siteverify route at endpoint=: our instance URL"),
    },
    user("undocumented: the client's token is the request's only free part"),
)

#: Every table, for audits and tests.
TABLES: tuple[FaultTable, ...] = (
    GEETEST,
    SITEVERIFY,
    DEEPKNOW,
    ALIYUN,
    ALIYUN_VERIFY,
    TENCENT,
    TENCENT_CAPTCHA,
    FRIENDLY,
    CAP,
)

__all__ = [
    "ALIYUN",
    "ALIYUN_AUTH_REFUSED",
    "ALIYUN_OPERATOR_STATUSES",
    "ALIYUN_SCENE_CODES",
    "ALIYUN_VERIFY",
    "CAP",
    "DEEPKNOW",
    "FRIENDLY",
    "GEETEST",
    "SITEVERIFY",
    "TABLES",
    "TENCENT",
    "TENCENT_CAPTCHA",
    "TENCENT_KEY_HINT",
    "Entry",
    "FaultTable",
    "operator",
    "provider",
    "user",
]
