"""The history windows and parameters, on the plain and the paginated history alike."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pepharness.fixtures import TIME_PERIODS, months_before
from pepharness.suites.http import summarize
from pepharness.suites.rules import Rule, covers, fail, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import (
    HISTORY,
    PAGINATED,
    Sinatra,
    body_of,
    days_ago,
    label,
    today_utc,
    transaction_ids,
)

PLAIN = label("GET", HISTORY)
PAGED = label("GET", PAGINATED)
WHOLE_PAGE = "10000"
"""The largest page (D17): one request holds a window's transactions."""

BOTH = [PLAIN, pytest.param(PAGED, marks=pytest.mark.xdist_group("paginated"))]


def fetch(sinatra: Sinatra, operation: str, params: Mapping[str, str]) -> requests.Response:
    if operation == PAGED:
        return sinatra.page({"page_size": WHOLE_PAGE, **params})
    return sinatra.get(sinatra.path(HISTORY), params=params)


def rounds_of(operation: str, body: Any) -> list[dict[str, Any]]:
    if operation == PAGED:
        return list(body.get("responses", [])) if isinstance(body, dict) else []
    return list(body) if isinstance(body, list) else []


def _ok(sinatra: Sinatra, rule: Rule, response: requests.Response, what: str) -> Any:
    return sinatra.expect(rule, response, 200, what=what)


@pytest.mark.parametrize("operation", BOTH)
@covers(rules.SIX_MONTHS_ONLY)
def test_history_reaches_back_six_months_only(sinatra: Sinatra, operation: str) -> None:
    response = fetch(sinatra, operation, {"from": days_ago(400), "to": days_ago(0)})
    if response.status_code != 200:
        not_verified(f"`from` a year ago was refused ({summarize(response)}); "
                     "see check_history_older_from_is_clamped")
    # A day of slack: "six months" is the target's, in its own time zone and clock.
    oldest = months_before(sinatra.now(), 6) - timedelta(days=1)
    for round_ in rounds_of(operation, body_of(response)):
        for kind in ("good_transactions", "bad_transactions"):
            for transaction in round_.get("transactions", {}).get(kind, []):
                stamp = str(transaction.get("timestamp", ""))
                try:
                    when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                except ValueError:
                    continue
                if when < oldest:
                    fail(
                        rules.SIX_MONTHS_ONLY,
                        "a transaction older than six months is returned",
                        received=f"round {round_.get('round_id')}: timestamp {stamp}",
                        documented=f"history reaches back six months (nothing before "
                        f"{oldest:%Y-%m-%d})",
                        curl=sinatra.curl(response),
                    )


@pytest.mark.parametrize("operation", BOTH)
@covers(rules.OLD_FROM_CLAMPED)
def test_history_older_from_is_clamped(sinatra: Sinatra, operation: str) -> None:
    now = sinatra.now()  # the target's: its clock may be ahead (D175)
    to = now.date().isoformat()
    old = fetch(sinatra, operation, {"from": (now - timedelta(days=400)).date().isoformat(),
                                     "to": to})
    body = _ok(sinatra, rules.OLD_FROM_CLAMPED, old, "`from` a year ago")
    limit = months_before(now, 6).date().isoformat()
    clamped = fetch(sinatra, operation, {"from": limit, "to": to})
    expected = _ok(sinatra, rules.OLD_FROM_CLAMPED, clamped, "`from` six months ago")
    got = set(transaction_ids(rounds_of(operation, body)))
    want = set(transaction_ids(rounds_of(operation, expected)))
    if got != want:
        fail(
            rules.OLD_FROM_CLAMPED,
            "`from` a year ago does not answer the six-month window",
            received=f"{len(got)} transactions ({len(got - want)} not in the six-month window)",
            documented=f"the {len(want)} transactions of from={limit} (D19: clamped)",
            curl=sinatra.curl(old),
        )


@pytest.mark.parametrize("operation", BOTH)
@covers(rules.FROM_TO_PAIRED)
def test_from_and_to_go_together(sinatra: Sinatra, operation: str) -> None:
    for params in ({"from": days_ago(3)}, {"to": days_ago(1)}):
        response = fetch(sinatra, operation, params)
        sinatra.expect(rules.FROM_TO_PAIRED, response, 422, err="Invalid parameters",
                       what=f"only `{next(iter(params))}`")


@pytest.mark.parametrize("operation", BOTH)
@covers(rules.TIME_PERIODS_ACCEPTED)
def test_each_time_period_is_accepted(sinatra: Sinatra, operation: str) -> None:
    for period in TIME_PERIODS:
        response = fetch(sinatra, operation, {"time_period": period})
        sinatra.expect(rules.TIME_PERIODS_ACCEPTED, response, 200, what=f"time_period={period!r}")


@pytest.mark.parametrize("operation", BOTH)
@covers(rules.UNKNOWN_TIME_PERIOD_400)
def test_unknown_time_period_is_400(sinatra: Sinatra, operation: str) -> None:
    response = fetch(sinatra, operation, {"time_period": "last 3 fortnights"})
    sinatra.expect(rules.UNKNOWN_TIME_PERIOD_400, response, 400,
                   what="time_period='last 3 fortnights'")


@pytest.mark.parametrize("operation", BOTH)
@covers(rules.ROUND_IDS_FILTER)
def test_round_ids_returns_only_those_rounds(sinatra: Sinatra, operation: str) -> None:
    window = {"from": days_ago(29), "to": today_utc().isoformat()}
    everything = fetch(sinatra, operation, window)
    known = [str(r["round_id"]) for r in rounds_of(operation, body_of(everything))]
    if everything.status_code != 200 or not known:
        not_verified(f"no round in the last 30 days to filter on ({summarize(everything)})")
    chosen = sorted(set(known[:: max(1, len(known) // 3)][:3]))
    asked = [*chosen, "no-such-round-42"]
    response = fetch(sinatra, operation, {**window, "round_ids": ",".join(asked)})
    body = _ok(sinatra, rules.ROUND_IDS_FILTER, response, f"round_ids={','.join(asked)}")
    returned = {str(r.get("round_id")) for r in rounds_of(operation, body)}
    if returned != set(chosen):
        fail(
            rules.ROUND_IDS_FILTER,
            "round_ids does not select exactly the listed rounds",
            received=f"rounds {sorted(returned)[:6]}{' …' if len(returned) > 6 else ''} "
            f"({len(returned)})",
            documented=f"rounds {chosen} (the listed ones that exist)",
            curl=sinatra.curl(response),
        )
