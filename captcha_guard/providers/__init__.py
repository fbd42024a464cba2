"""One module per vendor family. No I/O anywhere in here."""

from .base import Claim, Provider, RequestInfo
from .geetest import GeeTest
from .proof_of_work import ProofOfWork
from .siteverify import HCaptcha, ReCaptcha, Turnstile

__all__ = [
    "Claim",
    "GeeTest",
    "HCaptcha",
    "ProofOfWork",
    "Provider",
    "ReCaptcha",
    "RequestInfo",
    "Turnstile",
]
