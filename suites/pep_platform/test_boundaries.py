"""Boundary values on every operation of contracts/pep-platform.yaml: never a 5xx; impossible
date-times refused."""

from __future__ import annotations

import pytest

from pepharness.suites import boundaries
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import CONTRACT, FETCH, Platform
from pepharness.suites.rules import covers

FETCH_PROBES = 10
"""Probes per data-fetch operation: they share the client's 100 requests a minute (D65) with
every other check, so each parameter gets its first values only."""
FETCHES = {f"GET {path}" for path in FETCH.values()}
WRITE_PROBES = 48
"""Probes per other operation: every accepted event is stored for good (D57), so each field
gets its first values (in turn) rather than all of them."""


def _param(operation: str) -> object:
    if operation in FETCHES:
        return pytest.param(operation, marks=pytest.mark.xdist_group("data-fetch"))
    return operation


OPERATIONS = [_param(op) for op in boundaries.operations(CONTRACT)]
DATED = [_param(op) for op in boundaries.operations(CONTRACT) if boundaries.dates_of(CONTRACT, op)]


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.BOUNDARY_VALUES_NEVER_5XX)
def test_boundary_values_never_5xx(platform: Platform, operation: str) -> None:
    found = boundaries.probes(CONTRACT, boundaries.pep_platform_base(platform, operation))
    found = boundaries.spread(found, FETCH_PROBES if operation in FETCHES else WRITE_PROBES)
    boundaries.never_5xx(platform.target, rules.BOUNDARY_VALUES_NEVER_5XX, found)


@pytest.mark.parametrize("operation", DATED)
@covers(rules.IMPOSSIBLE_DATES_REFUSED)
def test_impossible_dates_are_refused(platform: Platform, operation: str) -> None:
    found = boundaries.probes(CONTRACT, boundaries.pep_platform_base(platform, operation))
    boundaries.refused(platform.target, rules.IMPOSSIBLE_DATES_REFUSED,
                       boundaries.impossible(found))
