"""The 2xx of a valid request of every operation carries only the fields the contract declares:
the login of a player the operator validated, then each player endpoint with its token."""

from __future__ import annotations

import pytest
import requests

from pepharness.suites import answers, documents
from pepharness.suites.http import summarize
from pepharness.suites.pep_frontend import rules
from pepharness.suites.pep_frontend.client import CONTRACT, LOGIN_OPERATION, Pep, access_token
from pepharness.suites.pep_frontend.harness import HarnessOperator
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers, not_verified

OPERATIONS = [f"{method} {template}" for method, template, _ in documents.operations(CONTRACT)]


def _answers(pep: Pep, operator: HarnessOperator, operation: str) -> list[requests.Response]:
    # A login of its own for each operation: the session's DELETE ends only that one.
    login = pep.login(operator.program())
    if operation == LOGIN_OPERATION:
        return [login]
    token = access_token(login)
    if token is None:
        not_verified(f"the login issued no token ({summarize(login, 80)})")
    return [pep.call(operation, token)]


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.ANSWERS_DECLARE_EVERY_FIELD)
def test_answers_declare_every_field(
    pep: Pep, operator: HarnessOperator, operation: str
) -> None:
    answers.check(
        rules.ANSWERS_DECLARE_EVERY_FIELD,
        CONTRACT,
        operation,
        _answers(pep, operator, operation),
        pep.curl,
        active_options(),
    )
