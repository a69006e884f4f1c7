"""contracts/pep-frontend.yaml as a schemathesis 4 schema, with x-authorization from a fresh
login for every case (so that a DELETE of the session ends only its own)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from schemathesis import Case
from schemathesis.schemas import BaseSchema

from pepharness.suites import documents, generated
from pepharness.suites.http import summarize
from pepharness.suites.options import SuiteOptions
from pepharness.suites.pep_frontend import rules
from pepharness.suites.pep_frontend.client import (
    CONTRACT,
    HEADER,
    LOGIN_OPERATION,
    Pep,
    access_token,
)
from pepharness.suites.pep_frontend.harness import HarnessError, HarnessOperator
from pepharness.suites.setup import SetupRefused, credential

# A generated clientId is unknown (401, D44); the operator answers a generated token 401 (D45).
ACCEPTED = {
    "authenticatePlayer": ["200", "400", "401", "404"],
    "getSession": ["200"],
    "endSession": ["204"],
    "getPlayer": ["200"],
}


class Bound:
    """The PEP client and the operator of this process, made on first use: schemathesis
    already calls the auth provider while it collects the contract's examples, before any
    fixture exists. The suite's fixtures hand out the same two and close them."""

    pep: Pep | None = None
    operator: HarnessOperator | None = None

    @classmethod
    def both(cls) -> tuple[Pep, HarnessOperator]:
        from pepharness.suites.plugin import active_options

        options = active_options()
        if cls.pep is None:
            cls.pep = Pep(options)
        if cls.operator is None:
            operator = HarnessOperator(options.operator_port)
            try:
                operator.start()
            except HarnessError as error:
                # Every check needs the operator: one line, not one error per check.
                pytest.exit(f"error: {error}", returncode=3)
            cls.operator = operator
        return cls.pep, cls.operator

    @classmethod
    def close(cls) -> None:
        if cls.pep is not None:
            cls.pep.target.close()
        if cls.operator is not None:
            cls.operator.close()
        cls.pep = cls.operator = None


class XAuthorization:
    """x-authorization: the token of a login the harness's operator validates."""

    def get(self, case: Case[Any], ctx: schemathesis.AuthContext) -> str | None:
        # A login answer off its contract fails check_login_issues_token here, in a test; while
        # pytest collects the examples, the case just goes without a token (D84).
        return credential(
            _login_token,
            rules.TOKEN_ISSUED,
            documented="200 {accessToken, tokenType, expiresAt, expiresIn, playerId} (D43)",
            operation=LOGIN_OPERATION,
        )

    def set(self, case: Case[Any], data: str | None, ctx: schemathesis.AuthContext) -> None:
        if data is not None:
            case.headers[HEADER] = data


def _login_token() -> str:
    pep, operator = Bound.both()
    response = pep.login(operator.program())
    token = access_token(response)
    if token is None:
        raise SetupRefused(
            f"a login the operator validates issued no token: {summarize(response, 200)}",
            curl=pep.curl(response),
        )
    return token


def schema(options: SuiteOptions) -> BaseSchema:
    document = copy.deepcopy(documents.load(CONTRACT))
    loaded = schemathesis.openapi.from_dict(document, config=generated.config(options, ACCEPTED))
    loaded.auth(refresh_interval=None).skip_for(operation_id=["authenticatePlayer"])(
        XAuthorization
    )
    return loaded
