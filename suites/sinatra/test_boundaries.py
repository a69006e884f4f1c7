"""Boundary values on every operation of contracts/sinatra.yaml: never a 5xx; impossible dates
refused."""

from __future__ import annotations

import pytest

from pepharness.suites import boundaries
from pepharness.suites.rules import covers, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import CONTRACT, PAGINATED, Sinatra, label

PAGED = label("GET", PAGINATED)
PAGED_PROBES = 30
"""Probes of the rate-limited paginated history (D26: 5 a second): a few seconds of its budget,
every parameter's first values."""


def _param(operation: str) -> object:
    if operation == PAGED:
        return pytest.param(operation, marks=pytest.mark.xdist_group("paginated"))
    return operation


OPERATIONS = [_param(operation) for operation in boundaries.operations(CONTRACT)]
DATED = [_param(op) for op in boundaries.operations(CONTRACT) if boundaries.dates_of(CONTRACT, op)]


def _probes(sinatra: Sinatra, operation: str) -> list[boundaries.Probe]:
    found = boundaries.probes(CONTRACT, boundaries.sinatra_base(sinatra, operation))
    return boundaries.spread(found, PAGED_PROBES) if operation == PAGED else found


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.BOUNDARY_VALUES_NEVER_5XX)
def test_boundary_values_never_5xx(sinatra: Sinatra, operation: str) -> None:
    boundaries.never_5xx(sinatra.target, rules.BOUNDARY_VALUES_NEVER_5XX,
                         _probes(sinatra, operation))


@pytest.mark.parametrize("operation", DATED)
@covers(rules.IMPOSSIBLE_DATES_REFUSED)
def test_impossible_dates_are_refused(sinatra: Sinatra, operation: str) -> None:
    found = boundaries.impossible(
        boundaries.probes(CONTRACT, boundaries.sinatra_base(sinatra, operation))
    )
    if not found:
        not_verified("the operation has no date parameter")
    boundaries.refused(sinatra.target, rules.IMPOSSIBLE_DATES_REFUSED, found)
