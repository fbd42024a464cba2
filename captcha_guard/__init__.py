"""captcha_guard: a server-side captcha gate for ASGI and WSGI apps."""

from ._breaker import CircuitBreaker
from ._clearance import Clearance
from ._client_ip import TrustedProxies
from ._fallback import FallbackLimit
from ._fields import ParseLimits
from ._memory import MemoryState
from ._privacy_pass import PrivateTokens, TokenIssuer
from ._responses import Denial
from ._rules import Rule
from ._verdict import Outcome, Verdict
from ._version import __version__
from .asgi import CaptchaGuard
from .config import ConfigError
from .providers import (
    AliyunCaptcha,
    Cap,
    DeepKnow,
    FriendlyCaptcha,
    GeeTest,
    HCaptcha,
    ProofOfWork,
    Provider,
    ReCaptcha,
    TencentCaptcha,
    Turnstile,
)
from .providers._pow_pressure import Pressure
from .wsgi import WSGICaptchaGuard

__all__ = [
    "AliyunCaptcha",
    "Cap",
    "CaptchaGuard",
    "CircuitBreaker",
    "Clearance",
    "ConfigError",
    "DeepKnow",
    "Denial",
    "FallbackLimit",
    "FriendlyCaptcha",
    "GeeTest",
    "HCaptcha",
    "MemoryState",
    "Outcome",
    "ParseLimits",
    "Pressure",
    "PrivateTokens",
    "ProofOfWork",
    "Provider",
    "ReCaptcha",
    "Rule",
    "TencentCaptcha",
    "TokenIssuer",
    "TrustedProxies",
    "Turnstile",
    "Verdict",
    "WSGICaptchaGuard",
    "__version__",
]

# The public names say where users import them from (repr, docs, tracebacks), as httpx does:
# ``captcha_guard.Verdict``, not ``captcha_guard._verdict.Verdict``.
for _name in __all__:
    if not _name.startswith("__"):
        globals()[_name].__module__ = "captcha_guard"
del _name
