"""The providers, one module per vendor family, and the kit for writing one's own.

No I/O anywhere in here: a provider checks the client's fields (``check``), describes the
HTTP request it needs (``build_request`` -> ``ProviderRequest``) and reads the answer
(``read_response(claim, ProviderResponse)``) into a ``Verdict`` or a ``ProviderFailure`` whose
``Fault`` says whose fault it was. README, "Writing a provider".
"""

from .._fields import FieldError, Fields
from .._request import ClientRequest
from .._verdict import Fault, ProviderFailure
from ._base import Claim, Provider, answer_document, matching, short_text
from ._wire import ProviderRequest, ProviderResponse, form_post
from .aliyun import AliyunCaptcha
from .cap import Cap
from .deepknow import DeepKnow
from .friendly import FriendlyCaptcha
from .geetest import GeeTest
from .proof_of_work import ProofOfWork
from .siteverify import HCaptcha, ReCaptcha, Turnstile
from .tencent import TencentCaptcha

__all__ = [
    "AliyunCaptcha",
    "Cap",
    "Claim",
    "ClientRequest",
    "DeepKnow",
    "Fault",
    "FieldError",
    "Fields",
    "FriendlyCaptcha",
    "GeeTest",
    "HCaptcha",
    "ProofOfWork",
    "Provider",
    "ProviderFailure",
    "ProviderRequest",
    "ProviderResponse",
    "ReCaptcha",
    "TencentCaptcha",
    "Turnstile",
    "answer_document",
    "form_post",
    "matching",
    "short_text",
]
