"""Planted-fault Sinatra clients: each breaks ONE client rule of suites/clients/sinatra.py.

Each is `client(url, admin)`: `url` the mock's base URL, `admin(method, path, body)` its
`/__admin` API (to move the clock or tighten the rate limit, never to sleep). They send what a
careless integrator's job would, and nothing else; tests/test_clients_sinatra.py judges their
traffic and expects the verdict to fail by the rule named in PLANTED.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD

Admin = Callable[[str, str, Any], Any]
TIMEOUT = 10
BASIC = (OPERATOR_EMAIL, OPERATOR_PASSWORD)
CATALOG = "/vendors/1.0/view/available"
GAMES = "/games/1.0/view/detailed"
HISTORY = "/transactions/1.0/games/history/api"
WINDOW = {"time_period": "last 30 days"}
PAGE_SIZE = 10


def login(url: str) -> str:
    answer = requests.post(
        f"{url}/1.0/login/", json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD},
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    return answer.headers["jwt-auth"]


def catalog(url: str, token: str, path: str = CATALOG) -> requests.Response:
    return requests.get(f"{url}{path}", headers={"jwt-auth": token}, timeout=TIMEOUT)


def page(url: str, number: int, **params: Any) -> requests.Response:
    query = {**WINDOW, "page_size": PAGE_SIZE, "page_number": number, **params}
    return requests.get(f"{url}{HISTORY}", params=query, auth=BASIC, timeout=TIMEOUT)


def last_page(url: str) -> int:
    total = page(url, 1).json()["total_count"]
    return max(1, -(-total // PAGE_SIZE))


def logs_in_per_request(url: str, admin: Admin) -> None:
    for path in (CATALOG, GAMES):
        catalog(url, login(url), path)


def keeps_an_expired_token(url: str, admin: Admin) -> None:
    token = login(url)
    catalog(url, token)
    admin("POST", "/clock", {"advance_seconds": 21 * 60})
    catalog(url, token)  # 401: expired
    catalog(url, token)  # and again


def resends_a_token_after_401(url: str, admin: Admin) -> None:
    token = login(url)
    admin("POST", "/faults", {"path": CATALOG, "status": 401, "times": 1})
    catalog(url, token)  # the programmed 401
    catalog(url, token, GAMES)  # the dead token again


def ignores_retry_after(url: str, admin: Admin) -> None:
    admin("POST", "/rate-limit", {"limit": 1, "period_seconds": 60})
    try:
        page(url, 1)
        page(url, 2)  # 429, Retry-After about a minute
        page(url, 2)  # at once
    finally:
        admin("POST", "/rate-limit", {"limit": 1000, "period_seconds": 1})


def skips_a_page(url: str, admin: Admin) -> None:
    assert last_page(url) >= 3
    page(url, 3)


def repeats_a_page(url: str, admin: Admin) -> None:
    last = last_page(url)
    assert last >= 2
    for number in (2, 2):
        page(url, number)


def pages_past_the_end(url: str, admin: Admin) -> None:
    last = last_page(url)
    for number in range(2, last + 2):
        page(url, number)


def basic_on_the_catalog(url: str, admin: Admin) -> None:
    requests.get(f"{url}{CATALOG}", auth=BASIC, timeout=TIMEOUT)


def from_without_to(url: str, admin: Admin) -> None:
    requests.get(
        f"{url}{HISTORY}", params={"from": "2026-01-01", "page_size": PAGE_SIZE}, auth=BASIC,
        timeout=TIMEOUT,
    )


def page_size_out_of_bounds(url: str, admin: Admin) -> None:
    page(url, 1, page_size=0)


def undocumented_parameter(url: str, admin: Admin) -> None:
    catalog(url, login(url), CATALOG + "?colour=red")


def ignores_a_503s_retry_after(url: str, admin: Admin) -> None:
    token = login(url)
    admin("POST", "/faults", {"path": CATALOG, "status": 503, "times": 1,
                              "headers": {"Retry-After": "30"}})
    if catalog(url, token).status_code == 503:  # "come back in 30 s"
        catalog(url, token)  # at once


PLANTED: dict[str, tuple[Callable[[str, Admin], None], str]] = {
    "logs_in_per_request": (logs_in_per_request, "check_client_reuses_its_token"),
    "keeps_an_expired_token": (
        keeps_an_expired_token, "check_client_renews_its_token_before_20_minutes"
    ),
    "resends_a_token_after_401": (
        resends_a_token_after_401, "check_client_drops_a_token_after_401"
    ),
    "ignores_retry_after": (ignores_retry_after, "check_client_honours_retry_after"),
    "skips_a_page": (skips_a_page, "check_client_walks_pages_in_order"),
    "repeats_a_page": (repeats_a_page, "check_client_never_repeats_a_page"),
    "pages_past_the_end": (pages_past_the_end, "check_client_stops_at_the_last_page"),
    "basic_on_the_catalog": (
        basic_on_the_catalog, "check_client_uses_basic_only_on_the_paginated_history"
    ),
    "from_without_to": (from_without_to, "check_client_sends_from_and_to_together"),
    "page_size_out_of_bounds": (page_size_out_of_bounds, "check_client_page_size_within_bounds"),
    "undocumented_parameter": (undocumented_parameter, "check_client_requests_match_the_contract"),
    "ignores_a_503s_retry_after": (
        ignores_a_503s_retry_after, "check_client_waits_retry_after_on_5xx"
    ),
}
"""name -> (client, the one rule it breaks)."""
