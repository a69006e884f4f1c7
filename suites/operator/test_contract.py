"""contracts/operator-identity.yaml against the target: schemathesis' checks over generated
bodies, valid (an unknown token: 401) and not (400)."""

from __future__ import annotations

from typing import Any

from schemathesis import Case

from pepharness.suites import generated
from pepharness.suites.operator import contract, rules
from pepharness.suites.operator.client import Operator
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers, operation_matches

OPTIONS = active_options()
CHECKS, RULES = generated.enabled_checks(rules.SCHEMATHESIS_CHECKS, list(OPTIONS.rules))

if RULES and operation_matches("POST /api/auth/v1/player", OPTIONS.operations):
    schema = contract.schema(OPTIONS)

    @schema.parametrize()
    @covers(*RULES)
    def test_contract(case: Case[Any], operator: Operator) -> None:
        generated.call_and_check(case, operator.target, CHECKS, rules.SCHEMATHESIS_CHECKS)
