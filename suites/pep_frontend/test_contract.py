"""contracts/pep-frontend.yaml against the target: schemathesis' checks over generated logins
and player requests."""

from __future__ import annotations

from typing import Any

from schemathesis import Case

from pepharness.suites import generated
from pepharness.suites.pep_frontend import contract, rules
from pepharness.suites.pep_frontend.client import Pep
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers

OPTIONS = active_options()
CHECKS, RULES = generated.enabled_checks(rules.SCHEMATHESIS_CHECKS, list(OPTIONS.rules))


if RULES:
    schema = contract.schema(OPTIONS)

    @schema.parametrize()
    @covers(*RULES)
    def test_contract(case: Case[Any], pep: Pep) -> None:
        generated.call_and_check(case, pep.target, CHECKS, rules.SCHEMATHESIS_CHECKS)
