"""The operator's identity endpoint as the fuzzer drives it: the validate flow."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

from schemathesis import Case

from pepharness.suites import boundaries
from pepharness.suites.fuzz.apis.base import (
    FLOW_GENERATED,
    Api,
    FlowContext,
    FuzzSetupError,
    boundary_flow,
)
from pepharness.suites.fuzz.boundary import FLOW_BOUNDARY
from pepharness.suites.http import Secrets
from pepharness.suites.options import SuiteOptions


def operator(options: SuiteOptions) -> Api:
    from pepharness.suites.operator import contract, rules

    valid = list(options.valid_tokens)
    if not valid and options.base_url is not None:
        from pepharness.checks.operator import mock_operator_tokens

        found = mock_operator_tokens(options.base_url)
        valid = found[0] if found else []
    if not valid:
        raise FuzzSetupError(
            "no --valid-token, and the target is not a pep-harness operator mock to take a "
            "seeded one from"
        )
    secrets = Secrets()
    for number, token in enumerate(options.valid_tokens, 1):
        secrets.hide(token, f"$PEPHARNESS_VALID_TOKEN_{number}")

    def validate(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """A casino's PEP validating a player's identity token, now and then a stale one."""
        token = rng.choice(valid) if rng.random() < 0.9 else context.unique("never-issued")
        yield context.case("validatePlayerIdentity", body={"identityToken": token})

    return Api(
        name="operator",
        contract="operator-identity",
        accepted=contract.ACCEPTED,
        rules=rules.SCHEMATHESIS_CHECKS,
        flows={"validate": validate, FLOW_BOUNDARY: boundary_flow},
        profile={"validate": 5, FLOW_GENERATED: 5, FLOW_BOUNDARY: 1},
        credentials=lambda case: (None, {}),
        secrets=secrets,
        boundary=lambda: [boundaries.Base(op, body={"identityToken": valid[0]})
                          for op in boundaries.operations("operator-identity")],
    )
