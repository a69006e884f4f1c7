"""The Sinatra backend's rules without HTTP: parameters, users, tokens, catalog, history."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from pepharness.fixtures import (
    ASSET_CATEGORIES,
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    RESTRICTED_EMAIL,
    RESTRICTED_PASSWORD,
    SEEDED_OPERATOR_ID,
    VIEW_GAME_PROVIDERS,
    months_before,
)
from pepharness.mocks.core import Clock, RateLimiter
from pepharness.mocks.sinatra import create_app
from pepharness.mocks.sinatra.backend import SinatraBackend, seed_secret
from pepharness.mocks.sinatra.catalog import json_bytes
from pepharness.mocks.sinatra.errors import (
    BadCredentials,
    BadRequest,
    BasicUnauthorized,
    Forbidden,
    HistoryForbidden,
    InvalidParameters,
    SinatraError,
    Unauthorized,
)
from pepharness.mocks.sinatra.history import RoundIndex, window_for
from pepharness.mocks.sinatra.params import (
    parse_basic,
    parse_catalog,
    parse_login,
    parse_paged_history,
)
from pepharness.mocks.sinatra.users import Account, UserExists, resolve_permissions

NOW = datetime(2025, 6, 18, 15, 30, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(lambda: NOW)


@pytest.fixture(scope="module")
def backend(clock: Clock) -> SinatraBackend:
    return SinatraBackend(clock=clock, seed=42, rounds=1200)


@pytest.fixture(autouse=True)
def _fresh(backend: SinatraBackend, clock: Clock) -> None:
    clock.reset()
    backend.reset()


def _games(backend: SinatraBackend, **args: str) -> list[dict[str, object]]:
    return list(json.loads(backend.games_json(_operator(backend), args)))


def _operator(backend: SinatraBackend) -> Account:
    account = backend.users.get(OPERATOR_EMAIL)
    assert account is not None
    return account


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"page_number": "x"}, BadRequest),
        ({"page_size": "1.5"}, BadRequest),
        ({"page_size": "9" * 40}, BadRequest),
        ({"from": "2025-1-1", "to": "2025-01-02"}, BadRequest),
        ({"from": "2025-02-30", "to": "2025-03-01"}, BadRequest),
        ({"time_period": "forever"}, BadRequest),
        ({"round_ids": "1,,2"}, BadRequest),
        ({"round_ids": "1 2"}, BadRequest),
        ({"page_number": "0"}, InvalidParameters),
        ({"page_size": "-1"}, InvalidParameters),
        ({"page_size": "10001"}, InvalidParameters),
        ({"from": "2025-01-01"}, InvalidParameters),
        ({"to": ""}, InvalidParameters),
        ({"from": "2025-02-01", "to": "2025-01-01"}, InvalidParameters),
        # every syntax error wins over every refused value (D17)
        ({"page_size": "0", "time_period": "never"}, BadRequest),
        ({"from": "2025-01-01", "page_size": "abc"}, BadRequest),
    ],
)
def test_paged_history_parameters_400_vs_422(query: dict[str, str], error: type) -> None:
    with pytest.raises(error):
        parse_paged_history(query, TODAY)


def test_paged_history_defaults_and_empty_dates() -> None:
    history, page = parse_paged_history({}, TODAY)
    assert (history.period, history.first, history.last, history.round_ids) == (
        "today",
        None,
        None,
        None,
    )
    assert (page.number, page.size) == (1, 200)
    history, _ = parse_paged_history({"from": "", "to": "", "time_period": "bogus"}, TODAY)
    assert (history.first, history.last) == (TODAY, TODAY)
    history, _ = parse_paged_history({"round_ids": "7,8,7"}, TODAY)
    assert history.round_ids == ("7", "8")
    history, _ = parse_paged_history({"round_ids": ""}, TODAY)  # the seed: empty means all
    assert history.round_ids is None
    for malformed in ("7, 8", "7,,8", "a.b", "x" * 65):
        with pytest.raises(BadRequest):
            parse_paged_history({"round_ids": malformed}, TODAY)
    # What the contract's schemas refuse, the mock refuses: an empty integer is malformed.
    for empty in ("page_size", "page_number", "time_period"):
        with pytest.raises(BadRequest):
            parse_paged_history({empty: ""}, TODAY)


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "2020-13-01"},
        {"date_from": "20201001"},
        {"operator_id": "abc"},
        {"operator_id": "٣"},  # a non-ASCII digit is not an integer here
        {"sub_provider": "1,x"},
        {"game_ids": "1;2"},
    ],
)
def test_malformed_catalog_parameters_are_400(query: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        parse_catalog(query)


def test_login_body_must_be_an_object_with_string_credentials() -> None:
    assert parse_login(b'{"email": "a", "password": "b"}') == ("a", "b")
    for body in (b"", b"{", b"[]", b'{"email": 1, "password": "b"}', b"\xff", b"[" * 50_000):
        with pytest.raises(BadRequest):
            parse_login(body)


def test_basic_header_parsing() -> None:
    assert parse_basic("Basic ZGVtbzpwQDU1dzByZA==") == ("demo", "p@55w0rd")  # the seed's example
    for header in (None, "Bearer x", "Basic !!!", "Basic ZGVtbw=="):
        assert parse_basic(header) is None


# -- users and tokens ------------------------------------------------------------------------


def test_login_issues_a_token_that_lives_exactly_20_minutes(
    backend: SinatraBackend, clock: Clock
) -> None:
    body, token = backend.login(OPERATOR_EMAIL, OPERATOR_PASSWORD)
    assert b'"available_operators":[9999999]' in body
    assert backend.session(token).email == OPERATOR_EMAIL
    clock.advance(19 * 60 + 59)
    assert backend.session(token).email == OPERATOR_EMAIL
    clock.advance(1)
    with pytest.raises(Unauthorized):
        backend.session(token)


def test_bad_credentials(backend: SinatraBackend) -> None:
    with pytest.raises(BadCredentials):
        backend.login(OPERATOR_EMAIL, "wrong")
    with pytest.raises(BadCredentials):
        backend.login("nobody@example.com", OPERATOR_PASSWORD)
    with pytest.raises(BasicUnauthorized):
        backend.basic((OPERATOR_EMAIL, "wrong"))
    with pytest.raises(BasicUnauthorized):
        backend.basic(None)
    for token in (None, "", "x.y.z", "a" * 5000):
        with pytest.raises(Unauthorized):
            backend.session(token)


def test_tokens_are_reproducible_from_the_seed(backend: SinatraBackend) -> None:
    other = SinatraBackend(clock=backend.clock, seed=42, rounds=10)
    assert (
        backend.login(OPERATOR_EMAIL, OPERATOR_PASSWORD)[1]
        == other.login(OPERATOR_EMAIL, OPERATOR_PASSWORD)[1]
    )
    assert len(seed_secret(42)) >= 32
    with pytest.raises(ValueError, match="32 bytes"):
        SinatraBackend(clock=backend.clock, rounds=10, secret=b"short")


def test_added_users_and_reset(backend: SinatraBackend) -> None:
    added = backend.add_user("new@example.com", "pw", [27, "view games catalog"], [1488])
    assert [p.id for p in added.user.permissions] == [1, 27]
    assert added.may(VIEW_GAME_PROVIDERS) and added.operators == {1488}
    _, token = backend.login("new@example.com", "pw")
    with pytest.raises(UserExists):
        backend.add_user("new@example.com", "pw", [], [])
    for email, password in (("", "pw"), ("a:b@example.com", "pw"), ("x@example.com", "")):
        with pytest.raises(ValueError):
            backend.add_user(email, password, [], [])
    with pytest.raises(ValueError, match="unknown permission"):
        resolve_permissions(["Fly"])
    backend.reset()
    with pytest.raises(Unauthorized):
        backend.session(token)
    assert backend.users.get("new@example.com") is None


def test_permissions_are_checked_per_endpoint(backend: SinatraBackend) -> None:
    restricted = backend.users.check(RESTRICTED_EMAIL, RESTRICTED_PASSWORD)
    assert restricted is not None
    game_id = backend.data.games[0].game_id
    for call in (
        lambda: backend.providers_json(restricted),
        lambda: backend.games_json(restricted, {}),
        lambda: backend.metadata_json(restricted),
        lambda: backend.plain_history(restricted, {}),
        lambda: backend.round_details(restricted, "9999999", game_id, "1"),
    ):
        with pytest.raises(Forbidden) as raised:
            call()
        assert raised.value.message == "forbidden_operation"
    with pytest.raises(HistoryForbidden) as forbidden:
        backend.history_page(restricted, {})
    assert forbidden.value.message == "forbidden"
    assert backend.assets_json(restricted, game_id)  # D8: assets need no permission


# -- catalog ---------------------------------------------------------------------------------


def test_catalog_is_the_users_operators_games_in_generator_order(backend: SinatraBackend) -> None:
    offered = [g.game_id for g in backend.data.games if SEEDED_OPERATOR_ID in g.operator_ids]
    assert [g["gameId"] for g in _games(backend)] == offered
    assert [g["gameId"] for g in _games(backend, operator_id=str(SEEDED_OPERATOR_ID))] == offered
    with pytest.raises(Forbidden):
        _games(backend, operator_id="1488")


def test_catalog_filters(backend: SinatraBackend) -> None:
    everything = _games(backend)
    assert {g["gameName"] for g in _games(backend, game_name="MEGA")} == {
        g["gameName"] for g in everything if "mega" in str(g["gameName"]).lower()
    }
    assert any("omega" in str(g["gameName"]).lower() for g in _games(backend, game_name="mega"))
    needle = str(everything[3]["gameId"])[2:5]
    assert {g["gameId"] for g in _games(backend, game_identifire=needle)} == {
        g["gameId"]
        for g in everything
        if needle in str(g["gameId"]) or needle in str(g["gameName"]).lower()
    }
    chosen = [str(everything[5]["gameId"]), str(everything[1]["gameId"]), "1"]
    assert [g["gameId"] for g in _games(backend, game_ids=",".join(chosen))] == [
        everything[1]["gameId"],
        everything[5]["gameId"],
    ]
    provider = backend.data.game_by_id[str(everything[0]["gameId"])].provider_id
    by_provider = _games(backend, sub_provider=f"{provider},1")
    assert by_provider and all(
        backend.data.game_by_id[str(g["gameId"])].provider_id == provider for g in by_provider
    )
    middle = sorted(str(g["releaseDate"]) for g in everything)[len(everything) // 2]
    assert [g["gameId"] for g in _games(backend, date_from=middle)] == [
        g["gameId"] for g in everything if str(g["releaseDate"]) >= middle
    ]
    assert _games(backend, date_from="1970-01-01") == everything
    assert _games(backend, game_name="", game_identifire="") == everything
    for malformed in ({"sub_provider": ""}, {"game_ids": "1, 2"}, {"date_from": ""}):
        with pytest.raises(BadRequest):
            _games(backend, **malformed)


def test_assets_have_the_seven_categories_and_unknown_games_are_400(
    backend: SinatraBackend,
) -> None:
    account = _operator(backend)
    document = json.loads(backend.assets_json(account, backend.data.games[0].game_id))
    assert list(document) == list(ASSET_CATEGORIES)
    with pytest.raises(BadRequest):
        backend.assets_json(account, "no-such-game")


# -- history ---------------------------------------------------------------------------------


def test_window_for_periods_and_the_six_month_clamp() -> None:
    midnight = datetime(2025, 6, 18, tzinfo=UTC)
    assert window_for(NOW, "today", None, None).start == midnight
    yesterday = window_for(NOW, "yesterday", None, None)
    assert (yesterday.start, yesterday.end) == (midnight - timedelta(days=1), midnight)
    assert window_for(NOW, "last 7 days", None, None).start == midnight - timedelta(days=6)
    assert window_for(NOW, "last 30 days", None, None).start == midnight - timedelta(days=29)
    clamped = window_for(NOW, "today", date(1970, 1, 1), date(2999, 1, 1))
    assert (clamped.start, clamped.end) == (months_before(NOW, 6), NOW)


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 50, 10_000])
def test_pages_partition_the_transactions(backend: SinatraBackend, page_size: int) -> None:
    account = _operator(backend)
    window = {"from": "1970-01-01", "to": TODAY.isoformat(), "page_size": str(page_size)}
    seen: Counter[tuple[str, str, str]] = Counter()
    number, total = 1, None
    while True:
        page = backend.history_page(account, {**window, "page_number": str(number)})
        total = page["total_count"]
        if not page["responses"]:
            break
        count = 0
        for round_ in page["responses"]:
            transactions = round_["transactions"]
            for t in transactions["good_transactions"] + transactions["bad_transactions"]:
                seen[(t["round_id"], t["trans_id"], t["type"])] += 1
                count += 1
        assert count == min(page_size, total - (number - 1) * page_size)
        number += 1
    assert set(seen.values()) == {1}
    assert sum(seen.values()) == total > 0


def test_a_round_straddling_a_page_boundary_is_on_both_pages(backend: SinatraBackend) -> None:
    account = _operator(backend)
    query = {"from": "1970-01-01", "to": TODAY.isoformat()}
    index, lo, hi = backend.history.select(
        account.operators, parse_paged_history(query, TODAY)[0], NOW
    )
    position = next(i for i in range(lo, hi) if len(index.rounds[i].transactions) >= 2)
    # A page that ends after the round's first transaction.
    size = index.offsets[position] - index.offsets[lo] + 1
    paged = {**query, "page_size": str(size)}
    first = backend.history_page(account, {**paged, "page_number": "1"})["responses"][-1]
    second = backend.history_page(account, {**paged, "page_number": "2"})["responses"][0]
    assert first["round_id"] == second["round_id"] == index.rounds[position].round_id
    assert (
        len(first["transactions"]["good_transactions"] + first["transactions"]["bad_transactions"])
        == 1
    )
    assert (first["bet"], first["win"]) == (second["bet"], second["win"])


def test_an_empty_index_has_empty_pages() -> None:
    assert RoundIndex([]).page(0, 0, 1, 10) == []


def test_round_details(backend: SinatraBackend) -> None:
    account = _operator(backend)
    round_ = next(r for r in backend.data.rounds if backend.history.operator_of(r) == 9999999)
    details = backend.round_details(account, "9999999", round_.game_id, round_.round_id)
    assert details["status"] == "Success" and details["action"] == "url"
    for casino, game, round_id in (
        ("x", round_.game_id, round_.round_id),
        ("9999999", "1", round_.round_id),
        ("9999999", round_.game_id, "nope"),
    ):
        with pytest.raises(InvalidParameters):
            backend.round_details(account, casino, game, round_id)
    with pytest.raises(Forbidden):
        backend.round_details(account, "1488", round_.game_id, round_.round_id)


def test_metadata_is_the_users_brands_and_the_catalogs_types(backend: SinatraBackend) -> None:
    document = json.loads(backend.metadata_json(_operator(backend)))
    assert {b["operatorId"] for b in document["brands"]} == {SEEDED_OPERATOR_ID}
    assert document["timePeriods"] == ["today", "yesterday", "last 7 days", "last 30 days"]
    assert set(document["gameCategories"]) == {g.game_category for g in backend.data.games}


# -- app wiring ------------------------------------------------------------------------------


def test_every_sinatra_error_renders_as_errmsg() -> None:
    app = create_app({"ROUNDS": 10})

    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    with app.test_request_context():
        from pepharness.mocks.sinatra.errors import SlowDown, render

        for cls in subclasses(SinatraError):
            error = cls(1) if cls is SlowDown else cls()
            response = render(error)
            assert 400 <= response.status_code <= 500
            assert response.get_json() == {"errMsg": error.message}


def test_without_admin_the_admin_paths_are_unknown() -> None:
    client = create_app({"ROUNDS": 10, "ADMIN": False}).test_client()
    response = client.get("/__admin/health")
    assert (response.status_code, response.get_json()) == (404, {"errMsg": "not found"})


def test_config_defaults() -> None:
    app = create_app({"ROUNDS": 10})
    assert app.test_client().get("/__admin/rate-limit").get_json() == {
        "limit": 5,
        "period_seconds": 1.0,
    }


def test_rate_limit_retry_after_is_the_whole_second_ceiling() -> None:
    moments = [NOW]
    clock = Clock(lambda: moments[0])
    limiter = RateLimiter(clock, 5, 1.0)
    assert all(limiter.hit("key").allowed for _ in range(5))
    refused = limiter.hit("key")
    assert (refused.allowed, refused.retry_after) == (False, 1)
    clock.advance(0.999)
    assert not limiter.hit("key").allowed
    clock.advance(0.001)
    assert limiter.hit("key").allowed


def test_rendered_page_is_the_page_document_byte_for_byte(backend: SinatraBackend) -> None:
    # D183: shares rendered once and kept; twice, so the second answer comes from the cache.
    account = _operator(backend)
    window = {"from": "1970-01-01", "to": TODAY.isoformat()}
    for size in ("1", "7", "50"):
        for number in ("1", "2", "3", "999999"):
            args = {**window, "page_size": size, "page_number": number}
            expected = json_bytes(backend.history_page(account, args))
            assert backend.history_page_json(account, args) == expected
            assert backend.history_page_json(account, args) == expected


def test_a_parsed_catalog_query_is_reused_and_a_bad_one_refused_each_time(
    backend: SinatraBackend,
) -> None:
    # D180: the query string is the key; a 400 is never kept.
    account = _operator(backend)
    args = {"game_name": "a", "date_from": "2020-01-01"}
    raw = b"game_name=a&date_from=2020-01-01"
    expected = backend.games_json(account, args)
    assert backend.games_json(account, lambda: args, raw) == expected
    assert backend.games_json(account, {}, raw) == expected  # parsed once: `args` not read
    for _ in range(2):
        with pytest.raises(BadRequest):
            backend.games_json(account, {"date_from": "x"}, b"date_from=x")
