"""The Sinatra mock: Groove's game-catalog API, served from seeded data."""

from __future__ import annotations

from pepharness.mocks.sinatra.app import DEFAULTS, backend_of, create_app
from pepharness.mocks.sinatra.backend import SinatraBackend

__all__ = ["DEFAULTS", "SinatraBackend", "backend_of", "create_app"]
