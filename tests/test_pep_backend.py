"""The reference PEP without a network: its parsing, its store across restarts, its errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask

from pepharness import contracts
from pepharness.mocks import pep
from pepharness.mocks.core import Clock
from pepharness.mocks.pep import errors
from pepharness.mocks.pep.backend import bearer_value, parse_auth_request
from pepharness.mocks.pep.operator_client import OperatorClient, OperatorIdentity, parse_identity
from pepharness.mocks.pep.players import player_document
from pepharness.mocks.pep.store import ClientSpec, database_url
from pepharness.mocks.pep.tokens import AccessClaims, AccessTokens, InvalidAccessToken

ANCHOR = datetime(2026, 6, 15, tzinfo=UTC)
AUTH = "/api/auth/v1/player"
README = Path(__file__).resolve().parents[1] / "contracts" / "README.md"


class StubOperator(OperatorClient):
    """An operator that says every token is player 131918's, without expiry."""

    def validate(self, identity_token: str) -> OperatorIdentity:
        return OperatorIdentity("131918", None)


def pep_app(database: Path, **config: Any) -> Flask:
    app = pep.create_app({"ANCHOR": ANCHOR, "DATABASE": str(database), **config})
    pep.backend_of(app).operator = StubOperator()
    return app


def grant(app: Flask) -> dict[str, Any]:
    response = app.test_client().post(
        AUTH, json={"identityToken": "t", "clientId": pep.DEMO_CLIENT_ID}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def test_sessions_survive_a_restart_on_the_same_file_and_ids_never_repeat(
    tmp_path: Path,
) -> None:
    database = tmp_path / "pep.sqlite3"
    first = grant(pep_app(database))
    restarted = pep_app(database)
    second = grant(restarted)
    jti = [
        jwt.decode(g["accessToken"], options={"verify_signature": False})["jti"]
        for g in (first, second)
    ]
    assert jti[0] != jti[1]  # the same seed draws the same first id: it was redrawn
    client = restarted.test_client()
    me = client.get("/api/players/v1/me", headers={"x-authorization": first["accessToken"]})
    assert me.status_code == 200
    assert len(client.get("/__admin/sessions").get_json()["sessions"]) == 2


def test_two_apps_without_a_database_share_nothing() -> None:
    one, two = pep.create_app({"ANCHOR": ANCHOR}), pep.create_app({"ANCHOR": ANCHOR})
    urls = {pep.backend_of(app).store.url for app in (one, two)}
    assert len(urls) == 2 and all(url.startswith("sqlite:///") for url in urls)


def test_configured_clients_are_seeded_and_restored(tmp_path: Path) -> None:
    clients = [{"clientId": "casino-a", "clientSecret": "a-secret", "gateways": ["frontend"]}]
    app = pep_app(tmp_path / "pep.sqlite3", CLIENTS=clients)
    store = pep.backend_of(app).store
    (client,) = store.clients()
    assert client.client_id == "casino-a" and client.gateways == ("frontend",)
    assert client.check_secret("a-secret") and not client.check_secret("wrong")
    assert "a-secret" not in client.secret_hash


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b'"x"',
        b"{",
        b'{"identityToken": "t"}',
        b'{"clientId": "c"}',
        b'{"identityToken": "", "clientId": "c"}',
        b'{"identityToken": "t", "clientId": 1}',
        b'{"identityToken": NaN, "clientId": "c"}',
    ],
)
def test_a_session_request_needs_both_strings(raw: bytes) -> None:
    with pytest.raises(errors.InvalidRequest):
        parse_auth_request(raw)


def test_a_session_request_ignores_other_keys() -> None:
    raw = b'{"identityToken": "t", "clientId": "c", "clientSecret": "s"}'
    assert parse_auth_request(raw) == ("t", "c")


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("abc", "abc"),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Bearer", "Bearer"),
        ("Basic abc", "Basic abc"),
    ],
)
def test_the_x_authorization_value(header: str | None, token: str | None) -> None:
    assert bearer_value(header) == token


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{}",
        b'{"playerId": 1}',
        b'{"playerId": ""}',
        b'{"playerId": "1", "expiresAt": null}',
        b'{"playerId": "1", "expiresAt": "2026-01-01"}',
        b'{"playerId": "1", "expiresAt": "2026-01-01T00:00:00"}',
    ],
)
def test_an_operator_answer_off_its_contract_is_502(body: bytes) -> None:
    with pytest.raises(errors.OperatorBadResponse):
        parse_identity(body)


def test_an_operator_answer_on_its_contract() -> None:
    assert parse_identity(b'{"playerId": "7"}') == OperatorIdentity("7", None)
    parsed = parse_identity(b'{"playerId": "7", "expiresAt": "2026-01-01T01:00:00+01:00"}')
    assert parsed.expires_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_tokens_are_checked_on_the_given_clock_only() -> None:
    tokens = AccessTokens(b"k" * 32)
    issued = datetime(2020, 1, 1, tzinfo=UTC)  # long past on the wall clock
    expires = datetime(2020, 1, 1, 1, tzinfo=UTC)
    token = tokens.issue(AccessClaims("j", "p", "c", issued, expires))
    assert tokens.verify(token, issued).player_id == "p"
    with pytest.raises(InvalidAccessToken):
        tokens.verify(token, expires)
    assert AccessTokens(b"k" * 32, leeway_seconds=30).verify(token, expires).jti == "j"


@pytest.mark.parametrize("key", [b"", b"short", b"k" * 31])
def test_a_signing_key_has_at_least_256_bits(key: bytes) -> None:
    with pytest.raises(ValueError, match=r"at least 32 bytes"):
        AccessTokens(key)


@pytest.mark.parametrize(
    "config",
    [
        {"OPERATOR_URL": "127.0.0.1:8102"},
        {"OPERATOR_READ_TIMEOUT": 0},
        {"OPERATOR_CONNECT_TIMEOUT": float("inf")},
        {"SESSION_LIFETIME_SECONDS": 0},
        {"SECRET": "too short"},
        {"CLIENTS": [{"clientId": "x", "clientSecret": "y", "gateways": ["admin"]}]},
    ],
)
def test_bad_configuration_is_refused(tmp_path: Path, config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        pep.create_app({"ANCHOR": ANCHOR, "DATABASE": str(tmp_path / "x.db"), **config})


def test_the_player_document_is_deterministic_and_fits_the_contract() -> None:
    app = pep.create_app({"ANCHOR": ANCHOR})
    players = pep.backend_of(app).players
    for player_id in [*list(players.players)[:50], "unknown"]:
        document = players.document(player_id)
        assert document == players.document(player_id)
        assert contracts.record_errors("pep-frontend", "Player", document) == []
    assert player_document(1, "p", None)["firstName"] is None


def test_database_urls() -> None:
    # A PostgreSQL URL without a driver gets psycopg 3's, the `postgres` extra's (D193).
    assert database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert database_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert database_url("state/pep.db").startswith("sqlite:////")


def test_client_specs_are_validated() -> None:
    with pytest.raises(ValueError):
        ClientSpec("", "s")
    with pytest.raises(ValueError):
        ClientSpec("c", "s", ())


def test_every_error_status_is_documented_where_it_can_happen() -> None:
    spec = contracts.load("pep-frontend")
    auth = set(spec["paths"][AUTH]["post"]["responses"])
    player = set(spec["paths"]["/api/players/v1/me"]["get"]["responses"])
    platform = {
        status
        for _, _, operation in contracts.operations("pep-platform")
        for status in operation["responses"]
    }
    platform_errors = {
        errors.InvalidEvent, errors.PlatformAuthError, errors.UnsupportedEncoding,
        errors.PayloadTooLarge, errors.RateLimited, errors.TaskNotFound,
    }
    pending: list[type[errors.PepError]] = [errors.PepError]
    while pending:
        error = pending.pop()
        pending.extend(error.__subclasses__())
        if error in {errors.NotFound, errors.MethodNotAllowed}:
            continue  # routing errors of paths and methods the contract does not have
        if error in platform_errors:
            documented = platform
        elif error in {errors.MissingToken, errors.InvalidAccessToken}:
            documented = player
        else:
            documented = auth
        assert str(error.status) in documented, error.__name__


def test_the_clock_is_the_injected_one(tmp_path: Path) -> None:
    clock = Clock(lambda: datetime(2030, 1, 1, tzinfo=UTC))
    app = pep_app(tmp_path / "pep.sqlite3", CLOCK=clock)
    issued = grant(app)
    assert issued["expiresAt"] == "2030-01-01T01:00:00.000Z"


def test_every_pep_operation_and_response_says_where_it_comes_from() -> None:
    decisions = set(re.findall(r"^\| (D\d+) \|", README.read_text(encoding="utf-8"), re.M))
    spec = contracts.load("pep-frontend")
    for method, path, operation in contracts.operations("pep-frontend"):
        assert operation.get("x-source") in {"documented", "inferred"}, (method, path)
        for status, response in operation["responses"].items():
            if "$ref" in response:
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
            assert response.get("x-source") in {"documented", "inferred"}, (path, status)
            if response["x-source"] == "inferred":
                assert response.get("x-decision") in decisions, (path, status)
