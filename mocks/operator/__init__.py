"""The operator identity mock: the endpoint the PEP calls to validate a player's identity token."""

from __future__ import annotations

from pepharness.mocks.operator.app import DEFAULTS, IDENTITY_PATH, backend_of, create_app
from pepharness.mocks.operator.backend import Identity, OperatorBackend, TokenRule

__all__ = [
    "DEFAULTS",
    "IDENTITY_PATH",
    "Identity",
    "OperatorBackend",
    "TokenRule",
    "backend_of",
    "create_app",
]
