"""The reference PEP's Platform gateway over real HTTP: OAuth 2.0 client credentials, events
stored before their 202 and counted once, the bulk sync and its feedback, the data fetch."""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import brotli
import jwt
import pytest
import requests

from pepharness import contracts
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.clock import parse_rfc3339

if TYPE_CHECKING:
    from conftest import MockClient

TOKEN = "/api/oauth/v1/token"
MONEY = "/rx-api/transactions/v1/money-transaction"
ROUND = "/rx-api/transactions/v1/game-transaction-round"
REGISTRATION = "/rx-api/players-data/v1/registration"
LOGIN = "/rx-api/players-data/v1/login"
TAGS = "/rx-api/players-data/v1/tags/upsert"
MIGRATE = "/api/players-data/v1/migrate/batch"
PLAYERS = "/api/data-fetch/v1/players"
TRANSACTIONS = "/api/data-fetch/v1/transactions"
CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"


@pytest.fixture
def platform(pep: MockClient, pep_server: ThreadedServer) -> Iterator[MockClient]:
    """A client of the module's PEP, checked against contracts/pep-platform.yaml."""
    from conftest import MockClient

    client = MockClient(pep_server.url, "pep-platform")
    yield client
    client.session.close()


def token(platform: MockClient, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    answer = platform.post(TOKEN, data=form, auth=(CLIENT, SECRET))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def bearer(platform: MockClient, scope: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(platform, scope)}"}


def deposit(transaction_id: str = "t-1", **changes: Any) -> dict[str, Any]:
    return {
        "playerId": "p-1", "amount": 100, "exchangeRate": 1.0, "date": "2026-11-20T10:00:00Z",
        "currency": "EUR", "transactionStatus": "APPROVED", "transactionType": "DEPOSIT",
        "transactionId": transaction_id, "realMoneyBalance": 100, "bonusMoneyBalance": 0,
        **changes,
    }


def bet(transaction_id: str, kind: str = "BET", **changes: Any) -> dict[str, Any]:
    return {
        "playerId": "p-1", "realMoneyAmount": 10, "bonusMoneyAmount": 0, "exchangeRate": 1,
        "date": "2026-11-20T10:05:00Z", "currency": "EUR", "transactionStatus": "APPROVED",
        "transactionType": kind, "transactionId": transaction_id, "gameCategoryId": 1,
        "gameCategoryName": "Slots", "gameProviderId": "7", "gameProviderName": "Prov",
        "gameId": "80001", "gameName": "Omega 1", "gameSessionId": "s-1",
        "realMoneyBalance": 90, "bonusMoneyBalance": 0, **changes,
    }


# -- OAuth 2.0 client credentials ----------------------------------------------------------------


def test_token_by_basic_has_rfc6749_shape(platform: MockClient) -> None:
    answer = platform.post(TOKEN, data={"grant_type": "client_credentials"}, auth=(CLIENT, SECRET))
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert set(body["scope"].split()) == {"events:write", "players:sync", "data:read"}
    assert "refresh_token" not in body
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Pragma"] == "no-cache"


def test_token_by_form_credentials(platform: MockClient) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
    assert platform.post(TOKEN, data=form).status_code == 200


def test_token_by_the_vendors_json_shape(platform: MockClient) -> None:
    answer = platform.post(TOKEN, json={"clientId": CLIENT, "clientSecret": SECRET})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) >= {"accessToken", "tokenType", "expiresIn"}
    assert answer.headers["Cache-Control"] == "no-store"


def test_both_client_authentications_is_invalid_request(platform: MockClient) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
    answer = platform.post(TOKEN, data=form, auth=(CLIENT, SECRET))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("form", "auth"),
    [
        ({"grant_type": "client_credentials"}, (CLIENT, "wrong")),
        ({"grant_type": "client_credentials"}, ("nobody", "x")),
        ({"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "no"}, None),
        ({"grant_type": "client_credentials"}, None),
    ],
    ids=["basic-wrong-secret", "basic-unknown-client", "form-wrong-secret", "no-credentials"],
)
def test_invalid_client_is_401_with_challenge(
    platform: MockClient, form: dict[str, str], auth: tuple[str, str] | None
) -> None:
    answer = platform.post(TOKEN, data=form, auth=auth)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "everything"}, "invalid_scope"),
    ],
)
def test_rfc6749_errors(platform: MockClient, form: dict[str, str], error: str) -> None:
    answer = platform.post(TOKEN, data=form, auth=(CLIENT, SECRET))
    assert answer.status_code == 400
    assert answer.json()["error"] == error


MALFORMED_BASIC = {
    "not-utf8": b"Basic " + base64.b64encode(b"\xff\xfe:secret"),
    "latin1-bytes-in-header": b"Basic \xff\xfe",
    "not-base64": b"Basic !!!not-base64!!!",
    "no-colon": b"Basic " + base64.b64encode(b"pep-demo-client"),
    "percent-encoded-not-utf8": b"Basic " + base64.b64encode(b"%FF:%FE"),
}


@pytest.mark.parametrize("header", list(MALFORMED_BASIC.values()), ids=list(MALFORMED_BASIC))
def test_malformed_basic_credentials_are_invalid_client(
    platform: MockClient, header: bytes
) -> None:
    answer = platform.post(TOKEN, data={"grant_type": "client_credentials"},
                           headers={"Authorization": header})  # type: ignore[dict-item]
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ("grant_type=client_credentials&grant_type=password", None),
        ("grant_type=client_credentials&scope=data:read&scope=events:write", None),
        ("grant_type=client_credentials", [("scope", "a"), ("scope", "b")]),
    ],
    ids=["grant_type-in-form", "scope-in-form", "in-query"],
)
def test_repeated_parameter_is_invalid_request(
    platform: MockClient, body: str, params: list[tuple[str, str]] | None
) -> None:
    answer = platform.post(TOKEN, data=body, params=params, auth=(CLIENT, SECRET),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert "more than once" in answer.json()["error_description"]


def test_frontend_only_client_is_unauthorized_client(platform: MockClient) -> None:
    platform.admin("POST", "/clients", json={
        "clientId": "fe-only", "clientSecret": "fe-secret", "gateways": ["frontend"]})
    answer = platform.post(TOKEN, data={"grant_type": "client_credentials"},
                           auth=("fe-only", "fe-secret"))
    assert answer.status_code == 400
    assert answer.json()["error"] == "unauthorized_client"


def test_token_expires_on_the_service_clock(platform: MockClient) -> None:
    access = token(platform)
    headers = {"Authorization": f"Bearer {access}"}
    claims = jwt.decode(access, options={"verify_signature": False})
    # An hour, in whole seconds: `exp` is a NumericDate of whole seconds, so the token ends up
    # to a second before issue time + 3600; the clock is moved to it, not by 3599 s from when
    # the token happened to be issued (which crossed `exp` when issued late in a second).
    assert claims["exp"] - claims["iat"] == 3600
    assert platform.post(MONEY, json=deposit(), headers=headers).status_code == 202
    now = parse_rfc3339(platform.admin("GET", "/clock")["now"]).timestamp()
    platform.advance(claims["exp"] - 1 - now)  # a second before exp, on the service's clock
    assert platform.post(MONEY, json=deposit("t-2"), headers=headers).status_code == 202
    platform.advance(2)
    answer = platform.post(MONEY, json=deposit("t-3"), headers=headers)
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_missing_token_is_401_without_error_code(platform: MockClient) -> None:
    answer = platform.post(MONEY, json=deposit())
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="pep-platform"'
    assert answer.json()["error"] == "missing_token"


def test_scope_separates_reads_from_ingestion(platform: MockClient) -> None:
    reader = bearer(platform, "data:read")
    answer = platform.post(MONEY, json=deposit(), headers=reader)
    assert answer.status_code == 403
    assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
    writer = bearer(platform, "events:write")
    assert platform.get(PLAYERS, headers=writer).status_code == 403
    assert platform.get(PLAYERS, headers=reader).status_code == 200


def test_frontend_token_does_not_open_the_platform(
    platform: MockClient, pep: MockClient, operator: MockClient
) -> None:
    identity = operator.admin("GET", "/tokens")["tokens"][0]["identityToken"]
    login = pep.post("/api/auth/v1/player", json={"identityToken": identity, "clientId": CLIENT})
    player_token = login.json()["accessToken"]
    as_player = {"Authorization": f"Bearer {player_token}"}
    answer = platform.post(MONEY, json=deposit(), headers=as_player)
    assert answer.status_code == 401
    # …and a Platform token does not open the Frontend.
    me = pep.get("/api/players/v1/me", headers={"x-authorization": token(platform)})
    assert me.status_code == 401


# -- events ---------------------------------------------------------------------------------------


def _stored_keys(pep_database: str) -> list[str]:
    with sqlite3.connect(pep_database) as connection:
        return [row[0] for row in connection.execute(
            "SELECT event_key FROM platform_events ORDER BY seq")]


def test_event_is_stored_before_its_202(platform: MockClient, pep_database: str) -> None:
    answer = platform.post(MONEY, json=deposit("durable-1"), headers=bearer(platform))
    assert answer.status_code == 202
    assert answer.json() == {"status": "accepted", "eventId": answer.json()["eventId"],
                             "duplicate": False}
    # Read from the file by another connection, right after the answer.
    assert "money:durable-1:APPROVED" in _stored_keys(pep_database)


def test_repeated_event_is_acknowledged_and_stored_once(
    platform: MockClient, pep_database: str
) -> None:
    headers = bearer(platform)
    first = platform.post(MONEY, json=deposit("again-1"), headers=headers)
    second = platform.post(MONEY, json=deposit("again-1", amount=999), headers=headers)
    assert second.status_code == 202
    assert second.json()["duplicate"] is True
    assert second.json()["eventId"] == first.json()["eventId"]
    assert _stored_keys(pep_database).count("money:again-1:APPROVED") == 1


def test_round_is_one_event_per_transaction(platform: MockClient, pep_database: str) -> None:
    headers = bearer(platform)
    round_ = {"gameTransactionRound": [bet("r-1"), bet("r-1", "WIN", realMoneyAmount=25)]}
    answer = platform.post(ROUND, json=round_, headers=headers)
    assert answer.status_code == 202
    assert len(answer.json()["eventIds"]) == 2 and answer.json()["duplicates"] == 0
    again = platform.post(ROUND, json=round_, headers=headers)
    assert again.json()["duplicates"] == 2
    keys = _stored_keys(pep_database)
    assert keys.count("round:BET:r-1") == 1 and keys.count("round:WIN:r-1") == 1


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        (REGISTRATION, "POST", {"playerId": "p-9", "registrationDevice": "mobile",
                                "date": "2026-11-01T08:00:00Z"}),
        (LOGIN, "POST", {"playerId": "p-9", "date": "2026-11-02T08:00:00+01:00"}),
        (TAGS, "PATCH", {"playerId": "p-9", "tags": ["vip", "sports"]}),
    ],
)
def test_player_events_are_accepted(
    platform: MockClient, path: str, method: str, body: dict[str, Any]
) -> None:
    answer = platform.request(method, path, json=body, headers=bearer(platform))
    assert answer.status_code == 202, answer.text
    assert platform.request(method, path, json=body, headers=bearer(platform)).json()[
        "duplicate"] is True


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (MONEY, deposit(amount=-5), "amount"),
        (MONEY, deposit(transactionType="GIFT"), "transactionType"),
        (MONEY, deposit(date="yesterday"), "date"),
        (MONEY, deposit(currency="euro"), "currency"),
        (MONEY, {k: v for k, v in deposit().items() if k != "transactionId"}, "transactionId"),
        (ROUND, {"gameTransactionRound": []}, "gameTransactionRound"),
        (ROUND, {"gameTransactionRound": [bet("x", "CASHBACK")]},
         "gameTransactionRound[0].transactionType"),
        (ROUND, {"gameTransactionRound": [bet("x"), bet("y", playerId="other")]},
         "gameTransactionRound"),
        (LOGIN, {"playerId": "", "date": "2026-11-01T00:00:00Z"}, "playerId"),
        (REGISTRATION, [], "body"),
    ],
)
def test_invalid_event_is_400_naming_the_field(
    platform: MockClient, path: str, body: Any, field: str
) -> None:
    answer = platform.post(path, json=body, headers=bearer(platform))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert field in {problem["field"] for problem in answer.json()["errors"]}


@pytest.mark.parametrize(
    ("when", "status"),
    [
        ("0001-01-01T00:45:01+23:38", 400),  # st run's: before year 1 in UTC
        ("0001-01-01T05:00:00+01:00", 400),  # pep-platform.yaml DateTime: the day, east of UTC
        ("9999-12-31T23:59:59-23:59", 400),
        ("0001-01-01T00:00:00Z", 202),
        ("0001-01-01T05:00:00-01:00", 202),
        ("9999-12-31T23:59:59+01:00", 202),
    ],
)
def test_date_times_at_the_ends_of_the_calendar(
    platform: MockClient, when: str, status: int
) -> None:
    body = {"playerId": "p-ends", "registrationDevice": "web", "date": when}
    answer = platform.post(REGISTRATION, json=body, headers=bearer(platform))
    assert answer.status_code == status, answer.text
    assert (contracts.record_errors("pep-platform", "DateTime", when) == []) is (status == 202)


def test_event_body_not_json_is_400(platform: MockClient) -> None:
    headers = {**bearer(platform), "Content-Type": "application/json"}
    answer = platform.post(MONEY, data=b"{", headers=headers)
    assert answer.status_code == 400


# -- bulk player sync -----------------------------------------------------------------------------


def _players(count: int, bad: int = 0) -> list[dict[str, Any]]:
    players: list[dict[str, Any]] = [
        {"playerId": f"m-{i}", "registrationDate": "2026-01-01T00:00:00Z", "country": "MT",
         "currency": "EUR"}
        for i in range(count)
    ]
    for index in range(bad):
        players[index] = {"playerId": f"m-{index}", "registrationDate": "not a date"}
    return players


@pytest.mark.parametrize("encoding", ["gzip", "br", None])
def test_bulk_sync_reports_per_player_errors(
    platform: MockClient, operator: MockClient, encoding: str | None
) -> None:
    raw = json.dumps({"players": _players(50, bad=3)}).encode()
    data = {"gzip": gzip.compress, "br": brotli.compress, None: lambda b: b}[encoding](raw)
    headers = {**bearer(platform, "players:sync"), "Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    answer = platform.post(MIGRATE, data=data, headers=headers)
    assert answer.status_code == 202, answer.text
    report = answer.json()
    assert (report["received"], report["stored"], report["errorsTotal"]) == (50, 47, 3)
    assert [e["index"] for e in report["errors"]] == [0, 1, 2]
    assert all(e["field"] == "registrationDate" for e in report["errors"])
    task = platform.get(f"{MIGRATE}/{report['taskId']}", headers=headers)
    assert task.json()["taskId"] == report["taskId"]
    # The operator hears that the task ended (its feedback endpoint answers 204).
    deadline = time.monotonic() + 5
    while platform.get(f"{MIGRATE}/{report['taskId']}", headers=headers).json()[
            "feedback"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert platform.get(f"{MIGRATE}/{report['taskId']}", headers=headers).json()[
        "feedback"] == "delivered"
    received = operator.admin("GET", "/received")["received"]
    feedback = [r for r in received if r["path"] == "/api/players/v1/migration/feedback"]
    assert feedback[-1]["body"]["taskId"] == report["taskId"]
    assert feedback[-1]["body"]["storedCount"] == 47 and feedback[-1]["status"] == 204


def test_bulk_sync_of_20000_players_in_one_request(platform: MockClient) -> None:
    raw = gzip.compress(json.dumps({"players": _players(20_000)}).encode())
    headers = {**bearer(platform, "players:sync"), "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    answer = platform.post(MIGRATE, data=raw, headers=headers, timeout=60)
    assert answer.status_code == 202
    assert answer.json()["stored"] == 20_000 and answer.json()["errorsTotal"] == 0
    too_many = gzip.compress(json.dumps({"players": _players(20_001)}).encode())
    assert platform.post(MIGRATE, data=too_many, headers=headers, timeout=60).status_code == 400


def test_a_batch_with_invalid_players_fits_the_request_schema(platform: MockClient) -> None:
    # The README's own example: the second player has no registrationDate; a third is not even
    # an object. A validating proxy must let it through, as the endpoint accepts it.
    batch = {"players": [{"playerId": "m-1", "registrationDate": "2026-01-01T00:00:00Z"},
                         {"playerId": "m-2"}, 7]}
    assert contracts.record_errors("pep-platform", "MigrationBatch", batch) == []
    answer = platform.post(MIGRATE, json=batch, headers=bearer(platform, "players:sync"))
    assert answer.status_code == 202, answer.text
    assert [e["index"] for e in answer.json()["errors"]] == [1, 2]
    page = platform.get(PLAYERS, headers=bearer(platform, "data:read")).json()["items"]
    assert [p["registrationDate"] for p in page if p["playerId"] == "m-1"] == [
        "2026-01-01T00:00:00.000Z"]


def test_the_data_fetch_schemas_name_what_the_reference_sends() -> None:
    player = {"playerId": "p", "registrationDate": None, "country": None, "currency": None,
              "firstName": None, "lastName": None, "tags": [], "updatedAt": "2026-01-01T00:00:00Z"}
    assert contracts.record_errors("pep-platform", "DataPlayer", player) == []
    renamed = {**player, "registeredAt": player.pop("registrationDate")}
    assert contracts.record_errors("pep-platform", "DataPlayer", renamed) != []
    money = {"eventId": "1", "kind": "money", "receivedAt": "2026-01-01T00:00:00Z",
             **deposit()}
    assert contracts.record_errors("pep-platform", "DataTransaction", money) == []
    assert contracts.record_errors(
        "pep-platform", "DataTransaction", {**money, "kind": "gameTransaction"}) != []


@pytest.mark.parametrize(
    ("path", "body"),
    [(MONEY, deposit(playerId="p-\ud800")), (REGISTRATION, {"playerId": "p-1", "date":
      "2026-11-20T10:00:00Z", "registrationDevice": "\ud800"}),
     (MIGRATE, {"players": [{"playerId": "\ud800", "registrationDate": "2026-01-01T00:00:00Z"}]})],
    ids=["money", "registration", "sync"],
)
def test_a_lone_surrogate_in_a_body_is_400(
    platform: MockClient, path: str, body: dict[str, Any]
) -> None:
    answer = platform.post(path, data=json.dumps(body).encode(),
                           headers={**bearer(platform), "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text


def test_bulk_sync_unknown_encoding_is_415(platform: MockClient) -> None:
    headers = {**bearer(platform, "players:sync"), "Content-Type": "application/json",
               "Content-Encoding": "zstd"}
    assert platform.post(MIGRATE, data=b"{}", headers=headers).status_code == 415


# -- data fetch -----------------------------------------------------------------------------------


def _sync(platform: MockClient, count: int) -> None:
    headers = bearer(platform, "players:sync")
    answer = platform.post(MIGRATE, json={"players": _players(count)}, headers=headers)
    assert answer.status_code == 202


def test_pages_partition_the_players(platform: MockClient) -> None:
    _sync(platform, 57)
    headers = bearer(platform, "data:read")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 10, **({"next": cursor} if cursor else {})}
        page = platform.get(PLAYERS, params=params, headers=headers).json()
        assert len(page["items"]) <= 10
        seen += [item["playerId"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"m-{i}" for i in range(57))
    assert len(seen) == len(set(seen))


def test_delta_returns_only_later_changes(platform: MockClient) -> None:
    _sync(platform, 5)
    mark = platform.now()
    platform.advance(10)
    headers = bearer(platform, "events:write")
    for number in range(3):
        platform.post(MONEY, json=deposit(f"d-{number}"), headers=headers)
    reader = bearer(platform, "data:read")
    delta = mark.isoformat().replace("+00:00", "Z")
    items = platform.get(TRANSACTIONS, params={"delta": delta}, headers=reader).json()["items"]
    assert [item["transactionId"] for item in items] == ["d-0", "d-1", "d-2"]
    assert platform.get(PLAYERS, params={"delta": delta}, headers=reader).json()["items"] == []


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"next": "%%%"},
               {"next": base64.urlsafe_b64encode(b"transactions:1").decode()},
               {"delta": "yesterday"}, {"next": ""}, {"limit": "01"}, {"limit": "+5"},
               {"limit": "1e2"}, {"limit": "\u0661"}, {"limit": ["5", "6"]},
               {"next": base64.urlsafe_b64encode(b"players:99999999999999999999").decode()}],
)
def test_bad_fetch_parameters_are_400(platform: MockClient, params: dict[str, Any]) -> None:
    answer = platform.get(PLAYERS, params=params, headers=bearer(platform, "data:read"))
    assert answer.status_code == 400
    assert answer.json()["message"] == "invalid query parameters"


def test_data_fetch_is_limited_to_100_a_minute(platform: MockClient) -> None:
    headers = bearer(platform, "data:read")
    statuses = [platform.get(PLAYERS, params={"limit": 1}, headers=headers).status_code
                for _ in range(101)]
    assert statuses[:100] == [200] * 100 and statuses[100] == 429
    refused = platform.get(PLAYERS, headers=headers)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Policy"] == '"default";q=100;w=60'
    platform.advance(61)
    assert platform.get(PLAYERS, headers=headers).status_code == 200


def test_unknown_task_is_404(platform: MockClient) -> None:
    answer = platform.get(f"{MIGRATE}/nope", headers=bearer(platform, "players:sync"))
    assert answer.status_code == 404


def test_platform_reset_forgets_events(platform: MockClient, pep_database: str) -> None:
    platform.post(MONEY, json=deposit("gone-1"), headers=bearer(platform))
    platform.reset()
    assert _stored_keys(pep_database) == []


def test_pending_then_approved_is_two_events(platform: MockClient, pep_database: str) -> None:
    headers = bearer(platform)
    pending = platform.post(MONEY, json=deposit("two-step", transactionStatus="PENDING"),
                            headers=headers)
    approved = platform.post(MONEY, json=deposit("two-step"), headers=headers)
    assert pending.json()["duplicate"] is False and approved.json()["duplicate"] is False
    keys = _stored_keys(pep_database)
    assert {"money:two-step:PENDING", "money:two-step:APPROVED"} <= set(keys)


def test_a_task_is_its_clients_only(platform: MockClient) -> None:
    headers = bearer(platform, "players:sync")
    task = platform.post(MIGRATE, json={"players": _players(2)}, headers=headers).json()["taskId"]
    platform.admin("POST", "/clients", json={"clientId": "other", "clientSecret": "other-secret"})
    form = {"grant_type": "client_credentials", "scope": "players:sync"}
    other = platform.post(TOKEN, data=form, auth=("other", "other-secret")).json()["access_token"]
    answer = platform.get(f"{MIGRATE}/{task}", headers={"Authorization": f"Bearer {other}"})
    assert answer.status_code == 404


def test_registration_keeps_a_synced_profile(platform: MockClient) -> None:
    synced = {"playerId": "both-1", "registrationDate": "2026-01-01T00:00:00Z",
              "firstName": "Ada", "country": "MT"}
    platform.post(MIGRATE, json={"players": [synced]}, headers=bearer(platform, "players:sync"))
    platform.post(REGISTRATION, json={"playerId": "both-1", "registrationDevice": "web",
                                      "date": "2026-02-01T00:00:00Z"}, headers=bearer(platform))
    items = platform.get(PLAYERS, headers=bearer(platform, "data:read")).json()["items"]
    player = next(item for item in items if item["playerId"] == "both-1")
    assert (player["firstName"], player["country"]) == ("Ada", "MT")


def test_insufficient_scope_names_the_scope(platform: MockClient) -> None:
    answer = platform.post(MONEY, json=deposit(), headers=bearer(platform, "data:read"))
    assert 'scope="events:write"' in answer.headers["WWW-Authenticate"]


def test_the_engine_applies_events_exactly_and_says_so(platform: MockClient) -> None:
    headers = bearer(platform)
    for number, (amount, rate) in enumerate([(100, 1.0), (50, 1.1), (20, 0.5)]):
        body = deposit(f"agg-{number}", amount=amount, exchangeRate=rate, currency="USD")
        platform.post(MONEY, json=body, headers=headers)
    platform.post(MONEY, json=deposit("agg-0"), headers=headers)  # a retry: counted once
    platform.post(MONEY, json=deposit("agg-9", transactionStatus="REJECTED"), headers=headers)
    deadline = time.monotonic() + 5
    while platform.admin("GET", "/engine")["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    state = platform.admin("GET", "/engine/players/p-1")
    assert state["deposits"] == 100 + 55 + 10 and state["depositCount"] == 3
    assert platform.get("/__admin/engine/players/nobody").status_code == 404


def test_concurrent_registrations_and_syncs_all_land(platform: MockClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    headers = bearer(platform)
    sync = bearer(platform, "players:sync")

    def register(number: int) -> int:
        body = {"playerId": f"conc-{number}", "registrationDevice": "web",
                "date": "2026-11-20T10:00:00Z"}
        return platform.clone().post(REGISTRATION, json=body, headers=headers).status_code

    def migrate(number: int) -> int:
        players = [{"playerId": f"sync-{number}-{i}", "registrationDate": "2026-01-01T00:00:00Z"}
                   for i in range(20)]
        return platform.clone().post(MIGRATE, json={"players": players}, headers=sync).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(register, range(60))) + list(pool.map(migrate, range(6)))
    assert set(statuses) == {202}
    items: list[dict[str, Any]] = []
    cursor = None
    reader = bearer(platform, "data:read")
    while True:
        page = platform.get(PLAYERS, params={"next": cursor} if cursor else {},
                            headers=reader).json()
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert len({item["playerId"] for item in items}) == 60 + 6 * 20


def test_a_restarted_pep_draws_new_task_ids_and_token_ids(tmp_path: Any) -> None:
    from pepharness.mocks import pep as pep_mock
    from pepharness.mocks.core import ThreadedServer as Server

    database = str(tmp_path / "restart.sqlite3")
    seen: list[tuple[str, str]] = []
    for _ in range(2):  # the same seed and database: a process restarted
        app = pep_mock.create_app({"DATABASE": database, "ENGINE": False})
        with Server(app, threads=4) as server:
            grant = requests.post(f"{server.url}{TOKEN}", data={"grant_type": "client_credentials"},
                                  auth=(CLIENT, SECRET), timeout=10).json()["access_token"]
            answer = requests.post(
                f"{server.url}{MIGRATE}", json={"players": _players(1)},
                headers={"Authorization": f"Bearer {grant}"}, timeout=10,
            )
            assert answer.status_code == 202, answer.text
            claims = json.loads(base64.urlsafe_b64decode(grant.split(".")[1] + "=="))
            seen.append((answer.json()["taskId"], claims["jti"]))
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1]
