"""captcha_guard: a server-side captcha gate for ASGI and WSGI apps."""

from ._client_ip import TrustedProxies
from ._version import __version__
from .asgi import CaptchaGuard
from .breaker import CircuitBreaker
from .fallback import FallbackBudget, FallbackLimit, MemoryFallbackBudget
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
from .responses import Denial
from .rules import Rule
from .verdict import Outcome, Verdict
from .wsgi import WSGICaptchaGuard

__all__ = [
    "AliyunCaptcha",
    "CaptchaGuard",
    "CircuitBreaker",
    "DeepKnow",
    "Denial",
    "FallbackBudget",
    "FallbackLimit",
    "GeeTest",
    "HCaptcha",
    "MemoryFallbackBudget",
    "Outcome",
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
