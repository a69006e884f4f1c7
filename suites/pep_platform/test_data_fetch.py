"""The data fetch: limit honoured, pages that partition the items, bad query parameters refused.

Every request here spends the client's 100-a-minute budget (D65): 30 in all. With the events',
durability and leak checks' 7 and the contract's generated ones (30 or so), the shared checks
stay near 67, well below the limit they would otherwise hit themselves.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    FETCH,
    Platform,
    fetch_operation,
    money,
    parse_rfc3339,
    player,
    rfc3339,
    unique,
)
from pepharness.suites.rules import covers, fail

LISTING_OF = {fetch_operation(listing): listing for listing in FETCH}
OPERATIONS = list(LISTING_OF)
FRESH = {"transactions": 7, "players": 5}
"""Items each listing's checks add before reading them back."""
PAGE_LIMITS = {"transactions": (2, 3), "players": (2,)}
LIMITS = (1, 2, 5)
LOCATE_PAGES = 3


def _add(platform: Platform, listing: str) -> list[str]:
    """FRESH[listing] new items of `listing`: their ids (transactionId or playerId)."""
    count = FRESH[listing]
    if listing == "transactions":
        who = unique("player")
        bodies = [money(who) for _ in range(count)]
        for body in bodies:
            answer = platform.event("money", body)
            if answer.status_code != 202:
                raise RuntimeError(f"a money event was refused: {summarize(answer)}")
        return [body["transactionId"] for body in bodies]
    prefix = unique("sync")
    players = [player(index, prefix) for index in range(count)]
    answer = platform.sync(players)
    if answer.status_code != 202:
        raise RuntimeError(f"a bulk sync was refused: {summarize(answer)}")
    return [p["playerId"] for p in players]


def _id(listing: str, item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    value = item.get("transactionId" if listing == "transactions" else "playerId")
    return str(value) if value is not None else None


def _identity(listing: str, item: Any) -> str:
    """What tells two items of a listing apart: a transaction's eventId, a player's id."""
    if listing == "transactions" and isinstance(item, dict) and "eventId" in item:
        return f"event {item['eventId']}"
    return f"{_id(listing, item)}"


def _stamp(listing: str) -> str:
    return "receivedAt" if listing == "transactions" else "updatedAt"


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.LIMIT_HONOURED)
def test_fetch_limit_is_honoured(platform: Platform, operation: str) -> None:
    listing = LISTING_OF[operation]
    mark = platform.instant_before()
    _add(platform, listing)
    for limit in LIMITS:
        response = platform.fetch(listing, {"delta": mark, "limit": str(limit)})
        items = platform.expect_page(rules.LIMIT_HONOURED, response, f"limit={limit}")
        if len(items) > limit:
            fail(
                rules.LIMIT_HONOURED,
                f"limit={limit} answers {len(items)} items",
                received=summarize(response),
                documented=f"at most {limit} items (VENDOR-FACTS: limit lowers the 1,000)",
                curl=platform.curl(response),
            )


def _tight_delta(
    platform: Platform, listing: str, mark: str, ours: list[str]
) -> tuple[str, requests.Response]:
    """Just before the first of `ours` by the target's own stamps (receivedAt, updatedAt):
    found with a delta taken from the clock, then narrowed so that little else is listed."""
    answers, _ = platform.pages(listing, delta=mark, limit=1000, max_pages=LOCATE_PAGES)
    stamps: dict[str, str] = {}
    for answer in answers:
        for item in platform.expect_page(rules.PAGES_PARTITION, answer, "the first pages"):
            if _id(listing, item) in ours and isinstance(item.get(_stamp(listing)), str):
                stamps[str(_id(listing, item))] = item[_stamp(listing)]
    missing = [i for i in ours if i not in stamps]
    if missing:
        fail(
            rules.PAGES_PARTITION,
            f"{len(missing)} of {len(ours)} fresh {listing} are not listed after delta={mark}",
            received=f"{len(answers)} page(s), missing {missing[:3]}",
            documented=f"every {listing[:-1]} stored after delta is listed (D63)",
            curl=platform.curl(answers[-1]),
        )
    first = min(parse_rfc3339(stamp) for stamp in stamps.values())
    return rfc3339(first - timedelta(milliseconds=1)), answers[-1]


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.PAGES_PARTITION)
def test_fetch_pages_partition_items(platform: Platform, operation: str) -> None:
    listing = LISTING_OF[operation]
    mark = platform.instant_before()
    ours = _add(platform, listing)
    delta, _ = _tight_delta(platform, listing, mark, ours)
    for limit in PAGE_LIMITS[listing]:
        answers, ended = platform.pages(
            listing, delta=delta, limit=limit, max_pages=len(ours) + 10
        )
        seen: Counter[str] = Counter()
        listed: Counter[str] = Counter()
        for number, answer in enumerate(answers, start=1):
            items = platform.expect_page(rules.PAGES_PARTITION, answer, f"page {number}")
            if len(items) > limit:
                fail(
                    rules.PAGES_PARTITION,
                    f"page {number} of limit={limit} holds {len(items)} items",
                    received=summarize(answer),
                    documented=f"at most {limit} items a page",
                    curl=platform.curl(answer),
                )
            for item in items:
                seen[_identity(listing, item)] += 1
                listed[str(_id(listing, item))] += 1
        repeated = [key for key, count in seen.items() if count > 1]
        wrong = {i: listed[i] for i in ours if listed[i] != 1}
        if repeated or wrong or not ended:
            problem = (
                f"{repeated[0]} is listed on two pages" if repeated
                else f"{len(wrong)} of the {len(ours)} fresh {listing} are listed "
                f"{sorted(set(wrong.values()))} time(s)" if wrong
                else f"next is still not null after {len(answers)} pages"
            )
            fail(
                rules.PAGES_PARTITION,
                f"paging with limit={limit}: {problem}",
                received=f"{len(answers)} page(s) from delta={delta}; last: "
                f"{summarize(answers[-1])}",
                documented="each item once across the pages, next null after the last "
                "(D63)",
                curl=platform.curl(answers[-1]),
            )


def _refused(platform: Platform, rule: Any, listing: str, params: dict[str, str]) -> None:
    response = platform.fetch(listing, params)
    if response.status_code != 400:
        shown = "&".join(f"{k}={v}" for k, v in params.items())
        fail(
            rule,
            f"{shown} is not 400",
            received=summarize(response),
            documented='400 {"error": "invalid_request", "errors": [...]} (D63)',
            curl=platform.curl(response),
        )


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.BAD_LIMIT)
def test_fetch_bad_limit_is_400(platform: Platform, operation: str) -> None:
    for value in ("0", "1001", "ten"):
        _refused(platform, rules.BAD_LIMIT, LISTING_OF[operation], {"limit": value})


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.BAD_NEXT)
def test_fetch_malformed_next_is_400(platform: Platform, operation: str) -> None:
    # Not base64; base64 of something no PEP issues; empty (the contract's minLength 1).
    for value in ("!!not-a-cursor!!", "bm90LWEtY3Vyc29yOjk5", ""):
        _refused(platform, rules.BAD_NEXT, LISTING_OF[operation], {"next": value})


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(rules.BAD_DELTA)
def test_fetch_bad_delta_is_400(platform: Platform, operation: str) -> None:
    _refused(platform, rules.BAD_DELTA, LISTING_OF[operation], {"delta": "yesterday"})
