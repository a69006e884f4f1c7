"""Fixtures of the operator suite: one client per test process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pepharness.suites.operator.client import Operator
from pepharness.suites.options import SuiteOptions


@pytest.fixture(scope="session")
def operator(suite_options: SuiteOptions) -> Iterator[Operator]:
    client = Operator(suite_options)
    yield client
    client.target.close()
