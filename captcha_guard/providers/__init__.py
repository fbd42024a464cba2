"""One module per vendor family. No I/O anywhere in here."""

from ._wire import ProviderRequest, ProviderResponse
from .aliyun import AliyunCaptcha
from .base import Claim, Provider, RequestInfo
from .deepknow import DeepKnow
from .geetest import GeeTest
from .proof_of_work import ProofOfWork
from .siteverify import HCaptcha, ReCaptcha, Turnstile

__all__ = [
    "AliyunCaptcha",
    "Claim",
    "DeepKnow",
    "GeeTest",
    "HCaptcha",
    "ProofOfWork",
    "Provider",
    "ProviderRequest",
    "ProviderResponse",
    "ReCaptcha",
    "RequestInfo",
    "Turnstile",
]
