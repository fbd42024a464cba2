"""One module per vendor family. No I/O anywhere in here."""

from .base import Claim, Provider, RequestInfo
from .geetest import GeeTest
from .proof_of_work import ProofOfWork

__all__ = ["Claim", "GeeTest", "ProofOfWork", "Provider", "RequestInfo"]
