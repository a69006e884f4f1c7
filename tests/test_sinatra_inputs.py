"""Issue 13: the Sinatra mock at the edges of its inputs, over real HTTP.

Every date the contract's `format: date` admits (0001-01-01 to 9999-12-31) gets a 200 or the
documented 4xx, also with the service clock at either end of its range (D72, D73); integers in
the query follow D71; Basic credentials that are not base64 or not UTF-8 are the documented 401.
Every answer also goes through the contract hook of conftest.py.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD, SEEDED_OPERATOR_ID
from pepharness.mocks.sinatra import create_app

if TYPE_CHECKING:
    from conftest import SinatraClient


CATALOG = "/games/1.0/view/detailed"
HISTORY = "/transactions/1.0/games/history"
HISTORY_API = "/transactions/1.0/games/history/api"
OPERATOR = (OPERATOR_EMAIL, OPERATOR_PASSWORD)
BAD_REQUEST = (400, {"errMsg": "Bad Request"})
INVALID = (422, {"errMsg": "Invalid parameters"})
UNAUTHORIZED = (401, {"errMsg": "unauthorized"})
CLOCK_ENDS = ["1970-01-01T00:00:00+23:59", "9998-12-31T23:59:59-23:59"]
"""The earliest and latest clocks `POST /__admin/clock` takes (D73)."""

FAR_WINDOWS = [
    ("0001-01-01", "0001-01-01"),
    ("0001-01-01", "9999-12-31"),
    ("2026-01-01", "9999-12-31"),
    ("9999-12-31", "9999-12-31"),
    ("2100-01-01", "2100-01-02"),
]
IMPOSSIBLE_DATES = [
    "2026-02-30", "2025-02-29", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32",
    "0000-01-01", "10000-01-01", "2026-1-01", "+2026-01-01", "2026-01-01T00:00:00Z",
    "\uff12\uff10\uff12\uff16-01-01", "2026-01-01 ",
]  # fmt: skip


@pytest.fixture(scope="module")
def sinatra_app() -> Flask:
    """A small mock (200 rounds): these tests are about inputs, not data."""
    return create_app({"SEED": 42, "ROUNDS": 200})


def status_and_body(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


def unlimited(sinatra: SinatraClient) -> None:
    """Many paginated-history requests in one test: lift the 5-a-second limit (D26)."""
    sinatra.rate_limit(1_000_000, 1)


def both_histories(sinatra: SinatraClient, params: dict[str, str]) -> list[tuple[int, Any]]:
    token = sinatra.as_user()
    return [
        status_and_body(sinatra.get(HISTORY_API, auth=OPERATOR, params=params)),
        status_and_body(sinatra.get(HISTORY, headers=token, params=params)),
    ]


def test_far_dates_are_200_and_a_later_to_ends_the_window_now(sinatra: SinatraClient) -> None:
    unlimited(sinatra)
    for first, last in FAR_WINDOWS:
        for status, _ in both_histories(sinatra, {"from": first, "to": last}):
            assert status == 200, (first, last)
    today = sinatra.now().date().isoformat()
    since = (sinatra.now().date() - timedelta(days=30)).isoformat()
    until_today = sinatra.get(HISTORY_API, auth=OPERATOR, params={"from": since, "to": today})
    until_far = sinatra.get(HISTORY_API, auth=OPERATOR, params={"from": since, "to": "9999-12-31"})
    assert until_today.status_code == until_far.status_code == 200
    assert until_far.json()["total_count"] == until_today.json()["total_count"] > 0


def test_impossible_dates_are_400_and_from_after_to_422(sinatra: SinatraClient) -> None:
    unlimited(sinatra)
    for text in IMPOSSIBLE_DATES:
        assert both_histories(sinatra, {"from": text, "to": "2026-03-01"}) == [BAD_REQUEST] * 2
        assert both_histories(sinatra, {"from": "2026-01-01", "to": text}) == [BAD_REQUEST] * 2
    # D17: a window that ends before it starts is parsed, then refused.
    assert both_histories(sinatra, {"from": "9999-12-31", "to": "0001-01-01"}) == [INVALID] * 2
    token = sinatra.as_user()
    for text in ("0001-01-01", "9999-12-31"):
        assert sinatra.get(CATALOG, headers=token, params={"date_from": text}).status_code == 200
    for text in ("2026-02-30", "0000-01-01", "10000-01-01"):
        answer = sinatra.get(CATALOG, headers=token, params={"date_from": text})
        assert status_and_body(answer) == BAD_REQUEST, text


def test_the_clock_at_either_end_of_its_range(sinatra: SinatraClient) -> None:
    unlimited(sinatra)
    periods = ["today", "yesterday", "last 7 days", "last 30 days"]
    for when in CLOCK_ENDS:
        sinatra.admin("POST", "/clock", json={"set": when})
        for period in periods:
            for status, _ in both_histories(sinatra, {"time_period": period}):
                assert status == 200, (when, period)
        for first, last in FAR_WINDOWS:
            for status, _ in both_histories(sinatra, {"from": first, "to": last}):
                assert status == 200, (when, first, last)
        for status, _ in both_histories(sinatra, {"from": "", "to": ""}):
            assert status == 200, when


def test_integers_in_the_query(sinatra: SinatraClient) -> None:
    """D71: an optional sign, ASCII digits, at most 18 significant digits; else 400."""
    unlimited(sinatra)
    accepted = ["1", "+1", "007", "0" * 5000 + "1", "9" * 18, "0" + "9" * 18]
    malformed = [
        "9" * 19, "1" + "0" * 18, "1e3", "1E3", "1.0", "0x10", " 1", "1 ", "", "\u0661", "²",
        "\uff11", "--1", "+-1", "1_000", "99999999999999999999999999999999999999",
        "9" * 5000,
    ]  # fmt: skip
    for text in accepted:
        answer = sinatra.get(HISTORY_API, auth=OPERATOR, params={"page_number": text})
        assert answer.status_code == 200, text
        assert answer.json()["page_num"] == int(text.lstrip("+0") or "0")
    for name in ("page_number", "page_size"):
        for text in malformed:
            answer = sinatra.get(HISTORY_API, auth=OPERATOR, params={name: text})
            assert status_and_body(answer) == BAD_REQUEST, (name, text)
        # The seed: "a number greater than 0"; a parsed number below 1 is 422 (D17).
        for text in ("0", "-1", "-" + "9" * 18):
            answer = sinatra.get(HISTORY_API, auth=OPERATOR, params={name: text})
            assert status_and_body(answer) == INVALID, (name, text)
    token = sinatra.as_user()
    own = "0" * 20 + str(SEEDED_OPERATOR_ID)
    for path in (CATALOG, HISTORY):
        assert sinatra.get(path, headers=token, params={"operator_id": own}).status_code == 200
        for text in malformed:
            answer = sinatra.get(path, headers=token, params={"operator_id": text})
            assert status_and_body(answer) == BAD_REQUEST, (path, text)


def basic(raw: bytes) -> dict[str, bytes]:
    return {"Authorization": b"Basic " + base64.b64encode(raw)}


def test_malformed_basic_credentials_are_401(sinatra: SinatraClient) -> None:
    """D24: whatever the Authorization header holds, a credential that is not a Sinatra user's
    is 401 with the Basic challenge, never a 500."""
    headers: list[dict[str, bytes]] = [
        basic(b"\xff\xfe:\x80"),  # not UTF-8
        basic(b"\xed\xa0\x80:x"),  # an encoded lone surrogate
        basic(OPERATOR_EMAIL.encode() + b":" + OPERATOR_PASSWORD.encode() + b"\xff"),
        basic(b"no colon"),
        basic(b"\x00:\x00"),
        basic(b":"),
        {"Authorization": b"Basic \xff\xfe"},  # not base64, not even ASCII
        {"Authorization": "Basic ☃".encode()},
        {"Authorization": b"Basic ====="},
        {"Authorization": b"Basic YQ"},  # unpadded
        {"Authorization": b"Basic"},
        {"Authorization": b"Basic  "},
        {"Authorization": b"Bearer x"},
        {"Authorization": b""},
    ]
    for header in headers:
        answer = sinatra.get(HISTORY_API, headers=header)
        assert status_and_body(answer) == UNAUTHORIZED, header
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="sinatra"'


def test_a_far_clock_still_issues_working_tokens(sinatra: SinatraClient) -> None:
    for when in CLOCK_ENDS:
        sinatra.admin("POST", "/clock", json={"set": when})
        token = sinatra.as_user()
        assert sinatra.get(HISTORY, headers=token).status_code == 200
        assert sinatra.get(CATALOG, headers=token).status_code == 200
