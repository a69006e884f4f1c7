"""The Sinatra mock over real HTTP: every documented behaviour, through `SinatraClient`."""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pepharness.fixtures import (
    ASSET_CATEGORIES,
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    RESTRICTED_EMAIL,
    RESTRICTED_PASSWORD,
    SEEDED_OPERATOR_ID,
    TIME_PERIODS,
    Dataset,
    Round,
    metadata_document,
    months_before,
)

PROVIDERS = "/vendors/1.0/view/available"
CATALOG = "/games/1.0/view/detailed"
HISTORY = "/transactions/1.0/games/history"
HISTORY_API = "/transactions/1.0/games/history/api"
METADATA = "/transactions/1.0/games/history/metadata"
OPERATOR = (OPERATOR_EMAIL, OPERATOR_PASSWORD)
RESTRICTED = (RESTRICTED_EMAIL, RESTRICTED_PASSWORD)
OTHER_OPERATOR = 1488
"""An operator of the seeded data that the seeded users do not have."""

if TYPE_CHECKING:
    from conftest import SinatraClient

Identity = tuple[str, str, str]


def assets_path(game_id: str) -> str:
    return f"/games/1.0/assets/{game_id}"


def details_path(casino: object, game: str, round_id: str) -> str:
    return f"/transactions/1.0/games/round/details/{casino}/{game}/{round_id}"


def error(response: Any) -> tuple[int, Any]:
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, response.json()


def operator_rounds(data: Dataset, operator_id: int = SEEDED_OPERATOR_ID) -> list[Round]:
    return [r for r in data.rounds if data.brand_by_id[r.brand_id].operator_id == operator_id]


def identities(rounds: Iterable[dict[str, Any]]) -> list[Identity]:
    """Every transaction of the round documents, as (round_id, trans_id, type) (D23)."""
    return [
        (t["round_id"], t["trans_id"], t["type"])
        for r in rounds
        for t in r["transactions"]["good_transactions"] + r["transactions"]["bad_transactions"]
    ]


def expected(data: Dataset, start: datetime, end: datetime) -> set[Identity]:
    return {
        (r.round_id, t.trans_id, t.type)
        for r in operator_rounds(data)
        if start <= r.started_at < end
        for t in r.transactions
    }


def pin_clock(sinatra: SinatraClient) -> datetime:
    """Set the service clock half-way into the current second: window edges then stay clear of
    the whole-second start times of rounds while real time flows on during the test."""
    real = datetime.now(UTC).replace(microsecond=500_000)
    return sinatra.set_clock(real)


def midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def token(sinatra: SinatraClient) -> str:
    return sinatra.login()


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"jwt-auth": token}


@pytest.fixture(scope="module")
def a_round(sinatra_data: Dataset) -> Round:
    """A recent round of the seeded operator with several transactions."""
    return next(r for r in reversed(operator_rounds(sinatra_data)) if len(r.transactions) > 1)


@pytest.fixture(scope="module")
def jwt_paths(sinatra_data: Dataset, a_round: Round) -> list[str]:
    """One request per `jwt-auth` operation that answers 200 to the seeded operator."""
    return [
        PROVIDERS,
        CATALOG,
        assets_path(sinatra_data.games[0].game_id),
        HISTORY,
        METADATA,
        details_path(SEEDED_OPERATOR_ID, a_round.game_id, a_round.round_id),
    ]


# -- login -----------------------------------------------------------------------------------


def test_login_answers_the_user_document_and_a_jwt_auth_header(sinatra: SinatraClient) -> None:
    response = sinatra.post("/1.0/login/", json={"email": OPERATOR_EMAIL, "password": "x"})
    assert error(response) == (400, {"errMsg": "Username or Password incorrect"})
    response = sinatra.post(
        "/1.0/login/", json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "permissions",
        "user",
        "available_operators",
        "available_vendors",
        "login_as",
        "original_email",
    ]
    assert body["available_operators"] == [SEEDED_OPERATOR_ID]
    assert {"id": 1, "name": "View games catalog"} in body["permissions"]
    assert body["user"]["email"] == body["original_email"] == OPERATOR_EMAIL
    assert OPERATOR_PASSWORD not in response.text
    claims = jwt.decode(response.headers["jwt-auth"], options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("sinatra", "sinatra", OPERATOR_EMAIL)
    assert claims["exp"] - claims["iat"] == 20 * 60


def test_login_without_the_trailing_slash_is_answered_not_redirected(
    sinatra: SinatraClient,
) -> None:
    response = sinatra.post("/1.0/login", json={"email": OPERATOR_EMAIL, "password": "nope"})
    assert error(response) == (400, {"errMsg": "Username or Password incorrect"})
    response = sinatra.post(
        "/1.0/login", json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
    )
    assert response.status_code == 200 and response.headers["jwt-auth"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"operator@example.com"',
        b'{"email": "operator@example.com"}',
        b'{"email": 1, "password": "operator-secret"}',
        b'{"email": ["operator@example.com"], "password": "operator-secret"}',
        b'{"email": "a", "password": NaN}',
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
)
def test_a_malformed_login_body_is_400_bad_request(sinatra: SinatraClient, body: bytes) -> None:
    response = sinatra.post("/1.0/login/", data=body, headers={"Content-Type": "application/json"})
    assert error(response) == (400, {"errMsg": "Bad Request"})


@pytest.mark.parametrize("version", ["1.0", "2", "v9", "latest", "0.0.1-beta"])
def test_any_version_segment_behaves_as_1_0(
    sinatra: SinatraClient, version: str, jwt_paths: list[str]
) -> None:
    response = sinatra.post(
        f"/{version}/login/", json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
    )
    headers = {"jwt-auth": response.headers["jwt-auth"]}
    for path in jwt_paths:
        versioned = path.replace("/1.0/", f"/{version}/")
        assert sinatra.get(versioned, headers=headers).content == (
            sinatra.get(path, headers=headers).content
        )
    versioned_api = HISTORY_API.replace("/1.0/", f"/{version}/")
    assert sinatra.get(versioned_api, auth=OPERATOR).status_code == 200


# -- jwt-auth --------------------------------------------------------------------------------


def test_every_jwt_operation_needs_the_token(
    sinatra: SinatraClient, jwt_paths: list[str], auth: dict[str, str]
) -> None:
    for path in jwt_paths:
        assert error(sinatra.get(path)) == (401, {"errMsg": "unauthorized"}), path
        assert sinatra.get(path, headers=auth).status_code == 200, path


def _tampered(token: str) -> dict[str, str]:
    header, payload, _ = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    return {
        "forged": jwt.encode(claims, "another-key-of-at-least-32-bytes!!", algorithm="HS256"),
        "truncated": token[:-6],
        "no signature": f"{header}.{payload}.",
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "other audience": jwt.encode(
            {**claims, "aud": "pep"}, "another-key-of-at-least-32-bytes!!", algorithm="HS256"
        ),
        "garbage": "not-a-token",
        "non-ascii": "ünïcødé",
        "huge": "a" * 20_000,
        "empty": "",
    }


def test_forged_truncated_and_unsigned_tokens_are_401(
    sinatra: SinatraClient, token: str, jwt_paths: list[str]
) -> None:
    for name, bad in _tampered(token).items():
        for path in jwt_paths:
            response = sinatra.get(path, headers={"jwt-auth": bad.encode("utf-8")})
            assert error(response) == (401, {"errMsg": "unauthorized"}), (name, path)


def test_the_token_expires_exactly_20_minutes_after_issue(sinatra: SinatraClient) -> None:
    issued = sinatra.set_clock(datetime.now(UTC).replace(microsecond=0) + timedelta(days=1))
    token = sinatra.login()
    assert jwt.decode(token, options={"verify_signature": False})["iat"] == issued.timestamp()
    sinatra.set_clock(issued + timedelta(minutes=19, seconds=59))
    assert sinatra.get(PROVIDERS, headers={"jwt-auth": token}).status_code == 200
    sinatra.set_clock(issued + timedelta(minutes=20))
    assert error(sinatra.get(PROVIDERS, headers={"jwt-auth": token}))[0] == 401
    sinatra.advance(1)
    assert error(sinatra.get(PROVIDERS, headers={"jwt-auth": token})) == (
        401,
        {"errMsg": "unauthorized"},
    )


def test_a_token_of_a_user_removed_by_reset_is_401(sinatra: SinatraClient) -> None:
    sinatra.add_user("temp@example.com", "temp-secret", ["View Game provider list"])
    headers = sinatra.as_user("temp@example.com", "temp-secret")
    assert sinatra.get(PROVIDERS, headers=headers).status_code == 200
    sinatra.reset()
    assert error(sinatra.get(PROVIDERS, headers=headers))[0] == 401


# -- permissions -----------------------------------------------------------------------------


def test_the_restricted_user_is_403_everywhere_but_assets(
    sinatra: SinatraClient, jwt_paths: list[str]
) -> None:
    headers = sinatra.as_user(*RESTRICTED)
    for path in jwt_paths:
        response = sinatra.get(path, headers=headers)
        if path.startswith("/games/1.0/assets/"):
            assert response.status_code == 200  # D8: a session is enough
        else:
            assert error(response) == (403, {"errMsg": "forbidden_operation"}), path
    assert error(sinatra.get(HISTORY_API, auth=RESTRICTED)) == (403, {"errMsg": "forbidden"})


def test_an_operator_outside_available_operators_is_403(
    sinatra: SinatraClient, auth: dict[str, str], a_round: Round
) -> None:
    forbidden = (403, {"errMsg": "forbidden_operation"})
    params = {"operator_id": OTHER_OPERATOR}
    assert error(sinatra.get(CATALOG, headers=auth, params=params)) == forbidden
    assert error(sinatra.get(HISTORY, headers=auth, params=params)) == forbidden
    path = details_path(OTHER_OPERATOR, a_round.game_id, a_round.round_id)
    assert error(sinatra.get(path, headers=auth)) == forbidden


def test_permissions_of_an_added_user_follow_its_permission_list(sinatra: SinatraClient) -> None:
    sinatra.add_user("view@example.com", "pw", [27, "view games catalog"], [OTHER_OPERATOR])
    headers = sinatra.as_user("view@example.com", "pw")
    assert sinatra.get(PROVIDERS, headers=headers).status_code == 200
    games = sinatra.get(CATALOG, headers=headers).json()
    assert games and sinatra.get(METADATA, headers=headers).status_code == 403
    all_games = sinatra.get(CATALOG, headers=sinatra.as_user()).json()
    assert [g["gameId"] for g in games] != [g["gameId"] for g in all_games]


# -- catalog, providers, assets --------------------------------------------------------------


def test_catalog_filters(
    sinatra: SinatraClient, auth: dict[str, str], sinatra_data: Dataset
) -> None:
    def ids(**params: object) -> list[str]:
        response = sinatra.get(CATALOG, headers=auth, params=params)
        assert response.status_code == 200, response.text
        return [g["gameId"] for g in response.json()]

    offered = [g for g in sinatra_data.games if SEEDED_OPERATOR_ID in g.operator_ids]
    every = [g.game_id for g in offered]
    assert ids() == every == ids(operator_id=SEEDED_OPERATOR_ID)
    middle = sorted(g.release_date for g in offered)[len(offered) // 2]
    assert ids(date_from=middle) == [g.game_id for g in offered if g.release_date >= middle]
    assert ids(date_from="1970-01-01") == every
    two = sorted({g.provider_id for g in offered})[:2]
    assert ids(sub_provider=",".join(map(str, two))) == [
        g.game_id for g in offered if g.provider_id in two
    ]
    needle = offered[7].game_id[1:4]
    assert ids(game_identifire=needle) == [
        g.game_id for g in offered if needle in g.game_id or needle in g.game_name.lower()
    ]
    word = offered[3].game_name.split()[0][1:4].upper()
    assert ids(game_identifire=word) == [
        g.game_id for g in offered if word.lower() in g.game_name.lower()
    ]
    assert ids(game_name="mega") == [g.game_id for g in offered if "mega" in g.game_name.lower()]
    assert any(
        "omega" in g.game_name.lower() for g in offered if g.game_id in ids(game_name="mega")
    )
    wanted = [offered[9].game_id, offered[2].game_id, "123"]
    assert ids(game_ids=",".join(wanted)) == [offered[2].game_id, offered[9].game_id]
    both = ids(game_name="a", sub_provider=two[0])
    assert both == [g for g in ids(game_name="a") if g in ids(sub_provider=two[0])]
    for params in (
        {"date_from": "2020-13-01"},
        {"date_from": "01-10-2020"},
        {"operator_id": "abc"},
        {"sub_provider": "1,two"},
        {"game_ids": "1 2"},
    ):
        response = sinatra.get(CATALOG, headers=auth, params=params)
        assert error(response) == (400, {"errMsg": "Bad Request"}), params


def test_catalog_documents_keep_the_seeds_shape(
    sinatra: SinatraClient, auth: dict[str, str]
) -> None:
    game = sinatra.get(CATALOG, headers=auth).json()[0]
    assert list(game)[:4] == ["gameId", "gameName", "gameType", "gameCategory"]
    assert isinstance(game["defaultRtp"], str) and isinstance(game["minBet"][0]["value"], str)


def test_providers(sinatra: SinatraClient, auth: dict[str, str], sinatra_data: Dataset) -> None:
    assert sinatra.get(PROVIDERS, headers=auth).json() == [
        {"id": p.id, "name": p.name, "organization_name": p.organization_name}
        for p in sinatra_data.providers
    ]


def test_assets_have_the_seven_categories(
    sinatra: SinatraClient, auth: dict[str, str], sinatra_data: Dataset
) -> None:
    game_id = sinatra_data.games[4].game_id
    assets = sinatra.get(assets_path(game_id), headers=auth).json()
    assert list(assets) == list(ASSET_CATEGORIES)
    assert all(isinstance(url, str) for urls in assets.values() for url in urls)
    assert assets["Games Catalog image"]
    assert sinatra.get(assets_path(game_id), headers=auth, params={"game_id": "1"}).json() == assets


def test_assets_of_an_unknown_game_are_400(sinatra: SinatraClient, auth: dict[str, str]) -> None:
    for game_id in ("1", "no-such-game", "ü" * 50):
        assert error(sinatra.get(assets_path(game_id), headers=auth)) == (
            400,
            {"errMsg": "Bad Request"},
        )


# -- history metadata and round details ------------------------------------------------------


def test_metadata_is_consistent_with_the_data(
    sinatra: SinatraClient, auth: dict[str, str], sinatra_data: Dataset
) -> None:
    metadata = sinatra.get(METADATA, headers=auth).json()
    assert metadata == metadata_document(sinatra_data, [SEEDED_OPERATOR_ID])
    assert metadata["timePeriods"] == list(TIME_PERIODS)
    rounds = sinatra.get(HISTORY, headers=auth, params={"time_period": "last 30 days"}).json()
    brands = {b["brandId"] for b in metadata["brands"]}
    assert rounds and {r["brand_id"] for r in rounds} <= brands
    catalog = sinatra.get(CATALOG, headers=auth).json()
    assert {g["gameCategory"] for g in catalog} <= set(metadata["gameCategories"])
    assert {g["gameType"] for g in catalog} <= set(metadata["gameTypes"])


def test_round_details(
    sinatra: SinatraClient, auth: dict[str, str], a_round: Round, sinatra_data: Dataset
) -> None:
    path = details_path(SEEDED_OPERATOR_ID, a_round.game_id, a_round.round_id)
    details = sinatra.get(path, headers=auth).json()
    assert (details["status"], details["action"]) == ("Success", "url")
    assert details["url"].startswith("https://")
    invalid = (422, {"errMsg": "Invalid parameters"})
    other_game = next(g.game_id for g in sinatra_data.games if g.game_id != a_round.game_id)
    for casino, game, round_id in (
        (SEEDED_OPERATOR_ID, a_round.game_id, "999999999999"),
        (SEEDED_OPERATOR_ID, other_game, a_round.round_id),
        ("not-a-casino", a_round.game_id, a_round.round_id),
    ):
        assert error(sinatra.get(details_path(casino, game, round_id), headers=auth)) == invalid
    # A round of another of the user's casinos is not a round of this one.
    sinatra.add_user("two@example.com", "pw", ["View round details"], [9999999, OTHER_OPERATOR])
    two = sinatra.as_user("two@example.com", "pw")
    wrong = details_path(OTHER_OPERATOR, a_round.game_id, a_round.round_id)
    assert error(sinatra.get(wrong, headers=two)) == invalid
    assert sinatra.get(path, headers=two).status_code == 200


# -- plain history ---------------------------------------------------------------------------


def test_plain_history_is_the_windows_rounds_with_all_their_transactions(
    sinatra: SinatraClient, auth: dict[str, str], sinatra_data: Dataset
) -> None:
    now = pin_clock(sinatra)
    start = midnight(now) - timedelta(days=29)
    rounds = sinatra.get(HISTORY, headers=auth, params={"time_period": "last 30 days"}).json()
    assert set(identities(rounds)) == expected(sinatra_data, start, now)
    assert len(identities(rounds)) == len(set(identities(rounds)))
    assert rounds == sorted(
        rounds, key=lambda r: sinatra_data.round_by_id[r["round_id"]].started_at
    )
    first = rounds[0]
    game = sinatra_data.game_by_id[first["game_id"]]
    brand = sinatra_data.brand_by_id[first["brand_id"]]
    window = {"time_period": "last 30 days"}
    for params, keep in (
        ({"game_id": first["game_id"]}, lambda r: r["game_id"] == first["game_id"]),
        ({"player_id": first["player_id"]}, lambda r: r["player_id"] == first["player_id"]),
        ({"brand_ids": str(brand.brand_id)}, lambda r: r["brand_id"] == brand.brand_id),
        (
            {"provider_ids": f"{game.provider_id},1"},
            lambda r: sinatra_data.game_by_id[r["game_id"]].provider_id == game.provider_id,
        ),
        (
            {"game_category": game.game_category.upper()},
            lambda r: sinatra_data.game_by_id[r["game_id"]].game_category == game.game_category,
        ),
        (
            {"game_type": game.game_type},
            lambda r: sinatra_data.game_by_id[r["game_id"]].game_type == game.game_type,
        ),
        ({"organization_ids": str(brand.organization_id)}, lambda r: True),
        ({"operator_id": str(SEEDED_OPERATOR_ID)}, lambda r: True),
    ):
        got = sinatra.get(HISTORY, headers=auth, params={**window, **params}).json()
        assert got == [r for r in rounds if keep(r)], params
    assert error(sinatra.get(HISTORY, headers=auth, params={"game_id": "abc"}))[0] == 400
    assert error(sinatra.get(HISTORY, headers=auth, params={"brand_ids": "1"}))[0] == 422
    other_brand = next(b for b in sinatra_data.brands if b.operator_id == OTHER_OPERATOR)
    response = sinatra.get(HISTORY, headers=auth, params={"brand_ids": other_brand.brand_id})
    assert error(response)[0] == 403


def test_plain_history_shares_the_paginated_windows_rules(
    sinatra: SinatraClient, auth: dict[str, str]
) -> None:
    assert error(sinatra.get(HISTORY, headers=auth, params={"from": "2025-01-01"}))[0] == 422
    assert error(sinatra.get(HISTORY, headers=auth, params={"time_period": "ever"}))[0] == 400
    day = datetime.now(UTC).date()
    window = {"from": (day - timedelta(days=20)).isoformat(), "to": day.isoformat()}
    plain = sinatra.get(HISTORY, headers=auth, params=window).json()
    sinatra.rate_limit(1000, 1)
    paged = sinatra.get(HISTORY_API, auth=OPERATOR, params={**window, "page_size": 10_000})
    assert plain == paged.json()["responses"]


# -- paginated history -----------------------------------------------------------------------


def test_paginated_history_takes_basic_auth(sinatra: SinatraClient, token: str) -> None:
    unauthorized = (401, {"errMsg": "unauthorized"})
    for kwargs in (
        {},
        {"auth": (OPERATOR_EMAIL, "wrong")},
        {"auth": ("nobody@example.com", OPERATOR_PASSWORD)},
        {"headers": {"jwt-auth": token}},
        {"headers": {"Authorization": "Basic !!not-base64!!"}},
        {"headers": {"Authorization": f"Bearer {token}"}},
        {"headers": {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}},
    ):
        response = sinatra.get(HISTORY_API, **kwargs)
        assert error(response) == unauthorized, kwargs
        assert response.headers["WWW-Authenticate"] == 'Basic realm="sinatra"'
    page = sinatra.get(HISTORY_API, auth=OPERATOR).json()
    assert list(page) == ["page_num", "size_per_page", "total_count", "responses"]
    assert (page["page_num"], page["size_per_page"]) == (1, 200)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"page_number": "one"}, 400),
        ({"page_size": "1.5"}, 400),
        ({"page_size": "9" * 30}, 400),
        ({"from": "2025-1-1", "to": "2025-01-02"}, 400),
        ({"from": "2025-01-01", "to": "tomorrow"}, 400),
        ({"time_period": "last 90 days"}, 400),
        ({"time_period": "Today"}, 400),
        ({"round_ids": "1,,2"}, 400),
        ({"round_ids": "1;2"}, 400),
        ({"page_number": "0"}, 422),
        ({"page_number": "-1"}, 422),
        ({"page_size": "0"}, 422),
        ({"page_size": "10001"}, 422),
        ({"from": "2025-01-01"}, 422),
        ({"to": "2025-01-01"}, 422),
        ({"from": ""}, 422),
        ({"from": "2025-02-01", "to": "2025-01-31"}, 422),
        ({"page_size": "0", "time_period": "never"}, 400),
        ({"from": "2025-01-01", "to": "2025-01-02", "time_period": "never"}, 200),
        ({"page_size": "10000", "page_number": "99999999"}, 200),
    ],
)
def test_paginated_history_400_vs_422(
    sinatra: SinatraClient, params: dict[str, str], status: int
) -> None:
    response = sinatra.get(HISTORY_API, auth=OPERATOR, params=params)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json() == {"errMsg": "Bad Request"}
    elif status == 422:
        assert response.json() == {"errMsg": "Invalid parameters"}


def total(sinatra: SinatraClient, **params: object) -> int:
    response = sinatra.get(HISTORY_API, auth=OPERATOR, params={**params, "page_size": 1})
    assert response.status_code == 200, response.text
    return int(response.json()["total_count"])


def test_history_reaches_back_six_months_and_no_further(
    sinatra: SinatraClient, sinatra_data: Dataset
) -> None:
    sinatra.rate_limit(1000, 1)
    now = pin_clock(sinatra)
    reach = months_before(now, 6)
    assert any(r.started_at < reach for r in operator_rounds(sinatra_data))  # older data exists
    within = len(expected(sinatra_data, reach, now))
    today = now.date()
    assert total(sinatra, **{"from": "1970-01-01", "to": today.isoformat()}) == within
    older = (reach - timedelta(days=40)).date().isoformat()
    assert total(sinatra, **{"from": older, "to": "2999-12-31"}) == within
    old = next(r for r in operator_rounds(sinatra_data) if r.started_at < reach)
    response = sinatra.get(
        HISTORY_API,
        auth=OPERATOR,
        params={"from": "1970-01-01", "to": today.isoformat(), "round_ids": old.round_id},
    )
    assert response.json()["responses"] == []


def test_time_periods_and_from_to(sinatra: SinatraClient, sinatra_data: Dataset) -> None:
    sinatra.rate_limit(1000, 1)
    now = pin_clock(sinatra)
    today = midnight(now)
    windows = {
        "today": (today, now),
        "yesterday": (today - timedelta(days=1), today),
        "last 7 days": (today - timedelta(days=6), now),
        "last 30 days": (today - timedelta(days=29), now),
    }
    for period, (start, end) in windows.items():
        assert total(sinatra, time_period=period) == len(expected(sinatra_data, start, end))
    assert total(sinatra) == total(sinatra, time_period="today")
    assert total(sinatra, **{"from": "", "to": ""}) == total(sinatra, time_period="today")
    first, last = (now - timedelta(days=12)).date(), (now - timedelta(days=5)).date()
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    window = {"from": first.isoformat(), "to": last.isoformat()}
    count = len(expected(sinatra_data, start, end))
    assert total(sinatra, **window) == count > 0
    # time_period is ignored when from and to are given (D21)
    assert total(sinatra, **window, time_period="yesterday") == count


def test_round_ids(sinatra: SinatraClient, sinatra_data: Dataset) -> None:
    sinatra.rate_limit(1000, 1)
    now = pin_clock(sinatra)
    window = {"from": (now - timedelta(days=60)).date().isoformat(), "to": now.date().isoformat()}
    recent = [r for r in operator_rounds(sinatra_data) if r.started_at > now - timedelta(days=50)]
    chosen = [recent[10], recent[3], recent[-1]]
    ids = ",".join(r.round_id for r in chosen) + ",no-such-round"
    page = sinatra.get(HISTORY_API, auth=OPERATOR, params={**window, "round_ids": ids}).json()
    assert [r["round_id"] for r in page["responses"]] == [
        recent[3].round_id,
        recent[10].round_id,
        recent[-1].round_id,
    ]
    assert page["total_count"] == sum(len(r.transactions) for r in chosen)
    everything = sinatra.get(HISTORY_API, auth=OPERATOR, params={**window, "round_ids": ""})
    assert everything.json()["total_count"] == total(sinatra, **window)


def test_a_round_straddling_pages_appears_on_both_with_its_share(
    sinatra: SinatraClient, sinatra_data: Dataset
) -> None:
    sinatra.rate_limit(1000, 1)
    now = pin_clock(sinatra)
    window = {"from": (now - timedelta(days=30)).date().isoformat(), "to": now.date().isoformat()}
    first_page = sinatra.get(HISTORY_API, auth=OPERATOR, params={**window, "page_size": 50})
    rounds = first_page.json()["responses"]
    for size in range(2, 50):
        one = sinatra.get(
            HISTORY_API, auth=OPERATOR, params={**window, "page_size": size, "page_number": 1}
        ).json()["responses"]
        two = sinatra.get(
            HISTORY_API, auth=OPERATOR, params={**window, "page_size": size, "page_number": 2}
        ).json()["responses"]
        if one[-1]["round_id"] == two[0]["round_id"]:
            break
    else:
        pytest.fail("no page boundary fell inside a round")
    whole = next(r for r in rounds if r["round_id"] == one[-1]["round_id"])
    assert identities([one[-1]]) + identities([two[0]]) == identities([whole])
    assert (
        (one[-1]["bet"], one[-1]["win"])
        == (two[0]["bet"], two[0]["win"])
        == (
            whole["bet"],
            whole["win"],
        )
    )


@settings(
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(page_size=st.integers(min_value=1, max_value=300))
def test_pages_hold_every_transaction_exactly_once(
    sinatra: SinatraClient, sinatra_data: Dataset, page_size: int
) -> None:
    sinatra.rate_limit(100_000, 1)
    day = datetime.now(UTC).date()
    window = {
        "from": (day - timedelta(days=45)).isoformat(),
        "to": (day - timedelta(days=36)).isoformat(),
        "page_size": page_size,
    }
    seen: list[Identity] = []
    number, total_count = 1, None
    while True:
        page = sinatra.get(HISTORY_API, auth=OPERATOR, params={**window, "page_number": number})
        body = page.json()
        assert total_count in (None, body["total_count"])
        total_count = body["total_count"]
        got = identities(body["responses"])
        if not got:
            break
        assert len(got) == min(page_size, total_count - (number - 1) * page_size)
        seen += got
        number += 1
    assert len(seen) == len(set(seen)) == total_count > 0
    start = datetime.combine(day - timedelta(days=45), datetime.min.time(), UTC)
    assert set(seen) == expected(sinatra_data, start, start + timedelta(days=10))


# -- rate limit ------------------------------------------------------------------------------


def test_a_burst_gets_429_with_retry_after_and_recovers(sinatra: SinatraClient) -> None:
    statuses = []
    for _ in range(30):
        response = sinatra.get(HISTORY_API, auth=OPERATOR)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {200} and len(statuses) > 5
    assert response.json() == {"errMsg": "slow down"}
    retry_after = int(response.headers["Retry-After"])
    assert retry_after == 1
    # the limit is per credential
    assert sinatra.get(HISTORY_API, auth=RESTRICTED).status_code == 403
    sinatra.advance(retry_after)
    assert sinatra.get(HISTORY_API, auth=OPERATOR).status_code == 200


def test_concurrent_requests_are_counted_exactly(sinatra: SinatraClient) -> None:
    sinatra.rate_limit(20, 3600)
    statuses: Counter[int] = Counter()
    admin_statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def work() -> None:
        client = sinatra.clone()
        for _ in range(10):
            status = client.get(HISTORY_API, auth=OPERATOR, params={"page_size": 5}).status_code
            journal = client.get("/__admin/requests", params={"limit": 5}).status_code
            with lock:
                statuses[status] += 1
                admin_statuses[journal] += 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == {200: 20, 429: 60}
    assert admin_statuses == {200: 80}
    entries = sinatra.admin("GET", "/requests")["requests"]
    api = Counter(e["status"] for e in entries if e["path"] == HISTORY_API)
    assert api == statuses
    assert all(e["error"] is None for e in entries)


# -- the control API -------------------------------------------------------------------------


def test_injected_faults(sinatra: SinatraClient, auth: dict[str, str]) -> None:
    body = {"errMsg": "internal server error"}
    sinatra.admin(
        "POST", "/faults", json={"path": "/vendors/*", "status": 500, "body": body, "times": 1}
    )
    assert error(sinatra.get(PROVIDERS, headers=auth)) == (500, body)
    assert sinatra.get(PROVIDERS, headers=auth).status_code == 200
    fault = {"path": "/games/*", "method": "GET", "status": 500, "body": body, "latency_ms": 5}
    sinatra.admin("POST", "/faults", json=fault)
    assert error(sinatra.get(CATALOG, headers=auth)) == (500, body)
    assert error(sinatra.get(CATALOG, headers=auth)) == (500, body)
    sinatra.admin("DELETE", "/faults")
    assert sinatra.get(CATALOG, headers=auth).status_code == 200
    faulted = [e for e in sinatra.admin("GET", "/requests")["requests"] if e["fault"]]
    assert [e["status"] for e in faulted] == [500, 500, 500]
    assert faulted[-1]["duration_ms"] >= 5


def test_reset_restores_the_seeded_state(sinatra: SinatraClient) -> None:
    sinatra.add_user("gone@example.com", "pw")
    sinatra.advance(86_400)
    sinatra.admin("POST", "/faults", json={"path": "/nothing", "status": 500})
    sinatra.rate_limit(1, 60)
    sinatra.reset()
    journal = sinatra.admin("GET", "/requests")["requests"]
    assert [(e["id"], e["path"]) for e in journal] == [(1, "/__admin/reset")]
    response = sinatra.post("/1.0/login/", json={"email": "gone@example.com", "password": "pw"})
    assert error(response)[0] == 400
    assert abs((sinatra.now() - datetime.now(UTC)).total_seconds()) < 60
    assert sinatra.admin("GET", "/faults") == {"faults": []}
    assert sinatra.admin("GET", "/rate-limit") == {"limit": 5, "period_seconds": 1.0}
    emails = {u["email"] for u in sinatra.admin("GET", "/users")["users"]}
    assert {OPERATOR_EMAIL, RESTRICTED_EMAIL} <= emails and "gone@example.com" not in emails


def test_admin_users(sinatra: SinatraClient) -> None:
    added = sinatra.add_user("new@example.com", "new-secret", ["View game history", 27], [7])
    assert added["permissions"] == ["View game history", "View Game provider list"]
    assert added["available_operators"] == [7]
    listed = sinatra.admin("GET", "/users")["users"]
    assert "new@example.com" in {u["email"] for u in listed}
    assert "password" not in str(listed) and "new-secret" not in str(listed)
    duplicate = sinatra.post("/__admin/users", json={"email": "new@example.com", "password": "x"})
    assert duplicate.status_code == 409 and "error" in duplicate.json()
    for body in (
        {"email": "x@example.com"},
        {"email": 1, "password": "x"},
        {"email": "x:y@example.com", "password": "x"},
        {"email": "x@example.com", "password": "x", "permissions": ["Fly"]},
        {"email": "x@example.com", "password": "x", "permissions": "View games catalog"},
        {"email": "x@example.com", "password": "x", "available_operators": ["9999999"]},
        {"email": "x@example.com", "password": "x", "available_operators": [True]},
        {"email": "x@example.com", "password": "x", "role": "admin"},
        [],
    ):
        response = sinatra.post("/__admin/users", json=body)
        assert response.status_code == 400 and "error" in response.json(), body
    assert sinatra.post("/__admin/users", data=b"{").status_code == 400


def test_the_journal_keeps_no_secret(sinatra: SinatraClient) -> None:
    token = sinatra.login()
    sinatra.get(PROVIDERS, headers={"jwt-auth": token})
    sinatra.get(HISTORY_API, auth=OPERATOR)
    sinatra.get(CATALOG, headers={"jwt-auth": token}, params={"password": "hunter2", "x": "1"})
    journal = sinatra.get("/__admin/requests")
    text = journal.text
    basic = base64.b64encode(f"{OPERATOR_EMAIL}:{OPERATOR_PASSWORD}".encode()).decode()
    for secret in (OPERATOR_PASSWORD, token, token.split(".")[2], basic, "hunter2"):
        assert secret not in text
    kinds = {e["auth"] for e in journal.json()["requests"]}
    assert {"jwt-auth", "basic"} <= kinds


# -- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "message"),
    [
        ("GET", "/nowhere", {}, 404, "not found"),
        ("GET", "/games/1.0/view/detailed/extra", {}, 404, "not found"),
        ("GET", "/transactions/1.0/games/round/details/1/2", {}, 404, "not found"),
        ("GET", "/1.0/login/", {}, 405, "method not allowed"),
        ("POST", CATALOG, {}, 405, "method not allowed"),
        ("DELETE", HISTORY_API, {}, 405, "method not allowed"),
        ("PUT", PROVIDERS, {}, 405, "method not allowed"),
        ("GET", CATALOG, {"operator_id": "9" * 20_000}, 400, "Bad Request"),
        ("GET", CATALOG, {"operator_id": "١٢"}, 400, "Bad Request"),
        ("GET", CATALOG, {"date_from": "\uff12\uff10\uff12\uff10-01-01"}, 400, "Bad Request"),
        ("GET", CATALOG, {"sub_provider": "1," * 5000}, 400, "Bad Request"),
        ("GET", CATALOG, {"game_ids": "\x00"}, 400, "Bad Request"),
        ("GET", HISTORY, {"round_ids": "ü"}, 400, "Bad Request"),
        ("GET", HISTORY, {"time_period": "x" * 50_000}, 400, "Bad Request"),
        ("GET", HISTORY, {"from": "\ud7ff", "to": "2025-01-01"}, 400, "Bad Request"),
    ],
)
def test_bad_requests_are_4xx_errmsg_never_5xx(
    sinatra: SinatraClient,
    auth: dict[str, str],
    method: str,
    path: str,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = sinatra.request(method, path, headers=auth, params=params, auth=OPERATOR)
    assert error(response) == (status, {"errMsg": message})


def test_odd_but_well_formed_values_are_answered(
    sinatra: SinatraClient, auth: dict[str, str]
) -> None:
    for params in ({"game_name": "ü" * 10_000}, {"game_identifire": "\u2603"}):
        assert sinatra.get(CATALOG, headers=auth, params=params).json() == []
    assert sinatra.get(CATALOG, headers=auth, params={"game_name": ""}).status_code == 200
    assert sinatra.get(HISTORY, headers=auth, params={"player_id": "ü" * 1000}).json() == []
    surrogate = sinatra.post(
        "/1.0/login/", data=b'{"email": "operator@example.com", "password": "\\ud800"}'
    )
    assert error(surrogate) == (400, {"errMsg": "Bad Request"})  # text it cannot encode (D81)
    huge = sinatra.post("/1.0/login/", data=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert error(huge) == (400, {"errMsg": "Bad Request"})
    entries = sinatra.admin("GET", "/requests")["requests"]
    assert all(e["error"] is None and e["status"] < 500 for e in entries)
