"""contracts/sinatra.yaml as a schemathesis 4 schema: every built-in check that applies, positive
and negative generation, the two kinds of credentials, and what counts as accepting valid input."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import requests
import schemathesis
from schemathesis import Case
from schemathesis.auths import apply_basic_auth
from schemathesis.checks import CheckFunction
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from pepharness.suites import documents, generated
from pepharness.suites.http import summarize
from pepharness.suites.options import SuiteOptions
from pepharness.suites.rules import Rule, operation_matches
from pepharness.suites.setup import credential
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import CONTRACT, LOGIN, Sinatra

PAGINATED_ID = "getGameHistoryPaginated"


def left_out(*, paginated: bool, patterns: Sequence[str] = ()) -> list[str]:
    """The ids of the operations a test leaves out: with `paginated`, all but the paginated
    history; without, the paginated history; and those --operations does not select. (An
    exclude list, since schemathesis' `include` is no help here: the per-operation settings
    below already add an include filter that matches everything.)"""
    ids = []
    for method, template, operation in documents.operations(CONTRACT):
        wanted = (operation.get("operationId") == PAGINATED_ID) == paginated
        if not wanted or not operation_matches(f"{method} {template}", patterns):
            ids.append(str(operation["operationId"]))
    return ids


def operation_count() -> int:
    return len(list(documents.operations(CONTRACT)))


# Valid input is still refused where the contract says so: a login with unknown credentials is
# 400 (D2), an unknown game's assets 400 (D7), an operator that is not the user's 403 (D9), a
# round that is not there 422 (D29), `from` without `to` or after it 422 (D17).
ACCEPTED: dict[str, list[str]] = {
    "loginUser": ["200", "400"],
    "getAvailableGameProviders": ["200"],
    "getAvailableGames": ["200", "403"],
    "getGameMarketingAssets": ["200", "400"],
    "getGameHistory": ["200", "403", "422"],
    PAGINATED_ID: ["200", "422"],
    "getGameHistoryMetadata": ["200"],
    "getRoundDetails": ["200", "403", "422"],
}

_client: Sinatra | None = None


def client(options: SuiteOptions) -> Sinatra:
    """This process's client: the `sinatra` fixture and the auth providers share it (schemathesis
    already logs in while it collects the schema's examples, before any fixture exists)."""
    global _client
    if _client is None or _client.options != options:
        _client = Sinatra(options)
    return _client


def _bound() -> Sinatra:
    from pepharness.suites.plugin import active_options

    return client(active_options())


def config(options: SuiteOptions) -> SchemathesisConfig:
    """The run's schemathesis configuration. Every request of the paginated history spends its
    rate limit: fewer random examples there (its coverage phase still walks every parameter's
    boundaries)."""
    paced = {
        "include-operation-id": PAGINATED_ID,
        "generation": {"max-examples": options.paced_examples},
    }
    return generated.config(options, ACCEPTED, operations=[paced])


class JwtAuth:
    """`jwt-auth` from a login of the configured user (the login answers it in a header)."""

    def get(self, case: Case[Any], ctx: schemathesis.AuthContext) -> str | None:
        # No token to be had: check_login_returns_jwt_auth_header fails in the test asking for
        # it; while pytest collects, the case goes without one (D84).
        return credential(
            lambda: _bound().token(),
            rules.LOGIN_RETURNS_TOKEN,
            documented="200 with the token in the jwt-auth header (seed 'Log in user'; D4)",
            operation=f"POST {LOGIN}",
        )

    def set(self, case: Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["jwt-auth"] = data


class BasicAuth:
    """HTTP Basic with the configured user's email and password (D24)."""

    def get(self, case: Case[Any], ctx: schemathesis.AuthContext) -> tuple[str, str]:
        return _bound().basic()

    def set(self, case: Case[Any], data: tuple[str, str], ctx: schemathesis.AuthContext) -> None:
        apply_basic_auth(case, *data)


MAX_INTEGER_DIGITS = 18


def within_d37(query: Mapping[str, Any]) -> bool:
    """Whether every integer of a query has at most 18 digits: D37 bounds query integers so
    (int64 ids), which the contract's `type: integer` parameters (operator_id, page_number)
    cannot say. A longer one is malformed (400), not valid input to accept."""
    for raw in query.values():
        for value in raw if isinstance(raw, list) else [raw]:
            integer = isinstance(value, int) and not isinstance(value, bool)
            if integer and len(str(abs(value))) > MAX_INTEGER_DIGITS:
                return False
    return True


def filter_case(context: schemathesis.HookContext, case: Case[Any]) -> bool:
    """Schemathesis' `filter_case` hook: no generated integer beyond D37's 18 digits."""
    return within_d37(case.query or {})


def schema(options: SuiteOptions) -> BaseSchema:
    """The contract as a schemathesis schema, with both auth providers registered."""
    document = copy.deepcopy(documents.load(CONTRACT))
    loaded = schemathesis.openapi.from_dict(document, config=config(options))
    loaded.hook(filter_case)
    # The client caches its token itself (and renews it long before its 20 minutes are up).
    loaded.auth(refresh_interval=None).skip_for(operation_id=["loginUser", PAGINATED_ID])(JwtAuth)
    loaded.auth(refresh_interval=None).apply_to(operation_id=PAGINATED_ID)(BasicAuth)
    return loaded


def enabled_checks(selected: list[str]) -> tuple[list[CheckFunction], list[Rule]]:
    """The schemathesis check functions to run and the rules they report as, narrowed to the
    rules `--rules` selects."""
    return generated.enabled_checks(rules.SCHEMATHESIS_CHECKS, selected)


def call_and_check(case: Case[Any], client: Sinatra, checks: list[CheckFunction]) -> None:
    """Send `case` and run `checks` on the answer (RuleFailures name the broken rules)."""
    generated.call_and_check(case, client.target, checks, rules.SCHEMATHESIS_CHECKS)


def response_of(response: requests.Response) -> str:
    return summarize(response)
