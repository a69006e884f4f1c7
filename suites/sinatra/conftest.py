"""Fixtures of the Sinatra suite: one client per test process, bound for the auth providers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pepharness.suites.options import SuiteOptions
from pepharness.suites.sinatra import contract
from pepharness.suites.sinatra.client import Sinatra


@pytest.fixture(scope="session")
def sinatra(suite_options: SuiteOptions) -> Iterator[Sinatra]:
    client = contract.client(suite_options)
    yield client
    client.target.close()
