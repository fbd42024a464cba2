"""Kept for imports written against the first release: the gate is now ``_flow``."""

from ._flow import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_SIZE, USER_AGENT, Gate, Route
from .verdict import REFUSED

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "REFUSED",
    "USER_AGENT",
    "Gate",
    "Route",
]
