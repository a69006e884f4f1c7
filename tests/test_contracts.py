"""The contracts: valid OpenAPI 3.1, faithful to the seeds, tight enough to catch a wrong type."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pepharness import contracts, validation

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SINATRA_SEED = SEEDS / "003_318008f88bc30fc7.txt"
GOLDEN = resources.files("pepharness.fixtures") / "golden"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def json_blocks(text: str) -> list[Any]:
    """Every JSON document that starts a line of the seed, in order."""
    decoder = json.JSONDecoder()
    found, position = [], 0
    start = re.compile(r"^[\[{]", re.M)
    while match := start.search(text, position):
        try:
            value, position = decoder.raw_decode(text, match.start())
        except ValueError:
            position = match.start() + 1
            continue
        found.append(value)
    return found


def golden_files() -> dict[str, Any]:
    index = json.loads((GOLDEN / "index.json").read_text(encoding="utf-8"))
    return {name: json.loads((GOLDEN / name).read_text(encoding="utf-8")) for name in index}


def all_examples(node: Any) -> list[Any]:
    """Every `examples.*.value` and `example` under a node of a contract."""
    found: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "examples" and isinstance(value, dict):
                found.extend(
                    v["value"] for v in value.values() if isinstance(v, dict) and "value" in v
                )
            elif key == "example":
                found.append(value)
            else:
                found.extend(all_examples(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(all_examples(item))
    return found


@pytest.mark.parametrize(
    "name", ["sinatra", "operator-identity", "admin", "pep-frontend", "pep-platform"]
)
def test_contract_is_valid_openapi_31_and_its_examples_fit(name: str) -> None:
    assert name in contracts.names()
    assert contracts.load(name)["openapi"].startswith("3.1")
    assert contracts.spec_errors(name) == []
    assert contracts.example_errors(name) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda op: op.update(responses="nope"),
        lambda op: op.update(operationId=5),
        lambda op: op["parameters"][0].update({"in": "body"}),
    ],
)
def test_a_broken_contract_is_reported(monkeypatch: pytest.MonkeyPatch, damage: Any) -> None:
    broken = copy.deepcopy(contracts.load("sinatra"))
    damage(broken["paths"]["/games/{version}/view/detailed"]["get"])
    monkeypatch.setattr(contracts, "load", lambda name: broken)
    assert contracts.spec_errors("sinatra")


@pytest.mark.parametrize(
    ("name", "sources"),
    [
        ("sinatra", {"documented", "inferred"}),
        ("operator-identity", {"documented", "inferred"}),
        ("pep-platform", {"documented", "observed", "inferred"}),
    ],
)
def test_every_operation_and_response_says_where_it_comes_from(
    name: str, sources: set[str]
) -> None:
    for method, path, operation in contracts.operations(name):
        assert operation.get("x-source") in sources, (method, path)
        for status, response in operation["responses"].items():
            if "$ref" in response:
                ref = response["$ref"].rsplit("/", 1)[-1]
                response = contracts.load(name)["components"]["responses"][ref]
            assert response.get("x-source") in sources, (path, status)


def test_sinatra_has_every_operation_of_the_seed_with_its_status_codes() -> None:
    documented = {
        ("POST", "/{version}/login/"): {"200", "400", "500"},
        ("GET", "/vendors/{version}/view/available"): {"200", "400", "401", "403", "500"},
        ("GET", "/games/{version}/view/detailed"): {"200", "401", "403", "500"},
        ("GET", "/games/{version}/assets/{game_id}"): {"200", "400", "401", "500"},
        ("GET", "/transactions/{version}/games/history"): {"200", "401"},
        ("GET", "/transactions/{version}/games/history/api"): {
            "200",
            "400",
            "401",
            "403",
            "422",
            "429",
            "500",
        },
        ("GET", "/transactions/{version}/games/history/metadata"): {"200", "401", "403", "500"},
        (
            "GET",
            "/transactions/{version}/games/round/details/{casino_id}/{game_id}/{round_id}",
        ): {"200", "401", "403", "422", "500"},
    }
    operations = {(m, p): op for m, p, op in contracts.operations("sinatra")}
    assert set(operations) == set(documented)
    for key, statuses in documented.items():
        assert statuses <= set(operations[key]["responses"]), key


def test_sinatra_keeps_the_seeds_quirks() -> None:
    spec = contracts.load("sinatra")
    paths = spec["paths"]
    catalog = paths["/games/{version}/view/detailed"]["get"]
    assert "game_identifire" in {p["name"] for p in catalog["parameters"]}
    login = paths["/{version}/login/"]["post"]
    assert login["security"] == []
    assert "jwt-auth" in login["responses"]["200"]["headers"]
    assert login["responses"]["200"]["headers"]["jwt-auth"]["required"] is True
    assert "401" not in login["responses"]
    paginated = paths["/transactions/{version}/games/history/api"]["get"]
    assert paginated["security"] == [{"basicAuth": []}]
    assert spec["components"]["securitySchemes"]["basicAuth"] == {
        **spec["components"]["securitySchemes"]["basicAuth"],
        "type": "http",
        "scheme": "basic",
    }
    assert spec["components"]["securitySchemes"]["jwtAuth"]["name"] == "jwt-auth"
    assert spec["security"] == [{"jwtAuth": []}]
    assert "Retry-After" in paginated["responses"]["429"]["headers"]
    page_size = next(p for p in paginated["parameters"] if p.get("name") == "page_size")
    assert page_size["schema"]["minimum"] == 1 and page_size["schema"]["default"] == 200
    plain = paths["/transactions/{version}/games/history"]["get"]
    assert plain["x-source"] == "inferred"
    assets = paths["/games/{version}/assets/{game_id}"]
    assert next(p for p in assets["parameters"] if p.get("name") == "game_id")["in"] == "path"


def test_golden_files_are_the_seeds_examples_verbatim() -> None:
    if not SINATRA_SEED.is_file():
        pytest.skip("the seeds are not beside this checkout")
    seed_blocks = json_blocks(SINATRA_SEED.read_text(encoding="utf-8"))
    golden = list(golden_files().values())
    assert len(golden) == len(seed_blocks) == 14
    for document in golden:
        assert document in seed_blocks


def test_the_seeds_examples_are_the_contracts_examples() -> None:
    examples = all_examples(contracts.load("sinatra")["paths"]) + all_examples(
        contracts.load("sinatra")["components"]["responses"]
    )
    for name, document in golden_files().items():
        assert document in examples, name


def test_every_golden_example_validates() -> None:
    outcome = validation.validate_golden()
    assert outcome.checked == 15
    assert outcome.problems == []


def test_generated_records_validate_ten_thousand_and_more() -> None:
    outcome = validation.validate_generated(seed=7, anchor=validation_anchor())
    assert outcome.checked >= 10_000
    assert outcome.problems == []


def validation_anchor() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 6, 15, tzinfo=UTC)


WRONG_TYPES = [
    ("Game", "defaultRtp", 96.21),  # the seed keeps catalog numbers as strings
    ("Game", "gameId", 9999999),
    ("Game", "minBet", [{"value": 0.2}]),
    ("Game", "releaseDate", "05/05/2019"),
    ("Provider", "id", "1"),
    ("HistoryRound", "bet", "0.05"),
    ("HistoryPage", "total_count", "393"),
    ("LoginResponse", "available_operators", ["9999999"]),
    ("Transaction", "type", "bet"),
    ("Transaction", "timestamp", "2023-07-25T14:44:13Z"),
    ("MarketingAssets", "Banners", "https://someuri.gaming.com/image1.jpg"),
]


@pytest.mark.parametrize(("schema", "key", "value"), WRONG_TYPES)
def test_validation_fails_on_a_record_with_a_wrong_type(schema: str, key: str, value: Any) -> None:
    golden = golden_files()
    samples = {
        "Game": golden["games_detailed.json"][0],
        "Provider": golden["vendors_available.json"][0],
        "HistoryPage": golden["history_paginated.json"],
        "HistoryRound": golden["history_paginated.json"]["responses"][0],
        "Transaction": golden["history_paginated.json"]["responses"][0]["transactions"][
            "good_transactions"
        ][0],
        "LoginResponse": golden["login_response.json"],
        "MarketingAssets": golden["game_assets.json"],
    }
    record = copy.deepcopy(samples[schema])
    assert contracts.record_errors("sinatra", schema, record) == []
    record[key] = value
    assert contracts.record_errors("sinatra", schema, record)


def test_a_missing_required_field_fails_and_the_optional_ones_may_go() -> None:
    game = copy.deepcopy(golden_files()["games_detailed.json"][0])
    for optional in ("vendorName", "payLines", "hitFrequency"):
        game.pop(optional, None)
    assert contracts.record_errors("sinatra", "Game", game) == []
    del game["subVendorName"]
    assert contracts.record_errors("sinatra", "Game", game)


def test_operator_identity_expires_at_must_be_rfc3339_with_an_offset() -> None:
    ok = {"playerId": "131918", "expiresAt": "2026-11-25T14:44:13+01:00"}
    assert contracts.record_errors("operator-identity", "PlayerIdentity", ok) == []
    assert contracts.record_errors("operator-identity", "PlayerIdentity", {"playerId": "1"}) == []
    for bad in ("2026-11-25", "2026-11-25T14:44:13", "yesterday", 1764000000):
        record = {"playerId": "1", "expiresAt": bad}
        assert contracts.record_errors("operator-identity", "PlayerIdentity", record), bad
    assert contracts.record_errors("operator-identity", "PlayerIdentity", {"expiresAt": ok})
    assert contracts.record_errors("operator-identity", "PlayerIdentity", {"playerId": 131918})


def test_an_unknown_contract_is_a_clear_error() -> None:
    with pytest.raises(contracts.UnknownContract, match="shipped: admin"):
        contracts.load("nope")


def test_response_validation_accepts_the_seeds_answers_and_names_what_breaks() -> None:
    from requests.structures import CaseInsensitiveDict

    golden = golden_files()
    login = json.dumps(golden["login_response.json"]).encode()
    ok_headers = CaseInsensitiveDict({"jwt-auth": "token", "Content-Type": "application/json"})
    check = contracts.response_problems
    assert check("sinatra", "POST", "/1.0/login/", 200, ok_headers, login) == []
    assert check("sinatra", "POST", "/anything/login/", 400, ok_headers, b'{"errMsg": "x"}') == []
    missing = check("sinatra", "POST", "/1.0/login/", 200, CaseInsensitiveDict(), login)
    assert any("jwt-auth missing" in p for p in missing)
    assert any(
        "not documented" in p
        for p in check("sinatra", "POST", "/1.0/login/", 401, ok_headers, b'{"errMsg": "x"}')
    )
    page = json.dumps(golden["history_paginated.json"]).encode()
    history = "/transactions/1.0/games/history/api"
    assert check("sinatra", "GET", history, 200, ok_headers, page) == []
    assert check("sinatra", "GET", history, 200, ok_headers, b"<html>")
    slow = b'{"errMsg": "slow down"}'
    good_wait = CaseInsensitiveDict({"Retry-After": "1"})
    assert check("sinatra", "GET", history, 429, good_wait, slow) == []
    bad_wait = CaseInsensitiveDict({"Retry-After": "soon"})
    assert check("sinatra", "GET", history, 429, bad_wait, slow)
    assert check("sinatra", "GET", "/nowhere", 200, ok_headers, b"{}")
    assert check("sinatra", "GET", history, 200, ok_headers, b'{"page_num": "1"}')
