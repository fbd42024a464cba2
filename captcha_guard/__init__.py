"""captcha_guard: a server-side captcha gate for ASGI and WSGI apps."""

from .asgi import CaptchaGuard
from .breaker import CircuitBreaker
from .fallback import FallbackBudget, MemoryFallbackBudget
from .providers import GeeTest, ProofOfWork, Provider
from .responses import Denial
from .rules import Rule
from .verdict import Outcome, Verdict
from .wsgi import WSGICaptchaGuard

__version__ = "0.1.0"

__all__ = [
    "CaptchaGuard",
    "CircuitBreaker",
    "Denial",
    "FallbackBudget",
    "GeeTest",
    "MemoryFallbackBudget",
    "Outcome",
    "ProofOfWork",
    "Provider",
    "Rule",
    "Verdict",
    "WSGICaptchaGuard",
    "__version__",
]
