"""captcha_guard: a server-side captcha gate for ASGI and WSGI apps."""

from ._clearance import Clearance
from ._client_ip import TrustedProxies
from ._version import __version__
from .asgi import CaptchaGuard
from .breaker import CircuitBreaker
from .fallback import FallbackBudget, FallbackLimit, MemoryFallbackBudget
from .fields import ParseLimits
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
from .replay import MemoryReplayStore, ReplayStore
from .responses import Denial
from .rules import Rule
from .verdict import Outcome, Verdict
from .wsgi import WSGICaptchaGuard

__all__ = [
    "AliyunCaptcha",
    "CaptchaGuard",
    "CircuitBreaker",
    "Clearance",
    "DeepKnow",
    "Denial",
    "FallbackBudget",
    "FallbackLimit",
    "GeeTest",
    "HCaptcha",
    "MemoryFallbackBudget",
    "MemoryReplayStore",
    "Outcome",
    "ParseLimits",
    "ProofOfWork",
    "Provider",
    "ReCaptcha",
    "ReplayStore",
    "Rule",
    "TrustedProxies",
    "Turnstile",
    "Verdict",
    "WSGICaptchaGuard",
    "__version__",
]
