"""contracts/pep-platform.yaml against the target: schemathesis' checks over generated token
requests, events, bulk syncs and data fetches."""

from __future__ import annotations

from typing import Any

from schemathesis import Case

from pepharness.suites import generated
from pepharness.suites.pep_platform import contract, rules
from pepharness.suites.pep_platform.client import Platform
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers

OPTIONS = active_options()
CHECKS, RULES = generated.enabled_checks(rules.SCHEMATHESIS_CHECKS, list(OPTIONS.rules))
PER_PLAYER_CHECKS = [c for c in CHECKS if c.__name__ != "negative_data_rejection"]


if RULES:
    schema = contract.schema(OPTIONS)

    @schema.parametrize()
    @covers(*RULES)
    def test_contract(case: Case[Any], platform: Platform) -> None:
        contract.own_ids(case)
        checks = PER_PLAYER_CHECKS if contract.refused_per_player(case) else CHECKS
        generated.call_and_check(case, platform.target, checks, rules.SCHEMATHESIS_CHECKS)
