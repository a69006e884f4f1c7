"""The shared core of the mocks: app wiring, clock, limiter, faults, journal, errors, admin API,
serving."""

from __future__ import annotations

from pepharness.mocks.core.admin import (
    ADMIN_PREFIX,
    AdminBadRequest,
    AdminConflict,
    AdminError,
    AdminNotFound,
    MockCore,
    core_of,
    install_core,
    read_json,
    read_json_object,
)
from pepharness.mocks.core.app import (
    CORE_DEFAULTS,
    backend_extension,
    backend_in,
    install_mock,
    new_app,
)
from pepharness.mocks.core.clock import Clock, parse_rfc3339, to_rfc3339
from pepharness.mocks.core.errors import (
    ApiError,
    CodedError,
    ErrorFamily,
    install_error_renderer,
    unexpected_error,
)
from pepharness.mocks.core.faults import Fault, FaultRegistry, FaultRule, FaultRuleError
from pepharness.mocks.core.journal import Journal, JournalEntry
from pepharness.mocks.core.ratelimit import RateDecision, RateLimiter
from pepharness.mocks.core.server import ServeError, ThreadedServer, serve, serve_many

__all__ = [
    "ADMIN_PREFIX",
    "CORE_DEFAULTS",
    "AdminBadRequest",
    "AdminConflict",
    "AdminError",
    "AdminNotFound",
    "ApiError",
    "Clock",
    "CodedError",
    "ErrorFamily",
    "Fault",
    "FaultRegistry",
    "FaultRule",
    "FaultRuleError",
    "Journal",
    "JournalEntry",
    "MockCore",
    "RateDecision",
    "RateLimiter",
    "ServeError",
    "ThreadedServer",
    "backend_extension",
    "backend_in",
    "core_of",
    "install_core",
    "install_error_renderer",
    "install_mock",
    "new_app",
    "parse_rfc3339",
    "read_json",
    "read_json_object",
    "serve",
    "serve_many",
    "to_rfc3339",
    "unexpected_error",
]
