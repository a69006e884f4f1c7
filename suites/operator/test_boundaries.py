"""Boundary values in the identity endpoint's body and fields: never a 5xx."""

from __future__ import annotations

import pytest

from pepharness.suites import boundaries
from pepharness.suites.operator import rules
from pepharness.suites.operator.client import CONTRACT, Operator
from pepharness.suites.rules import covers


@pytest.mark.parametrize("operation", boundaries.operations(CONTRACT))
@covers(rules.BOUNDARY_VALUES_NEVER_5XX)
def test_boundary_values_never_5xx(operator: Operator, operation: str) -> None:
    base = boundaries.operator_base(operator, operation)
    boundaries.never_5xx(operator.target, rules.BOUNDARY_VALUES_NEVER_5XX,
                         boundaries.probes(CONTRACT, base))
