"""Fixtures of the PEP Frontend suite: the PEP client and the operator the harness plays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pepharness.suites.options import SuiteOptions
from pepharness.suites.pep_frontend.client import Pep
from pepharness.suites.pep_frontend.contract import Bound
from pepharness.suites.pep_frontend.harness import HarnessOperator


@pytest.fixture(scope="session")
def bound(suite_options: SuiteOptions) -> Iterator[tuple[Pep, HarnessOperator]]:
    yield Bound.both()
    Bound.close()


@pytest.fixture(scope="session")
def pep(bound: tuple[Pep, HarnessOperator]) -> Pep:
    return bound[0]


@pytest.fixture(scope="session")
def operator(bound: tuple[Pep, HarnessOperator]) -> HarnessOperator:
    return bound[1]
