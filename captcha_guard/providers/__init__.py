"""One module per vendor family. No I/O anywhere in here."""

from .base import Claim, Provider, RequestInfo
from .geetest import GeeTest

__all__ = ["Claim", "GeeTest", "Provider", "RequestInfo"]
