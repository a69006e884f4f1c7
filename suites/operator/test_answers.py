"""The 200 to each valid token carries only the fields the contract declares."""

from __future__ import annotations

from pepharness.suites import answers
from pepharness.suites.operator import rules
from pepharness.suites.operator.client import CONTRACT, OPERATION, Operator
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers, not_verified


@covers(rules.ANSWERS_DECLARE_EVERY_FIELD, operation=OPERATION)
def test_answers_declare_every_field(operator: Operator) -> None:
    if not operator.options.valid_tokens:
        not_verified("no --valid-token given")
    answers.check(
        rules.ANSWERS_DECLARE_EVERY_FIELD,
        CONTRACT,
        OPERATION,
        [operator.validate(token) for token in operator.options.valid_tokens],
        operator.curl,
        active_options(),
    )
