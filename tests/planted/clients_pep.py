"""Deliberately broken clients of the PEP's gateways: each breaks ONE client rule of
suites/clients/pep_platform.py or pep_frontend.py, which the judge must then fail by name.

A planted client is a small function of the PEP's base URL (and, for the Frontend, an identity
token of the operator mock) doing what a careless integrator would; the test programmes the
mock's misbehaviour first (a fault, a tight data-fetch limit) when the rule needs one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import socketio

from pepharness.mocks.pep import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

TIMEOUT = 10
MONEY = "/rx-api/transactions/v1/money-transaction"
FETCH = "/api/data-fetch/v1/transactions"
ME = "/api/players/v1/me"
PLAYER = "877018"
BULK = "/api/players-data/v1/migrate/batch"


def token(url: str) -> str:
    grant = requests.post(
        url + "/api/oauth/v1/token",
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=TIMEOUT,
    )
    grant.raise_for_status()
    return str(grant.json()["access_token"])


def deposit(transaction_id: str, amount: int = 60) -> dict[str, Any]:
    return {
        "playerId": PLAYER,
        "amount": amount,
        "exchangeRate": 1,
        "currency": "EUR",
        "date": "2026-12-01T10:00:00Z",
        "transactionStatus": "APPROVED",
        "transactionType": "DEPOSIT",
        "transactionId": transaction_id,
        "realMoneyBalance": amount,
        "bonusMoneyBalance": 0,
    }


def send(url: str, bearer: str, body: dict[str, Any]) -> int:
    return requests.post(
        url + MONEY, json=body, headers={"Authorization": f"Bearer {bearer}"}, timeout=TIMEOUT
    ).status_code


def fetch(url: str, bearer: str, **params: Any) -> requests.Response:
    return requests.get(
        url + FETCH, params=params, headers={"Authorization": f"Bearer {bearer}"}, timeout=TIMEOUT
    )


# -- the Platform gateway ----------------------------------------------------------------------


def token_per_event(url: str, prefix: str, _identity: str) -> None:
    for n in range(3):
        send(url, token(url), deposit(f"{prefix}-{n}"))


def retry_with_new_transaction_id(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    if send(url, bearer, deposit(f"{prefix}-1")) >= 500:  # the test's 503
        send(url, bearer, deposit(f"{prefix}-1-again"))


def ignores_a_503s_retry_after(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    body = deposit(f"{prefix}-1")
    if send(url, bearer, body) == 503:  # the test's 503, "come back in 30 s"
        time.sleep(0.15)  # a backoff of its own, blind to Retry-After
        send(url, bearer, body)


def new_transaction_id_after_a_timeout(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    headers = {"Authorization": f"Bearer {bearer}"}
    try:  # the test's 1.5 s latency: this client waits 0.3 s
        requests.post(url + MONEY, json=deposit(f"{prefix}-1"), headers=headers, timeout=0.3)
    except requests.Timeout:
        send(url, bearer, deposit(f"{prefix}-1-again"))


def oversize_bulk_sync(url: str, prefix: str, _identity: str) -> None:
    players = [{"playerId": f"{prefix}-{n}", "registrationDate": "2026-01-01T00:00:00Z"}
               for n in range(20_001)]  # one over the documented chunk
    requests.post(url + BULK, json={"players": players}, timeout=TIMEOUT,
                  headers={"Authorization": f"Bearer {token(url)}"})


def retries_a_400(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    body = deposit(f"{prefix}-1")
    if send(url, bearer, body) == 400:  # the test's 400
        send(url, bearer, body)


def no_backoff_after_503(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    body = deposit(f"{prefix}-1")
    for _ in range(6):
        if send(url, bearer, body) < 500:
            return


def ignores_next(url: str, _prefix: str, _identity: str) -> None:
    bearer = token(url)
    for _ in range(2):
        fetch(url, bearer, limit=1)  # never reads `next`: the first page twice


def stops_before_the_end(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    for n in range(2):
        send(url, bearer, deposit(f"{prefix}-{n}"))
    page = fetch(url, bearer, limit=1)  # two items: `next` is not null, and is never asked for
    assert page.json()["next"]


def hammers_the_data_fetch(url: str, _prefix: str, _identity: str) -> None:
    bearer = token(url)
    for _ in range(4):  # the test's limit is 1 in 30 s: a 429, then no wait
        fetch(url, bearer, limit=1)


def identity_token_to_the_platform(url: str, prefix: str, identity: str) -> None:
    send(url, identity, deposit(f"{prefix}-1"))


def keeps_a_dead_platform_token(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    body = deposit(f"{prefix}-1")
    if send(url, bearer, body) == 401:  # the test's 401
        send(url, bearer, body)


def changes_the_body_under_a_key(url: str, prefix: str, _identity: str) -> None:
    bearer = token(url)
    send(url, bearer, deposit(f"{prefix}-1", 60))
    send(url, bearer, deposit(f"{prefix}-1", 70))


def sends_an_invalid_event(url: str, prefix: str, _identity: str) -> None:
    body = deposit(f"{prefix}-1")
    del body["currency"]
    send(url, token(url), body)


# -- the Frontend gateway ----------------------------------------------------------------------


def login(url: str, identity: str) -> str:
    answer = requests.post(
        url + "/api/auth/v1/player",
        json={"identityToken": identity, "clientId": DEMO_CLIENT_ID},
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    return str(answer.json()["accessToken"])


def keeps_a_dead_frontend_token(url: str, _prefix: str, identity: str) -> None:
    jwt = login(url, identity)
    for _ in range(2):  # the test's 401 first, then the same JWT again
        requests.get(url + ME, headers={"x-authorization": jwt}, timeout=TIMEOUT)


def identity_token_to_the_frontend(url: str, _prefix: str, identity: str) -> None:
    requests.get(url + ME, headers={"x-authorization": identity}, timeout=TIMEOUT)


def socket_connect(url: str, auth: dict[str, str] | None) -> None:
    """One Socket.IO connect (refused or not), then gone."""
    browser = socketio.Client(reconnection=False)
    try:
        browser.connect(url, auth=auth, wait_timeout=TIMEOUT)
    except socketio.exceptions.ConnectionError:
        return  # refused: the judge reads the attempt
    browser.disconnect()


def socket_without_token(url: str, _prefix: str, identity: str) -> None:
    login(url, identity)  # a session, whose JWT the socket never gets
    socket_connect(url, None)


def socket_with_identity_token(url: str, _prefix: str, identity: str) -> None:
    socket_connect(url, {"token": identity})


@dataclass(frozen=True)
class PlantedClient:
    name: str
    run: Callable[[str, str, str], None]
    breaks: str
    """The rule the judge must fail."""
    faults: tuple[dict[str, Any], ...] = ()
    """`/__admin/faults` rules the test programmes first."""
    fetch_limit: tuple[int, float] | None = None
    """The data fetch's limit and period for the run (tighter than the seeded 100 a minute)."""


PLATFORM = "pep_platform"
FRONTEND = "pep_frontend"

CLIENTS: dict[str, tuple[str, PlantedClient]] = {
    client.name: (api, client)
    for api, client in (
        (PLATFORM, PlantedClient(
            "token_per_event", token_per_event, "check_client_platform_token_reused")),
        (PLATFORM, PlantedClient(
            "retry_with_new_transaction_id", retry_with_new_transaction_id,
            "check_client_platform_retry_same_event",
            ({"path": MONEY, "status": 503, "times": 1},))),
        (PLATFORM, PlantedClient(
            "ignores_a_503s_retry_after", ignores_a_503s_retry_after,
            "check_client_platform_waits_retry_after_on_5xx",
            ({"path": MONEY, "status": 503, "times": 1, "headers": {"Retry-After": "30"}},))),
        (PLATFORM, PlantedClient(
            "new_transaction_id_after_a_timeout", new_transaction_id_after_a_timeout,
            "check_client_platform_retry_same_event",
            ({"path": MONEY, "latency_ms": 1500, "times": 1},))),
        (PLATFORM, PlantedClient(
            "oversize_bulk_sync", oversize_bulk_sync,
            "check_client_platform_bulk_sync_within_size")),
        (PLATFORM, PlantedClient(
            "retries_a_400", retries_a_400, "check_client_platform_never_retries_a_4xx",
            ({"path": MONEY, "status": 400, "times": 1},))),
        (PLATFORM, PlantedClient(
            "no_backoff_after_503", no_backoff_after_503, "check_client_platform_retry_backoff",
            ({"path": MONEY, "status": 503, "times": 4},))),
        (PLATFORM, PlantedClient(
            "ignores_next", ignores_next, "check_client_platform_fetch_follows_next")),
        (PLATFORM, PlantedClient(
            "stops_before_the_end", stops_before_the_end,
            "check_client_platform_fetch_follows_next")),
        (PLATFORM, PlantedClient(
            "hammers_the_data_fetch", hammers_the_data_fetch,
            "check_client_platform_fetch_honours_retry_after", fetch_limit=(1, 30.0))),
        (PLATFORM, PlantedClient(
            "identity_token_to_the_platform", identity_token_to_the_platform,
            "check_client_platform_sends_its_oauth_token")),
        (PLATFORM, PlantedClient(
            "keeps_a_dead_platform_token", keeps_a_dead_platform_token,
            "check_client_platform_new_token_after_401",
            ({"path": MONEY, "status": 401, "times": 1},))),
        (PLATFORM, PlantedClient(
            "changes_the_body_under_a_key", changes_the_body_under_a_key,
            "check_client_platform_key_keeps_its_body")),
        (PLATFORM, PlantedClient(
            "sends_an_invalid_event", sends_an_invalid_event,
            "check_client_platform_events_are_valid")),
        (FRONTEND, PlantedClient(
            "keeps_a_dead_frontend_token", keeps_a_dead_frontend_token,
            "check_client_frontend_logs_in_again_after_401",
            ({"path": ME, "status": 401, "times": 1},))),
        (FRONTEND, PlantedClient(
            "socket_without_token", socket_without_token,
            "check_client_frontend_socketio_connects_with_the_token")),
        (FRONTEND, PlantedClient(
            "socket_with_identity_token", socket_with_identity_token,
            "check_client_frontend_socketio_connects_with_the_token")),
        (FRONTEND, PlantedClient(
            "identity_token_to_the_frontend", identity_token_to_the_frontend,
            "check_client_frontend_sends_the_pep_jwt")),
    )
}
