"""The reference PEP Frontend gateway over real HTTP, calling the operator mock: every branch of
the seed's Player Auth Process (contracts/pep-frontend.yaml, D43-D48)."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from flask import Flask

from pepharness.fixtures import Player
from pepharness.mocks import pep as pep_mock
from pepharness.mocks.core import ThreadedServer, parse_rfc3339, to_rfc3339
from pepharness.mocks.operator import backend_of as operator_backend_of
from pepharness.mocks.pep.tokens import AUDIENCE, DEFAULT_ISSUER, seed_secret
from pepharness.mocks.sinatra.backend import seed_secret as sinatra_secret
from pepharness.mocks.sinatra.tokens import TokenIssuer

if TYPE_CHECKING:
    from conftest import MockClient

AUTH = "/api/auth/v1/player"
SESSION = "/api/auth/v1/session"
ME = "/api/players/v1/me"
CLIENT = pep_mock.DEMO_CLIENT_ID
KEY = seed_secret(42)
PEP_TIMEOUT = 1.0  # conftest.PEP_OPERATOR_TIMEOUT


@pytest.fixture(scope="module")
def players(operator_app: Flask) -> tuple[Player, ...]:
    return operator_backend_of(operator_app).data.players


def start(pep: MockClient, token: str, client_id: str = CLIENT) -> Any:
    return pep.post(AUTH, json={"identityToken": token, "clientId": client_id})


def login(pep: MockClient, player: Player) -> dict[str, Any]:
    response = start(pep, player.identity_token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def claims_of(token: str) -> dict[str, Any]:
    return dict(
        jwt.decode(
            token,
            KEY,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=DEFAULT_ISSUER,
            options={"verify_exp": False},
        )
    )


def as_player(token: str) -> dict[str, str]:
    return {"x-authorization": token}


def program(operator: MockClient, **rule: Any) -> None:
    response = operator.post("/__admin/tokens", json=rule)
    assert response.status_code == 201, response.text


def error_of(response: Any) -> str:
    assert response.headers["Content-Type"] == "application/json"
    return str(response.json()["error"])


def received(operator: MockClient) -> list[dict[str, Any]]:
    return list(operator.admin("GET", "/received")["received"])


def wait_until_answered(operator: MockClient, count: int = 1) -> None:
    """Wait for the operator to finish the requests the PEP gave up on, so that they land in
    this test's journal, not the next one's."""
    deadline = time.monotonic() + 10
    while len(received(operator)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.05)  # the answer is written just after it is journaled


# -- the session ---------------------------------------------------------------------------


def test_a_valid_identity_token_gives_a_verifiable_jwt_that_opens_the_player_endpoints(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    player = players[0]
    before = pep.now()
    response = start(pep, player.identity_token)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    grant = response.json()
    assert grant["tokenType"] == "Bearer" and grant["playerId"] == player.player_id
    assert jwt.get_unverified_header(grant["accessToken"])["alg"] == "HS256"
    claims = claims_of(grant["accessToken"])
    assert claims["sub"] == player.player_id and claims["client_id"] == CLIENT
    assert claims["aud"] == "pep-frontend" and claims["iss"] == DEFAULT_ISSUER
    assert len(claims["jti"]) >= 16
    assert int(before.timestamp()) <= claims["iat"] <= int(before.timestamp()) + 5
    assert claims["exp"] - claims["iat"] == grant["expiresIn"] == 3600  # operator gave 4 h
    assert parse_rfc3339(grant["expiresAt"]).timestamp() == claims["exp"]
    operator_expiry = parse_rfc3339(received_expiry(operator, player))
    assert claims["exp"] <= operator_expiry.timestamp()

    me = pep.get(ME, headers=as_player(grant["accessToken"]))
    assert me.status_code == 200
    profile = me.json()
    assert profile["playerId"] == player.player_id
    assert (profile["firstName"], profile["lastName"]) == (player.first_name, player.last_name)
    assert profile["ranksData"]["level"]["levelNumber"] >= 1
    session = pep.get(SESSION, headers=as_player(grant["accessToken"])).json()
    assert session == {
        "sessionId": claims["jti"],
        "playerId": player.player_id,
        "clientId": CLIENT,
        "issuedAt": to_rfc3339(datetime.fromtimestamp(claims["iat"], UTC)),
        "expiresAt": grant["expiresAt"],
    }
    # A `Bearer ` prefix is tolerated (D46).
    assert pep.get(ME, headers=as_player("Bearer " + grant["accessToken"])).status_code == 200


def received_expiry(operator: MockClient, player: Player) -> str:
    """The expiresAt the operator answers for the player's token now (sliding, so later than
    the one the PEP received)."""
    direct = operator.post(AUTH, json={"identityToken": player.identity_token})
    return str(direct.json()["expiresAt"])


def test_the_token_never_outlives_the_operators_expires_at(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    expires = pep.now() + timedelta(minutes=10, milliseconds=700)
    program(
        operator,
        identityToken=players[1].identity_token,
        expiresAt=to_rfc3339(expires),
    )
    grant = login(pep, players[1])
    claims = claims_of(grant["accessToken"])
    assert claims["exp"] == int(expires.timestamp())  # rounded down, never up
    assert claims["exp"] <= expires.timestamp()
    assert grant["expiresIn"] == claims["exp"] - claims["iat"] < 3600


def test_without_expires_at_the_default_lifetime_applies(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    program(operator, identityToken=players[2].identity_token, expiresAt=None)
    grant = login(pep, players[2])
    claims = claims_of(grant["accessToken"])
    assert claims["exp"] - claims["iat"] == 3600


def test_an_expires_at_already_past_is_401(pep: MockClient, operator: MockClient) -> None:
    past = to_rfc3339(pep.now() - timedelta(seconds=5))
    program(operator, identityToken="stale", playerId="131918", status=200, expiresAt=past)
    response = start(pep, "stale")
    assert response.status_code == 401
    assert error_of(response) == "identity_token_expired"
    assert pep.admin("GET", "/sessions")["sessions"] == []


def test_a_player_the_pep_has_no_data_for_gets_a_bare_profile(
    pep: MockClient, operator: MockClient
) -> None:
    program(operator, identityToken="ghost-token", playerId="ghost", status=200)
    token = start(pep, "ghost-token").json()["accessToken"]
    profile = pep.get(ME, headers=as_player(token)).json()
    assert profile["playerId"] == "ghost"
    assert profile["firstName"] is None and profile["gamificationOpt"] == {"enable": False}


# -- the request and the client ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"clientId": CLIENT}},
        {"json": {"identityToken": "t"}},
        {"json": {"identityToken": "", "clientId": CLIENT}},
        {"json": {"identityToken": "t", "clientId": ""}},
        {"json": {"identityToken": 5, "clientId": CLIENT}},
        {"json": {"identityToken": "t", "clientId": ["x"]}},
        {"json": ["t", CLIENT]},
        {"data": b"identityToken=t&clientId=pep-demo-client"},
        {"data": b""},
        {"data": b'{"identityToken": "' + b"a" * 1_100_000 + b'", "clientId": "c"}'},
    ],
)
def test_a_malformed_request_is_400_and_never_reaches_the_operator(
    pep: MockClient, operator: MockClient, kwargs: Any
) -> None:
    response = pep.post(AUTH, **kwargs)
    assert response.status_code == 400
    assert error_of(response) == "invalid_request"
    assert received(operator) == []


def test_an_unknown_client_is_401_and_never_reaches_the_operator(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    for client in ("nope", CLIENT.upper(), pep_mock.DEMO_CLIENT_SECRET):
        response = start(pep, players[0].identity_token, client)
        assert response.status_code == 401
        assert error_of(response) == "invalid_client"
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert received(operator) == []


def test_a_client_without_the_frontend_gateway_is_401(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    added = pep.post(
        "/__admin/clients",
        json={"clientId": "platform-only", "clientSecret": "s", "gateways": ["platform"]},
    )
    assert added.status_code == 201 and added.json()["gateways"] == ["platform"]
    assert start(pep, players[0].identity_token, "platform-only").status_code == 401
    both = pep.post("/__admin/clients", json={"clientId": "casino-b", "clientSecret": "s"})
    assert both.status_code == 201
    assert start(pep, players[0].identity_token, "casino-b").status_code == 200
    assert (
        pep.post("/__admin/clients", json={"clientId": "casino-b", "clientSecret": "s"}).status_code
        == 409
    )
    pep.reset()
    clients = pep.admin("GET", "/clients")["clients"]
    assert clients == [{"clientId": CLIENT, "gateways": ["frontend", "platform"]}]


# -- the operator's answers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator_status", "status", "code"),
    [
        (400, 400, "identity_token_malformed"),
        (401, 401, "identity_token_invalid"),
        (404, 404, "player_not_found"),
        (500, 502, "operator_error"),
    ],
)
def test_the_operators_errors_are_mapped(
    pep: MockClient,
    operator: MockClient,
    players: tuple[Player, ...],
    operator_status: int,
    status: int,
    code: str,
) -> None:
    program(operator, identityToken=players[3].identity_token, status=operator_status)
    response = start(pep, players[3].identity_token)
    assert (response.status_code, error_of(response)) == (status, code)
    assert [entry["status"] for entry in received(operator)] == [operator_status]  # no retry


def test_an_unknown_identity_token_is_401(pep: MockClient) -> None:
    response = start(pep, "no-such-token")
    assert (response.status_code, error_of(response)) == (401, "identity_token_invalid")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {}),
        (200, {"playerId": 131918}),
        (200, {"playerId": ""}),
        (200, {"playerId": "1", "expiresAt": "tomorrow"}),
        (200, {"playerId": "1", "expiresAt": "2026-11-25T10:00:00"}),
        (200, {"playerId": "1", "expiresAt": None}),
        (200, ["playerId"]),
        (200, "<html>oops</html>"),
        (200, {"playerId": "1", "padding": "x" * 70_000}),
        (503, {"error": "maintenance"}),
        (302, ""),
        (403, {"error": "forbidden"}),
    ],
)
def test_an_answer_outside_the_operators_contract_is_502(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...], status: int, body: Any
) -> None:
    fault = {"path": AUTH, "method": "POST", "status": status, "body": body, "times": 1}
    operator.admin("POST", "/faults", json=fault)
    response = start(pep, players[4].identity_token)
    assert response.status_code == 502
    assert error_of(response) in {"operator_error", "operator_bad_response"}


def test_a_slow_operator_is_504_within_the_bound(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    program(operator, identityToken=players[5].identity_token, delay_ms=int(PEP_TIMEOUT * 2000))
    started = time.monotonic()
    response = start(pep, players[5].identity_token)
    elapsed = time.monotonic() - started
    assert (response.status_code, error_of(response)) == (504, "operator_timeout")
    assert PEP_TIMEOUT * 0.9 <= elapsed < PEP_TIMEOUT * 2  # read timeout, not the delay
    wait_until_answered(operator)


def test_a_slow_operator_by_fault_latency_is_504_too(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    fault = {"path": AUTH, "latency_ms": int(PEP_TIMEOUT * 1500), "times": 1}
    operator.admin("POST", "/faults", json=fault)
    response = start(pep, players[5].identity_token)
    assert response.status_code == 504
    wait_until_answered(operator)


@pytest.fixture(scope="module")
def pep_without_operator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PEP whose operator URL is a port nobody listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    config = {
        "OPERATOR_URL": f"http://127.0.0.1:{dead}",
        "DATABASE": str(tmp_path_factory.mktemp("dead") / "pep.sqlite3"),
    }
    with ThreadedServer(pep_mock.create_app(config)) as server:
        yield server.url


def test_a_dead_operator_is_a_gateway_error_at_once(
    pep_without_operator: str, players: tuple[Player, ...]
) -> None:
    from conftest import MockClient

    client = MockClient(pep_without_operator, "pep-frontend")
    started = time.monotonic()
    response = start(client, players[0].identity_token)
    assert time.monotonic() - started < 2.0  # refused at once, far below the timeouts
    assert (response.status_code, error_of(response)) == (504, "operator_unreachable")


# -- x-authorization -----------------------------------------------------------------------


def test_the_token_stops_working_at_its_exp_on_the_peps_clock(
    pep: MockClient, players: tuple[Player, ...]
) -> None:
    grant = login(pep, players[6])
    claims = claims_of(grant["accessToken"])
    pep.advance(claims["exp"] - pep.now().timestamp() - 2)
    assert pep.get(ME, headers=as_player(grant["accessToken"])).status_code == 200
    pep.advance(3)
    response = pep.get(ME, headers=as_player(grant["accessToken"]))
    assert (response.status_code, error_of(response)) == (401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def _unsigned(claims: dict[str, Any]) -> str:
    def part(document: dict[str, Any]) -> str:
        raw = json.dumps(document).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def forgeries(token: str, now: datetime) -> dict[str, str]:
    claims = claims_of(token)
    sinatra = TokenIssuer(sinatra_secret(42)).issue("operator@example.com", now)
    return {
        "forged signature": jwt.encode(claims, b"k" * 32, algorithm="HS256"),
        "alg none": _unsigned(claims),
        "alg none, no dot": _unsigned(claims)[:-1],
        "sinatra jwt-auth": sinatra,
        "our key, sinatra audience": jwt.encode({**claims, "aud": "sinatra"}, KEY, "HS256"),
        "our key, other issuer": jwt.encode({**claims, "iss": "someone"}, KEY, "HS256"),
        "our key, no jti": jwt.encode(
            {k: v for k, v in claims.items() if k != "jti"}, KEY, "HS256"
        ),
        "our key, unknown jti": jwt.encode({**claims, "jti": "f" * 32}, KEY, "HS256"),
        "our key, other player": jwt.encode({**claims, "sub": "someone"}, KEY, "HS256"),
        "our key, HS512": jwt.encode(claims, KEY * 2, algorithm="HS512"),
        "truncated": token[:-5],
        "garbage": "not-a-jwt",
        "bearer only": "Bearer",
    }


def test_forged_foreign_and_unsigned_tokens_are_401(
    pep: MockClient, players: tuple[Player, ...]
) -> None:
    token = login(pep, players[7])["accessToken"]
    for name, forged in forgeries(token, pep.now()).items():
        for path in (ME, SESSION):
            response = pep.get(path, headers=as_player(forged))
            assert response.status_code == 401, (name, path)
            assert error_of(response) == "invalid_token", name
    assert pep.get(ME, headers=as_player(token)).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"x-authorization": ""}])
def test_a_missing_token_is_401_without_an_error_code_in_the_challenge(
    pep: MockClient, headers: dict[str, str]
) -> None:
    for path in (ME, SESSION):
        response = pep.get(path, headers=headers)
        assert (response.status_code, error_of(response)) == (401, "missing_token")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="pep-frontend"'


def test_the_authorization_header_is_not_x_authorization(
    pep: MockClient, players: tuple[Player, ...]
) -> None:
    token = login(pep, players[7])["accessToken"]
    response = pep.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_ending_the_session_revokes_its_token(pep: MockClient, players: tuple[Player, ...]) -> None:
    token = login(pep, players[8])["accessToken"]
    other = login(pep, players[9])["accessToken"]
    ended = pep.delete(SESSION, headers=as_player(token))
    assert ended.status_code == 204 and ended.content == b""
    assert pep.get(ME, headers=as_player(token)).status_code == 401
    assert pep.delete(SESSION, headers=as_player(token)).status_code == 401
    assert pep.get(ME, headers=as_player(other)).status_code == 200


def test_reset_ends_every_session(pep: MockClient, players: tuple[Player, ...]) -> None:
    token = login(pep, players[10])["accessToken"]
    pep.reset()
    assert pep.get(ME, headers=as_player(token)).status_code == 401
    assert pep.admin("GET", "/sessions")["sessions"] == []


# -- state and what crosses the wire -------------------------------------------------------


def test_the_session_is_a_row_of_the_sqlite_file(
    pep: MockClient, pep_database: str, players: tuple[Player, ...]
) -> None:
    grant = login(pep, players[11])
    claims = claims_of(grant["accessToken"])
    with sqlite3.connect(pep_database) as database:
        rows = database.execute(
            "SELECT player_id, client_id, issued_at, expires_at, operator_expires_at"
            " FROM player_sessions WHERE jti = ?",
            (claims["jti"],),
        ).fetchall()
        secrets = [row[0] for row in database.execute("SELECT secret_hash FROM api_clients")]
    assert len(rows) == 1
    player_id, client_id, issued, expires, operator_expires = rows[0]
    assert (player_id, client_id) == (players[11].player_id, CLIENT)
    assert parse_rfc3339(issued).timestamp() == claims["iat"]
    assert expires == grant["expiresAt"]
    assert parse_rfc3339(operator_expires).timestamp() >= claims["exp"]
    assert secrets and all(pep_mock.DEMO_CLIENT_SECRET not in value for value in secrets)
    listed = pep.admin("GET", "/sessions")
    assert listed["database"].endswith(pep_database)
    assert [s["sessionId"] for s in listed["sessions"]] == [claims["jti"]]


def test_the_pep_sends_the_operator_the_identity_token_and_nothing_else(
    pep: MockClient, operator: MockClient, players: tuple[Player, ...]
) -> None:
    token = players[12].identity_token
    login(pep, players[12])
    (sent,) = received(operator)
    assert sent["method"] == "POST" and sent["path"] == AUTH
    assert sent["keys"] == ["identityToken"]
    assert sent["body"] == {"identityToken": token[:4] + "***"}
    assert sent["contentType"] == "application/json"
    assert not {"authorization", "cookie", "x-authorization"} & set(sent["headers"])
    text = json.dumps(sent)
    assert pep_mock.DEMO_CLIENT_SECRET not in text and CLIENT not in text


def test_the_journal_records_which_credential_was_used_never_its_value(
    pep: MockClient, players: tuple[Player, ...]
) -> None:
    token = login(pep, players[13])["accessToken"]
    pep.get(ME, headers=as_player(token))
    entries = pep.admin("GET", "/requests")["requests"]
    assert [e["auth"] for e in entries if e["path"] == ME] == ["x-authorization"]
    assert token not in json.dumps(entries)


def test_health(pep: MockClient) -> None:
    assert pep.admin("GET", "/health") == {"status": "ok", "service": "pep"}
