"""The 2xx of a valid request of every operation carries only the fields the contract declares:
the token, each event's 202, the bulk sync and its task, both data-fetch listings."""

from __future__ import annotations

import pytest
import requests

from pepharness.suites import answers
from pepharness.suites.http import summarize
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    ALL_SCOPES,
    CONTRACT,
    EVENTS,
    MIGRATE_OPERATION,
    SAMPLES,
    TASK_OPERATION,
    TOKEN_OPERATION,
    Platform,
    body_of,
    event_operation,
    fetch_operation,
    money,
    player,
    unique,
)
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers, not_verified

OPERATIONS = [
    TOKEN_OPERATION,
    *(event_operation(kind) for kind in EVENTS),
    MIGRATE_OPERATION,
    TASK_OPERATION,
    fetch_operation("players"),
    fetch_operation("transactions"),
]
OPTIONAL_MONEY = {"cardType": "VISA", "paymentProvider": "acme-pay", "playerIp": "203.0.113.7"}
FIRST_PAGE = {"limit": "20"}
"""The oldest items (the seeded ones, on a reference PEP), beside those the check adds."""


def _sync(platform: Platform) -> requests.Response:
    return platform.sync([player(index, unique("answers")) for index in range(2)])


def _answers(platform: Platform, operation: str) -> list[requests.Response]:
    if operation == TOKEN_OPERATION:
        # RFC 6749's form and the vendor's observed JSON shape answer differently (D51).
        return [
            platform.token_by_basic(scope=ALL_SCOPES),
            platform.token_by_json(scope=ALL_SCOPES),
        ]
    for kind in EVENTS:
        if operation == event_operation(kind):
            return [platform.event(kind, SAMPLES[kind]())]
    if operation == MIGRATE_OPERATION:
        return [_sync(platform)]
    if operation == TASK_OPERATION:
        synced = _sync(platform)
        report = body_of(synced)
        task_id = report.get("taskId") if isinstance(report, dict) else None
        if not isinstance(task_id, str) or not task_id:
            not_verified(f"the bulk sync named no task to read ({summarize(synced, 100)})")
        return [platform.task(task_id)]
    listing = "players" if operation == fetch_operation("players") else "transactions"
    mark = platform.instant_before()
    if listing == "players":
        _sync(platform)
    else:
        # Every optional field of a money event too: the listing echoes what was sent.
        platform.event("money", money(**OPTIONAL_MONEY))
        platform.event("round", SAMPLES["round"]())
    return [
        platform.fetch(listing, FIRST_PAGE),
        platform.fetch(listing, {"delta": mark, "limit": "50"}),
    ]


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.ANSWERS_DECLARE_EVERY_FIELD)
def test_answers_declare_every_field(platform: Platform, operation: str) -> None:
    answers.check(
        rules.ANSWERS_DECLARE_EVERY_FIELD,
        CONTRACT,
        operation,
        lambda: _answers(platform, operation),
        platform.curl,
        active_options(),
    )
