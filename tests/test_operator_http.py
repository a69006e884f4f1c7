"""The operator identity mock over real HTTP: contracts/operator-identity.yaml and D33-D35, D42,
D159."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from pepharness import contracts
from pepharness.fixtures import Player
from pepharness.mocks.core import parse_rfc3339, to_rfc3339
from pepharness.mocks.operator import backend_of
from pepharness.mocks.operator.errors import OperatorError

if TYPE_CHECKING:
    from conftest import MockClient

IDENTITY = "/api/auth/v1/player"
LIFETIME = timedelta(hours=4)


@pytest.fixture(scope="module")
def players(operator_app: Flask) -> tuple[Player, ...]:
    return backend_of(operator_app).data.players


def validate(operator: MockClient, body: Any = None, **kwargs: Any) -> Any:
    if body is not None:
        kwargs["json"] = body
    return operator.post(IDENTITY, **kwargs)


def program(operator: MockClient, **rule: Any) -> dict[str, Any]:
    response = operator.post("/__admin/tokens", json=rule)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_every_seeded_token_answers_its_player_and_a_sliding_expiry(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    now = operator.now()
    for player in players[:25]:
        response = validate(operator, {"identityToken": player.identity_token})
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        assert body["playerId"] == player.player_id
        expires = parse_rfc3339(body["expiresAt"])
        assert body["expiresAt"].endswith("Z")
        assert now + LIFETIME <= expires < now + LIFETIME + timedelta(seconds=30)
    moved = operator.advance(3600 * 24)
    later = validate(operator, {"identityToken": players[0].identity_token}).json()
    assert parse_rfc3339(later["expiresAt"]) >= moved + LIFETIME


def test_admin_lists_every_seeded_token_with_its_player(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    tokens = operator.admin("GET", "/tokens")["tokens"]
    listed = {token["identityToken"]: token for token in tokens}
    assert len(listed) == len(players) == 240
    for player in players:
        entry = listed[player.identity_token]
        assert entry["playerId"] == player.player_id
        assert entry["seeded"] is True and entry["expiry"] == "sliding"


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"json": {}}, "no identityToken"),
        ({"json": {"identityToken": ""}}, "empty"),
        ({"json": {"identityToken": 131918}}, "a number"),
        ({"json": {"identityToken": None}}, "null"),
        ({"json": {"identityToken": ["a"]}}, "an array"),
        ({"json": ["identityToken"]}, "an array body"),
        ({"json": "token"}, "a string body"),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, "not JSON"),
        ({"data": b""}, "no body"),
        ({"data": b'{"identityToken": NaN}'}, "NaN"),
        ({"data": b'{"identityToken": "' + b"a" * 1_100_000 + b'"}'}, "too large"),
    ],
)
def test_a_malformed_request_is_400(operator: MockClient, kwargs: Any, why: str) -> None:
    response = operator.post(IDENTITY, **kwargs)
    assert response.status_code == 400, why
    assert response.json()["error"] == "invalid_parameter"


def test_extra_keys_are_ignored(operator: MockClient, players: tuple[Player, ...]) -> None:
    body = {"identityToken": players[1].identity_token, "clientId": "x", "more": [1]}
    assert validate(operator, body).json()["playerId"] == players[1].player_id


def test_an_unknown_token_is_401(operator: MockClient, players: tuple[Player, ...]) -> None:
    for token in ("nope", players[0].identity_token.upper(), players[0].identity_token + " "):
        response = validate(operator, {"identityToken": token})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"


def test_a_fixed_expiry_answers_until_it_passes_on_the_service_clock(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    now = operator.now()
    expires = to_rfc3339(now + timedelta(minutes=10))
    player = players[2]
    programmed = program(
        operator, identityToken="fixed", playerId=player.player_id, expiresAt=expires
    )
    assert programmed["expiresAt"] == expires and programmed["expiry"] == "fixed"
    assert validate(operator, {"identityToken": "fixed"}).json() == {
        "playerId": player.player_id,
        "expiresAt": expires,
    }
    operator.advance(601)
    response = validate(operator, {"identityToken": "fixed"})
    assert response.status_code == 401


def test_a_past_expiry_is_401_and_no_expiry_answers_none(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    past = to_rfc3339(operator.now() - timedelta(seconds=1))
    program(operator, identityToken="old", playerId=players[0].player_id, expiresAt=past)
    assert validate(operator, {"identityToken": "old"}).status_code == 401
    program(operator, identityToken="forever", playerId=players[0].player_id, expiresAt=None)
    assert validate(operator, {"identityToken": "forever"}).json() == {
        "playerId": players[0].player_id
    }


def test_a_programmed_player_answers_200_seeded_or_not(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    """D159 (supersedes D42's 404 for a player the mock did not seed): programming a player
    is the intent, so its token answers 200 `{playerId, expiresAt}`, sliding like a seed's."""
    now = operator.now()
    programmed = program(operator, identityToken="abc", playerId="my-player")
    assert programmed["player"] == "programmed" and programmed["seeded"] is False
    response = validate(operator, {"identityToken": "abc"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"playerId", "expiresAt"} and body["playerId"] == "my-player"
    assert now + LIFETIME <= parse_rfc3339(body["expiresAt"]) < now + LIFETIME + timedelta(
        seconds=30)
    assert contracts.response_problems(
        "operator-identity", "POST", IDENTITY, 200, response.headers, response.content
    ) == []
    # Re-programmed without playerId, the token keeps its player (and its 200).
    program(operator, identityToken="abc", delay_ms=0)
    assert validate(operator, {"identityToken": "abc"}).json()["playerId"] == "my-player"
    seeded = program(operator, identityToken="def", playerId=players[1].player_id)
    assert seeded["player"] == "seeded"
    listed = {t["identityToken"]: t for t in operator.get("/__admin/tokens").json()["tokens"]}
    assert listed["abc"]["player"] == "programmed"
    assert listed[players[0].identity_token]["player"] == "seeded"


def test_a_known_token_without_a_player_is_404(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    program(operator, identityToken="nobody")
    program(operator, identityToken=players[5].identity_token, playerId=None)
    for token in ("nobody", players[5].identity_token):
        response = validate(operator, {"identityToken": token})
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert "player" not in program(operator, identityToken="nobody")


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_a_programmed_status_is_answered(
    operator: MockClient, players: tuple[Player, ...], status: int
) -> None:
    token = players[3].identity_token
    programmed = program(operator, identityToken=token, status=status)
    assert programmed["playerId"] == players[3].player_id  # kept from the seeded token
    assert programmed["seeded"] is True
    response = validate(operator, {"identityToken": token})
    assert response.status_code == status
    assert set(response.json()) == {"error", "message"}


def test_a_forced_200_answers_as_programmed(operator: MockClient) -> None:
    past = to_rfc3339(operator.now() - timedelta(hours=1))
    program(operator, identityToken="forced", playerId="ghost", status=200, expiresAt=past)
    assert validate(operator, {"identityToken": "forced"}).json() == {
        "playerId": "ghost",
        "expiresAt": past,
    }


def test_a_programmed_delay_slows_the_answer(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    program(operator, identityToken=players[4].identity_token, delay_ms=300)
    started = time.monotonic()
    response = validate(operator, {"identityToken": players[4].identity_token})
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_reset_restores_the_seeded_tokens(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    token = players[5].identity_token
    program(operator, identityToken=token, status=401)
    program(operator, identityToken="extra", playerId=players[5].player_id)
    assert len(operator.admin("GET", "/tokens")["tokens"]) == 241
    operator.reset()
    assert validate(operator, {"identityToken": token}).status_code == 200
    assert validate(operator, {"identityToken": "extra"}).status_code == 401
    assert len(operator.admin("GET", "/tokens")["tokens"]) == 240


@pytest.mark.parametrize(
    "body",
    [
        {"playerId": "1"},
        {"identityToken": ""},
        {"identityToken": 5},
        {"identityToken": "t", "playerId": 131918},
        {"identityToken": "t", "playerId": ""},
        {"identityToken": "t", "expiresAt": "tomorrow"},
        {"identityToken": "t", "expiresAt": "2026-11-25T10:00:00"},
        {"identityToken": "t", "expiresAt": 1764000000},
        {"identityToken": "t", "status": 418},
        {"identityToken": "t", "status": True},
        {"identityToken": "t", "status": 200},
        {"identityToken": "t", "delay_ms": -1},
        {"identityToken": "t", "delay_ms": 1.5},
        {"identityToken": "t", "delay_ms": 10**9},
        {"identityToken": "t", "surprise": 1},
        ["identityToken"],
    ],
)
def test_bad_admin_input_is_400(operator: MockClient, body: Any) -> None:
    response = operator.post("/__admin/tokens", json=body)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


def test_admin_integers_are_json_schema_integers(operator: MockClient) -> None:
    """`5.0` is the integer 5 (D73; admin.yaml's TokenProgram): st run sends such numbers."""
    rule = program(
        operator, identityToken="integral-float", playerId="131918", status=401.0, delay_ms=0.0
    )
    assert rule["status"] == 401 and isinstance(rule["status"], int)
    assert rule["delay_ms"] == 0 and isinstance(rule["delay_ms"], int)
    assert validate(operator, {"identityToken": "integral-float"}).status_code == 401


def test_received_keeps_what_was_sent_with_the_token_cut_to_four_chars(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    token = players[6].identity_token
    validate(operator, {"identityToken": token, "clientSecret": "s3cret", "clientId": "c"})
    operator.post(IDENTITY, data=b"[1, 2]")
    received = operator.admin("GET", "/received")["received"]
    assert [entry["status"] for entry in received] == [200, 400]
    first = received[0]
    assert first["body"] == {
        "identityToken": token[:4] + "***",
        "clientSecret": "***",
        "clientId": "c",
    }
    assert first["keys"] == ["identityToken", "clientSecret", "clientId"]
    assert "content-type" in first["headers"] and first["contentType"] == "application/json"
    assert token not in str(received) and "s3cret" not in str(received)
    assert received[1]["keys"] is None and received[1]["body"] == [1, 2]
    assert operator.admin("GET", "/received?limit=1")["received"][0]["id"] == 2
    operator.delete("/__admin/received")
    assert operator.admin("GET", "/received")["received"] == []


def test_an_injected_fault_is_500_and_is_received_too(
    operator: MockClient, players: tuple[Player, ...]
) -> None:
    fault = {"path": IDENTITY, "status": 500, "body": {"error": "boom"}, "times": 1}
    operator.admin("POST", "/faults", json=fault)
    body = {"identityToken": players[7].identity_token}
    assert validate(operator, body).status_code == 500
    assert validate(operator, body).status_code == 200
    assert [e["status"] for e in operator.admin("GET", "/received")["received"]] == [500, 200]


def test_health_and_wrong_method(operator: MockClient) -> None:
    assert operator.admin("GET", "/health") == {"status": "ok", "service": "operator"}
    response = operator.get(IDENTITY)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_every_error_status_is_documented() -> None:
    documented = set(contracts.load("operator-identity")["paths"][IDENTITY]["post"]["responses"])
    pending: list[type[OperatorError]] = [OperatorError]
    while pending:
        error = pending.pop()
        pending.extend(error.__subclasses__())
        if not error.__module__.startswith("pepharness.mocks"):
            continue  # a planted-fault variant's own error, in this process
        if error.__name__ in {"NotFound", "MethodNotAllowed"}:
            continue  # routing errors of paths and methods the contract does not have
        assert str(error.status) in documented, error.__name__
