"""pep-harness: mocks, contracts and conformance suites for Sinatra and the PEP."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pep-harness")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
