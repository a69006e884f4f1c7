"""The reference PEP Frontend gateway: player sessions checked with the operator's API."""

from __future__ import annotations

from pepharness.mocks.pep.app import (
    DEFAULTS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    backend_of,
    create_app,
    prepare_database,
)
from pepharness.mocks.pep.backend import PepBackend
from pepharness.mocks.pep.operator_client import DEFAULT_OPERATOR_URL
from pepharness.mocks.pep.store import ClientSpec, Store, database_url
from pepharness.mocks.pep.tokens import AUDIENCE

__all__ = [
    "AUDIENCE",
    "DEFAULTS",
    "DEFAULT_OPERATOR_URL",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "ClientSpec",
    "PepBackend",
    "Store",
    "backend_of",
    "create_app",
    "database_url",
    "prepare_database",
]
