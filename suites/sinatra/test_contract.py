"""contracts/sinatra.yaml against the target: schemathesis' checks over generated requests."""

from __future__ import annotations

from typing import Any

import pytest
from schemathesis import Case

from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers
from pepharness.suites.sinatra import contract
from pepharness.suites.sinatra.client import Sinatra

OPTIONS = active_options()
CHECKS, RULES = contract.enabled_checks(list(OPTIONS.rules))
# Operations --operations leaves out are excluded here, not deselected later: collecting an
# operation builds all its coverage cases.
SHARED_LEFT_OUT = contract.left_out(paginated=False, patterns=OPTIONS.operations)
PACED_LEFT_OUT = contract.left_out(paginated=True, patterns=OPTIONS.operations)

if RULES:
    schema = contract.schema(OPTIONS)

    if len(SHARED_LEFT_OUT) < contract.operation_count():

        @schema.exclude(operation_id=SHARED_LEFT_OUT).parametrize()
        @covers(*RULES)
        def test_contract(case: Case[Any], sinatra: Sinatra) -> None:
            contract.call_and_check(case, sinatra, CHECKS)

    if len(PACED_LEFT_OUT) < contract.operation_count():

        # The paginated history is rate limited: its cases share one process (and its pace).
        @schema.exclude(operation_id=PACED_LEFT_OUT).parametrize()
        @covers(*RULES)
        @pytest.mark.xdist_group("paginated")
        def test_contract_paginated(case: Case[Any], sinatra: Sinatra) -> None:
            contract.call_and_check(case, sinatra, CHECKS)
