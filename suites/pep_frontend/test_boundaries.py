"""Boundary values on every operation of contracts/pep-frontend.yaml: never a 5xx."""

from __future__ import annotations

import pytest

from pepharness.suites import boundaries
from pepharness.suites.pep_frontend import rules
from pepharness.suites.pep_frontend.client import CONTRACT, Pep
from pepharness.suites.pep_frontend.harness import HarnessOperator
from pepharness.suites.rules import covers

# The session's DELETE last: its probes carry bad tokens only, but it ends nothing early.
OPERATIONS = sorted(boundaries.operations(CONTRACT), key=lambda op: op.startswith("DELETE"))


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.BOUNDARY_VALUES_NEVER_5XX)
def test_boundary_values_never_5xx(
    pep: Pep, operator: HarnessOperator, operation: str
) -> None:
    base = boundaries.pep_frontend_base(pep, operator, operation)
    boundaries.never_5xx(pep.target, rules.BOUNDARY_VALUES_NEVER_5XX,
                         boundaries.probes(CONTRACT, base))
