"""captcha_guard: a server-side captcha gate for ASGI and WSGI apps."""

from ._breaker import CircuitBreaker
from ._clearance import Clearance
from ._client_ip import TrustedProxies
from ._fallback import FallbackLimit
from ._fields import ParseLimits
from ._memory import MemoryState
from ._responses import Denial
from ._rules import Rule
from ._verdict import Outcome, Verdict
from ._version import __version__
from .asgi import CaptchaGuard
from .providers import (
    AliyunCaptcha,
    DeepKnow,
    GeeTest,
    HCaptcha,
    ProofOfWork,
    Provider,
    ReCaptcha,
    Turnstile,
)
from .wsgi import WSGICaptchaGuard

__all__ = [
    "AliyunCaptcha",
    "CaptchaGuard",
    "CircuitBreaker",
    "Clearance",
    "DeepKnow",
    "Denial",
    "FallbackLimit",
    "GeeTest",
    "HCaptcha",
    "MemoryState",
    "Outcome",
    "ParseLimits",
    "ProofOfWork",
    "Provider",
    "ReCaptcha",
    "Rule",
    "TrustedProxies",
    "Turnstile",
    "Verdict",
    "WSGICaptchaGuard",
    "__version__",
]
