"""check_answers_declare_every_field's walker (suites/declared.py) and check (suites/answers.py):
what a schema declares, what an answer carries beyond it, the INFO list of fields never seen;
and the reference PEP's answers that the suites' own requests do not reach (a notification, a
fetched player) read over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from flask import Flask

from pepharness.mocks.core import ThreadedServer
from pepharness.suites import answers, declared, report
from pepharness.suites.options import SuiteOptions
from pepharness.suites.rules import Level, Rule, RuleFailure

if TYPE_CHECKING:
    from conftest import MockClient

RULE = Rule(answers.RULE_NAME, Level.MUST, "test", answers.SUMMARY, "test-api")
CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"

DOCUMENT: dict[str, Any] = {
    "components": {
        "schemas": {
            "Player": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "tags": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Tag"}}},
            },
            "Tag": {"type": "object", "properties": {"name": {"type": "string"}}},
            "Money": {"properties": {"amount": {"type": "number"}}},
            "Bet": {"properties": {"stake": {"type": "number"}}},
            "Node": {
                "type": "object",
                "properties": {"value": {}, "next": {"$ref": "#/components/schemas/Node"}},
            },
        }
    },
    "paths": {
        "/players": {
            "get": {
                "responses": {
                    "2XX": {"content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Player"}}}},
                    "204": {"description": "no body"},
                }
            }
        }
    },
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_properties_items_and_refs_declare_fields() -> None:
    found = declared.walk(DOCUMENT, ref("Player"), {
        "id": "p1", "tags": [{"name": "vip"}, {"name": "new", "colour": "red"}],
        "registrationDate": "2026-01-01",
    })
    assert found.undeclared == {"$.tags[*].colour": "red", "$.registrationDate": "2026-01-01"}
    assert found.seen == {"$.id", "$.tags", "$.tags[*].name"}


def test_all_branches_of_combinators_declare_fields() -> None:
    schema = {
        "type": "object",
        "properties": {"eventId": {"type": "string"}},
        "oneOf": [{"allOf": [ref("Money")]}, {"anyOf": [ref("Bet")]}],
        "if": {"required": ["kind"]},
        "then": {"properties": {"kind": {}}},
    }
    instance = {"eventId": "e", "amount": 1, "stake": 2, "kind": "bet", "x": 0}
    found = declared.walk(DOCUMENT, schema, instance)
    assert list(found.undeclared) == ["$.x"]


def test_maps_and_free_form_objects_declare_every_key() -> None:
    schema = {
        "type": "object",
        "properties": {
            "balances": {"type": "object", "additionalProperties": ref("Tag")},
            "data": {"type": "object"},
            "open": {"type": "object", "properties": {"a": {}}, "additionalProperties": True},
            "closed": {"type": "object", "additionalProperties": False},
        },
    }
    found = declared.walk(DOCUMENT, schema, {
        "balances": {"EUR": {"name": "euro", "symbol": "€"}},
        "data": {"anything": {"at": "all"}},
        "open": {"b": 1},
        "closed": {"c": 1},
    })
    assert found.undeclared == {"$.balances.*.symbol": "€", "$.closed.c": 1}


def test_declared_fields_list_a_recursive_schema_once() -> None:
    assert declared.declared_fields(DOCUMENT, ref("Node")) == {"$.value", "$.next"}
    assert answers.never_seen(DOCUMENT, ref("Player"), {"$.id"}) == ["$.tags"]


def test_response_schema_by_status_range_and_none_for_no_body() -> None:
    assert declared.response_schema(DOCUMENT, "GET", "/players", 200) == ref("Player")
    assert declared.response_schema(DOCUMENT, "GET", "/players", 204) is None
    assert declared.response_schema(DOCUMENT, "POST", "/players", 200) is None


def _answer(body: Any, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.request = requests.Request("GET", "http://127.0.0.1/players").prepare()
    return response


def test_check_takes_a_gather_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers.documents, "load", lambda name: DOCUMENT)
    with pytest.raises(RuleFailure):
        answers.check(RULE, "test", "GET /players", lambda: [_answer({"id": "1", "x": 2})], str)

    def nothing_to_send() -> list[requests.Response]:
        raise RuntimeError("no credentials to log in with")

    with pytest.raises(pytest.skip.Exception, match="no credentials to log in with"):
        answers.check(RULE, "test", "GET /players", nothing_to_send, str)


def test_check_names_each_undeclared_field_and_records_the_unseen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answers.documents, "load", lambda name: DOCUMENT)
    options = SuiteOptions(report_dir=tmp_path)
    with pytest.raises(RuleFailure) as failure:
        answers.check(RULE, "test", "GET /players", [_answer({"id": "1", "name": "x"})],
                      lambda r: "curl it", options)
    assert failure.value.rule == RULE and "$.name" in failure.value.title
    assert failure.value.curl == "curl it" and failure.value.operation == "GET /players"
    answers.check(RULE, "test", "GET /players", [_answer({"id": "1"})], str, options)
    rows = report.fields_never_seen(tmp_path)
    assert rows == [{"api": "test-api", "operation": "GET /players", "status": "200",
                     "fields": ["$.tags"]}]
    summary = report.summarize([], strict=False, wall_time=1.0)
    summary["fields_never_seen"] = rows
    assert "Fields never seen (1)" in report.render_html(summary)
    assert any("fields never seen" in line for line in report.summary_lines(summary))


# -- the reference PEP's answers, over real HTTP ---------------------------------------------------


def _curl(response: requests.Response) -> str:
    return f"{response.request.method} {response.request.url}"


def test_reference_notification_declares_every_field(
    pep: MockClient, operator: MockClient, pep_server: ThreadedServer, pep_app: Flask
) -> None:
    """A notification only exists after events: the Frontend suite cannot make one."""
    from conftest import MockClient

    from pepharness.mocks.pep.reads import engine_of

    platform = MockClient(pep_server.url, "pep-platform")
    grant = platform.post("/api/oauth/v1/token", data={"grant_type": "client_credentials"},
                          auth=(CLIENT, SECRET))
    events = {"Authorization": f"Bearer {grant.json()['access_token']}"}
    player_id = "answers-player-1"
    operator.admin("POST", "/tokens", json={"identityToken": "answers-identity-1",
                                            "playerId": player_id, "status": 200})
    deposit = {
        "playerId": player_id, "amount": 60, "exchangeRate": 1.0,
        "date": "2026-11-20T10:00:00Z", "currency": "EUR", "transactionStatus": "APPROVED",
        "transactionType": "DEPOSIT", "transactionId": "answers-dep-1", "realMoneyBalance": 60,
        "bonusMoneyBalance": 0,
    }
    accepted = platform.post("/rx-api/transactions/v1/money-transaction", json=deposit,
                             headers=events)
    assert accepted.status_code == 202, accepted.text
    assert engine_of(pep_app).converged()
    login = pep.post("/api/auth/v1/player",
                     json={"identityToken": "answers-identity-1", "clientId": CLIENT})
    assert login.status_code == 200, login.text
    as_player = {"x-authorization": login.json()["accessToken"]}
    listed = pep.get("/api/notifications/v1/notifications", headers=as_player)
    assert listed.json()["notifications"], listed.text
    ranked = pep.get("/api/leaderboards/v1/xp", headers=as_player)
    assert ranked.json()["items"], ranked.text
    failures: list[str] = []
    for path, answer in (
        ("/api/notifications/v1/notifications", listed),
        ("/api/leaderboards/v1/xp", ranked),
        ("/api/players/v1/me", pep.get("/api/players/v1/me", headers=as_player)),
        ("/api/missions/v1/missions", pep.get("/api/missions/v1/missions", headers=as_player)),
    ):
        try:
            answers.check(RULE, "pep-frontend", f"GET {path}", [answer], _curl)
        except RuleFailure as failure:
            failures.append(failure.title)
    assert not failures, failures


def test_reference_fetched_player_declares_every_field(pep_server: ThreadedServer) -> None:
    from conftest import MockClient

    platform = MockClient(pep_server.url, "pep-platform")
    grant = platform.post("/api/oauth/v1/token", data={"grant_type": "client_credentials"},
                          auth=(CLIENT, SECRET))
    bearer = {"Authorization": f"Bearer {grant.json()['access_token']}"}
    player = {
        "playerId": "answers-sync-1", "registrationDate": "2026-01-02T03:04:05Z",
        "country": "DE", "currency": "EUR", "firstName": "Marie", "lastName": "Berge",
        "email": "answers@example.com", "birthDate": "1990-04-12", "tags": ["pepharness"],
    }
    synced = platform.post("/api/players-data/v1/migrate/batch", json={"players": [player]},
                           headers=bearer)
    assert synced.status_code == 202, synced.text
    fetched = platform.get("/api/data-fetch/v1/players", params={"limit": "50"}, headers=bearer)
    assert fetched.json()["items"], fetched.text
    answers.check(RULE, "pep-platform", "GET /api/data-fetch/v1/players", [fetched], _curl)
