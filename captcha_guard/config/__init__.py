"""Configuration from a TOML file: ``load(path) -> Config``, and ``from_file`` on both doors.

The package, module by module: ``_schema`` (each table's keys and checks, ``PROVIDER_TYPES``),
``_values`` (checking one value, problems, secrets), ``_locate`` (a key's line in the text),
``_load`` (reading a file into a ``Config``), ``_model`` (what a file builds) and ``_checks``
(the warnings ``captcha-guard check`` reports about a file that loads).
"""

from ._load import build_door, door_from_file, load
from ._model import ClearanceSpec, Config, ProviderSpec, RuleSpec, StateSpec
from ._schema import (
    ENVIRONMENTS,
    PARSE_LIMITS,
    PROVIDER_TYPES,
    TEST_KEYS,
    VENDOR_TEST_SECRETS,
    ProviderType,
)
from ._values import ConfigError, Problem

__all__ = [
    "ENVIRONMENTS",
    "PARSE_LIMITS",
    "PROVIDER_TYPES",
    "TEST_KEYS",
    "VENDOR_TEST_SECRETS",
    "ClearanceSpec",
    "Config",
    "ConfigError",
    "Problem",
    "ProviderSpec",
    "ProviderType",
    "RuleSpec",
    "StateSpec",
    "build_door",
    "door_from_file",
    "load",
]
