"""The reactive events: 202 for a valid event, 400 for an invalid one (stored nowhere), a retry
answered 202 and counted once, a late event accepted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    EVENTS,
    SAMPLES,
    Platform,
    body_of,
    event_operation,
    game_round,
    login,
    money,
    rfc3339,
    round_item,
    transaction_keys,
    unique,
)
from pepharness.suites.rules import Rule, covers, fail

KIND_OF = {event_operation(kind): kind for kind in EVENTS}
OPERATIONS = list(KIND_OF)
MAX_PAGES = 5


def _expect_202(platform: Platform, rule: Rule, response: requests.Response, what: str) -> Any:
    if response.status_code != 202:
        fail(
            rule,
            f"{what} is {response.status_code}, not 202",
            received=summarize(response),
            documented='202 {"status": "accepted", "eventId": "…", "duplicate": false} '
            "(VENDOR-FACTS, D57)",
            curl=platform.curl(response),
        )
    return body_of(response)


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.EVENT_IS_202)
def test_valid_event_is_202(platform: Platform, operation: str) -> None:
    kind = KIND_OF[operation]
    _expect_202(platform, rules.EVENT_IS_202, platform.event(kind, SAMPLES[kind]()),
                f"a valid {kind} event")


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _round_with(index: int, **changes: Any) -> dict[str, Any]:
    body = game_round()
    items = body["gameTransactionRound"]
    items[index] = {k: v for k, v in {**items[index], **changes}.items() if v is not DROP}
    return body


DROP = object()
"""A field value meaning: leave the field out."""

Invalid = tuple[str, Callable[[], Any], str]
"""(what is wrong, the body, the field D56 names)."""

INVALID: dict[str, list[Invalid]] = {
    "money": [
        ("no transactionId", lambda: _without(money(), "transactionId"), "transactionId"),
        ("transactionType 'deposit' (lower case)", lambda: money(transactionType="deposit"),
         "transactionType"),
        ("transactionStatus 'DONE'", lambda: money(transactionStatus="DONE"),
         "transactionStatus"),
        ("a negative amount", lambda: money(amount=-10), "amount"),
        ("a date without an offset", lambda: money(date="2026-11-25T12:00:00"), "date"),
        ("a date that is no date", lambda: money(date="yesterday"), "date"),
    ],
    "round": [
        ("an item without gameId", lambda: _round_with(0, gameId=DROP),
         "gameTransactionRound[0].gameId"),
        ("transactionType 'BOTH'", lambda: _round_with(1, transactionType="BOTH"),
         "gameTransactionRound[1].transactionType"),
        ("a negative realMoneyAmount", lambda: _round_with(0, realMoneyAmount=-0.5),
         "gameTransactionRound[0].realMoneyAmount"),
        ("a date that is no date", lambda: _round_with(1, date="2026-11-25"),
         "gameTransactionRound[1].date"),
        ("no transactions", lambda: {"gameTransactionRound": []}, "gameTransactionRound"),
    ],
    "registration": [
        ("no playerId", lambda: _without(SAMPLES["registration"](), "playerId"), "playerId"),
        ("no registrationDevice",
         lambda: _without(SAMPLES["registration"](), "registrationDevice"),
         "registrationDevice"),
        ("a date that is no date", lambda: {**SAMPLES["registration"](), "date": "20/11/2026"},
         "date"),
    ],
    "login": [
        ("no date", lambda: _without(login(), "date"), "date"),
        ("February 30th", lambda: login(date="2026-02-30T10:00:00Z"), "date"),
    ],
    "tags": [
        ("no tags", lambda: _without(SAMPLES["tags"](), "tags"), "tags"),
        ("tags that are not a list", lambda: {**SAMPLES["tags"](), "tags": "vip"}, "tags"),
    ],
}
NOT_JSON = b'{"playerId": "131918", '


def _fields(response: requests.Response) -> list[str]:
    body = body_of(response)
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(e.get("field")) for e in errors if isinstance(e, dict)]


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.INVALID_EVENT_400, rules.INVALID_EVENT_FIELD)
def test_invalid_event_is_400(platform: Platform, operation: str) -> None:
    kind = KIND_OF[operation]
    answers: list[tuple[str, requests.Response, str]] = [
        (what, platform.event(kind, make()), field) for what, make, field in INVALID[kind]
    ]
    answers.append(("a body that is not JSON", platform.event_bytes(kind, NOT_JSON), "body"))
    for what, response, _ in answers:
        if response.status_code != 400:
            fail(
                rules.INVALID_EVENT_400,
                f"a {kind} event with {what} is not 400",
                received=summarize(response),
                documented='400 {"error": "invalid_request", "message": "…", "errors": [...]} '
                "(VENDOR-FACTS, D56)",
                curl=platform.curl(response),
            )
    for what, response, field in answers:
        if field not in _fields(response):
            fail(
                rules.INVALID_EVENT_FIELD,
                f"the 400 to a {kind} event with {what} does not name {field}",
                received=summarize(response, 300),
                documented=f'errors: [{{"field": "{field}", "message": "…"}}] (D56)',
                curl=platform.curl(response),
            )


def _transactions_since(platform: Platform, rule: Rule, delta: str) -> list[dict[str, Any]]:
    """Every transaction received after `delta` (a few pages at most)."""
    answers, _ = platform.pages("transactions", delta=delta, limit=1000, max_pages=MAX_PAGES)
    items: list[dict[str, Any]] = []
    for answer in answers:
        items += [i for i in platform.expect_page(rule, answer, "the transactions")
                  if isinstance(i, dict)]
    return items


def _count(items: list[dict[str, Any]], keys: list[tuple[str, str]]) -> Counter[tuple[str, str]]:
    wanted = set(keys)
    found = (
        (str(item.get("transactionType")), str(item.get("transactionId"))) for item in items
    )
    return Counter(key for key in found if key in wanted)


@covers(rules.INVALID_NOT_STORED, operation=event_operation("money"))
def test_invalid_event_is_not_stored(platform: Platform) -> None:
    mark = platform.instant_before()
    refused: list[tuple[str, Any, requests.Response]] = []
    for kind, body in (
        ("money", money(amount=-10)),
        ("round", _round_with(1, transactionType="BOTH")),
    ):
        refused.append((kind, body, platform.event(kind, body)))
    keys = [key for kind, body, _ in refused for key in transaction_keys(kind, body)]
    stored = _count(_transactions_since(platform, rules.INVALID_NOT_STORED, mark), keys)
    for kind, body, response in refused:
        found = [key for key in transaction_keys(kind, body) if stored[key]]
        if found:
            fail(
                rules.INVALID_NOT_STORED,
                f"an invalid {kind} event ({response.status_code}) was stored",
                received=f"GET /api/data-fetch/v1/transactions?delta={mark} lists "
                f"transactionId {found[0][1]}",
                documented="an invalid body is invalid_request; nothing of it is stored (D56)",
                curl=platform.curl(response),
            )


def _repeat(platform: Platform, kind: str) -> tuple[Any, requests.Response, requests.Response]:
    body = SAMPLES[kind]()
    first = platform.event(kind, body)
    second = platform.event(kind, body)
    for number, response in (("first", first), ("second", second)):
        _expect_202(platform, rules.REPEAT_IS_202, response,
                    f"the {number} of two identical {kind} events")
    return body, first, second


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.REPEAT_IS_202, rules.REPEAT_FLAGGED)
def test_repeated_event(platform: Platform, operation: str) -> None:
    kind = KIND_OF[operation]
    body, first, second = _repeat(platform, kind)
    one, two = body_of(first) or {}, body_of(second) or {}
    if kind == "round":
        items = len(body["gameTransactionRound"])
        flagged = two.get("duplicates") == items and two.get("eventIds") == one.get("eventIds")
        documented = f'duplicates: {items}, eventIds the first answer\'s (D57)'
    else:
        flagged = two.get("duplicate") is True and two.get("eventId") == one.get("eventId")
        documented = "duplicate: true, eventId the first answer's (D57)"
    if not flagged or (kind != "round" and one.get("duplicate") is not False):
        fail(
            rules.REPEAT_FLAGGED,
            f"the repeat of a {kind} event is not flagged as a duplicate of the first",
            received=f"first: {summarize(first)}; second: {summarize(second)}",
            documented=documented,
            curl=platform.curl(second),
        )


@pytest.mark.parametrize("operation", [event_operation("money"), event_operation("round")])
@covers(rules.REPEAT_COUNTED_ONCE)
def test_repeated_event_is_counted_once(platform: Platform, operation: str) -> None:
    kind = KIND_OF[operation]
    mark = platform.instant_before()
    body, _, second = _repeat(platform, kind)
    keys = transaction_keys(kind, body)
    stored = _count(_transactions_since(platform, rules.REPEAT_COUNTED_ONCE, mark), keys)
    for key in keys:
        if stored[key] != 1:
            fail(
                rules.REPEAT_COUNTED_ONCE,
                f"a {kind} event sent twice is listed {stored[key]} time(s)",
                received=f"GET /api/data-fetch/v1/transactions?delta={mark}: "
                f"{stored[key]} item(s) with transactionType {key[0]}, transactionId {key[1]}",
                documented="stored and counted once (D58): exactly one item",
                curl=platform.curl(second),
            )


def _days_ago(days: int) -> str:
    return rfc3339(datetime.now(UTC) - timedelta(days=days))


def _late_pair(kind: str) -> tuple[Any, Any]:
    """Two events of one player, the second dated days before the first."""
    who = unique("player")
    if kind == "money":
        return money(who, date=_days_ago(0)), money(who, date=_days_ago(5))
    if kind == "round":
        return (
            {"gameTransactionRound": [round_item(who, "BET", date=_days_ago(0))]},
            {"gameTransactionRound": [round_item(who, "BET", date=_days_ago(5))]},
        )
    return login(who, date=_days_ago(0)), login(who, date=_days_ago(5))


@pytest.mark.parametrize(
    "operation", [event_operation(kind) for kind in ("money", "round", "login")]
)
@covers(rules.OUT_OF_ORDER)
def test_out_of_order_event_is_accepted(platform: Platform, operation: str) -> None:
    kind = KIND_OF[operation]
    newer, older = _late_pair(kind)
    _expect_202(platform, rules.OUT_OF_ORDER, platform.event(kind, newer), f"a {kind} event")
    _expect_202(platform, rules.OUT_OF_ORDER, platform.event(kind, older),
                f"a {kind} event dated 5 days before the player's previous one")
