"""Where `pepharness check` lived before its one-module-per-API package (pepharness/checks/):
the names other modules import from here (fuzz's probes, the operator mock's tokens)."""

from pepharness.checks.common import (
    DEFAULT_BASE_URLS,
    PROBE_TIMEOUT_SECONDS,
    CheckAborted,
    reach,
)
from pepharness.checks.group import check
from pepharness.checks.operator import mock_operator_tokens

__all__ = [
    "DEFAULT_BASE_URLS",
    "PROBE_TIMEOUT_SECONDS",
    "CheckAborted",
    "check",
    "mock_operator_tokens",
    "reach",
]
