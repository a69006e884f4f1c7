"""The 200 of a valid request of every operation carries only the fields the contract declares."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pepharness.suites import answers
from pepharness.suites.plugin import active_options
from pepharness.suites.rules import covers, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import (
    CONTRACT,
    HISTORY,
    PAGINATED,
    ROUND,
    Sinatra,
    all_operations,
    label,
)

WINDOW = {"time_period": "last 30 days"}
"""The widest documented window: the most rounds, the most fields."""


def _operations() -> list[Any]:
    return [
        pytest.param(op, marks=pytest.mark.xdist_group("paginated"))
        if op == label("GET", PAGINATED)
        else op
        for op in all_operations()
    ]


def _answers(sinatra: Sinatra, operation: str) -> list[requests.Response]:
    template = operation.split(" ", 1)[1]
    if template == ROUND and sinatra.sample_round() is None:
        not_verified("no round in the last 30 days to ask the details of")
    if "/assets/" in template and not sinatra.catalog:
        not_verified("the catalog is empty: no game to ask the assets of")
    if template == HISTORY:
        return [sinatra.get(sinatra.path(HISTORY), params=WINDOW)]
    if template == PAGINATED:
        return [sinatra.page(WINDOW)]
    return [sinatra.request_operation(operation)]


@pytest.mark.parametrize("operation", _operations())
@covers(rules.ANSWERS_DECLARE_EVERY_FIELD)
def test_answers_declare_every_field(sinatra: Sinatra, operation: str) -> None:
    answers.check(
        rules.ANSWERS_DECLARE_EVERY_FIELD,
        CONTRACT,
        operation,
        lambda: _answers(sinatra, operation),
        sinatra.curl,
        active_options(),
    )
