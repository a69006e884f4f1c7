"""contracts/pep-platform.yaml as a schemathesis 4 schema: positive and negative requests, a
Bearer token with every scope on the protected operations and the client's Basic credentials on
the token endpoint; generated events get ids of their own."""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable
from typing import Any

import schemathesis
from schemathesis import Case
from schemathesis.auths import apply_basic_auth
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from pepharness.suites import documents, generated
from pepharness.suites.options import SuiteOptions
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import CONTRACT, TOKEN_OPERATION, Platform
from pepharness.suites.setup import credential

TOKEN_ID = "issuePlatformToken"
FETCH_IDS = ("fetchPlayers", "fetchTransactions")

# Valid input is still refused where the contract says so: a generated client is unknown (401),
# or sends Basic and body credentials together (400, D51); a generated task id is unknown (404,
# D61); a generated `next` is no cursor of the endpoint (400, D63).
ACCEPTED = {
    TOKEN_ID: ["200", "400", "401"],
    "postMoneyTransaction": ["202"],
    "postGameTransactionRound": ["202"],
    "postRegistration": ["202"],
    "postLogin": ["202"],
    "upsertPlayerTags": ["202"],
    "migratePlayers": ["202"],
    "getMigrationTask": ["200", "404"],
    "fetchPlayers": ["200", "400"],
    "fetchTransactions": ["200", "400"],
}

FETCH_EXAMPLES = 3
"""Random examples per data-fetch operation: every request spends the 100-a-minute budget the
whole suite shares. Their coverage phase is positive only for the same reason: the boundaries of
limit, next and delta cost 60 requests; test_data_fetch.py checks the invalid ones."""

_client: Platform | None = None


def client(options: SuiteOptions) -> Platform:
    """This process's client: the `platform` fixture and the auth providers share it
    (schemathesis asks for a token while it collects the contract's examples)."""
    global _client
    if _client is None or _client.options != options:
        _client = Platform(options)
    return _client


def _bound() -> Platform:
    from pepharness.suites.plugin import active_options

    return client(active_options())


def config(options: SuiteOptions) -> SchemathesisConfig:
    fetches = [
        {
            "include-operation-id": operation_id,
            "generation": {"max-examples": min(FETCH_EXAMPLES, options.max_examples)},
            "phases": {"coverage": {"generation": {"mode": "positive"}}},
        }
        for operation_id in FETCH_IDS
    ]
    # Every shrinking step is one more real request (and one more event stored): a failure is
    # reported as generated, with its curl line, and costs no more.
    return generated.config(
        options, ACCEPTED, generation={"no-shrink": True}, operations=fetches
    )


class BearerAuth:
    """`Authorization: Bearer` with a token of every scope."""

    def get(self, case: Case[Any], ctx: schemathesis.AuthContext) -> str | None:
        # No token to be had: check_token_by_basic_credentials fails in the test asking for
        # it; while pytest collects, the case goes without one (D84).
        return credential(
            lambda: _bound().token(),
            rules.TOKEN_BY_BASIC,
            documented="200 {access_token, token_type: Bearer, expires_in > 0} (RFC 6749 §5.1)",
            operation=TOKEN_OPERATION,
        )

    def set(self, case: Case[Any], data: str | None, ctx: schemathesis.AuthContext) -> None:
        if data is not None:
            case.headers["Authorization"] = f"Bearer {data}"


class ClientBasic:
    """client_secret_basic on the token endpoint (the contract's `clientBasic`), for the form
    only: a JSON request carries its credentials in its body (D51), so a generated one gets the
    documented 401 rather than the 400 of two methods at once."""

    def get(self, case: Case[Any], ctx: schemathesis.AuthContext) -> tuple[str, str]:
        platform = _bound()
        return platform.client_id, platform.secret

    def set(self, case: Case[Any], data: tuple[str, str], ctx: schemathesis.AuthContext) -> None:
        if case.media_type != "application/json":
            apply_basic_auth(case, *data)


ECMA_BLANK = re.compile(
    "[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*"
)
"""The whitespace of ECMA-262, whose regular expressions JSON Schema's `pattern` uses (the
contract's Id is `pattern: "\\S"`): Python's `str.isspace` counts more as blank (U+001C to
U+001F, U+0085), so a Python check would call some valid ids blank."""


def _valid_id(value: Any) -> bool:
    """Whether `value` is the contract's `Id`: 1 to 256 characters, not only blanks."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 256
        and ECMA_BLANK.fullmatch(value) is None
    )


def _fresh(value: str) -> str:
    """A new id in place of a generated valid one: events are stored for good, and a generated
    id repeated (by this run or a former one) would only ever test the duplicate path."""
    return f"pepharness-{secrets.token_hex(8)}"[: max(len(value), 27)]


def own_ids(case: Case[Any], fresh: Callable[[str], str] = _fresh) -> None:
    """Give a generated event fresh transaction ids (`fresh` makes one from the generated
    one), and a generated round one player (D59: a round belongs to one player, which the
    schema cannot say). Only ids that are valid are replaced, by valid ones: a negative case
    stays negative."""
    body: Any = case.body
    if not isinstance(body, dict):
        return
    if _valid_id(body.get("transactionId")):
        body["transactionId"] = fresh(body["transactionId"])
    items = body.get("gameTransactionRound")
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, dict) and _valid_id(item.get("transactionId")):
            item["transactionId"] = fresh(item["transactionId"])
    players = [item.get("playerId") for item in items if isinstance(item, dict)]
    if players and len(players) == len(items) and all(_valid_id(p) for p in players):
        for item in items:
            item["playerId"] = players[0]


MAX_SYNC_PLAYERS = 20_000


def refused_per_player(case: Case[Any]) -> bool:
    """Whether `case` is a bulk sync whose envelope is valid (`{"players": [1..20000]}`): any
    invalid player in it is an entry of the 202's errors, not a 400 (D60, the operation's
    `x-invalid-items`), so schemathesis' negative_data_rejection does not apply."""
    if case.operation.definition.raw.get("operationId") != "migratePlayers":
        return False
    body = case.body
    players = body.get("players") if isinstance(body, dict) else None
    return isinstance(players, list) and 1 <= len(players) <= MAX_SYNC_PLAYERS


def schema(options: SuiteOptions) -> BaseSchema:
    """The contract as a schemathesis schema, with both auth providers registered."""
    document = copy.deepcopy(documents.load(CONTRACT))
    # The operator implements the webhook, not the PEP: nothing of it is called here.
    document.pop("webhooks", None)
    loaded = schemathesis.openapi.from_dict(document, config=config(options))
    loaded.auth(refresh_interval=None).skip_for(operation_id=[TOKEN_ID])(BearerAuth)
    loaded.auth(refresh_interval=None).apply_to(operation_id=TOKEN_ID)(ClientBasic)
    return loaded
