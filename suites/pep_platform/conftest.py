"""Fixtures of the PEP Platform suite: one client per test process, shared with the auth
providers of the contract's schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pepharness.suites.options import SuiteOptions
from pepharness.suites.pep_platform import contract
from pepharness.suites.pep_platform.client import Platform


@pytest.fixture(scope="session")
def platform(suite_options: SuiteOptions) -> Iterator[Platform]:
    client = contract.client(suite_options)
    yield client
    client.target.close()
