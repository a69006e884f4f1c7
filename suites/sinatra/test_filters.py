"""The catalog's filters as properties over the unfiltered catalog, with Hypothesis drawing the
queries from the target's own games."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import requests
from hypothesis import given, note
from hypothesis import strategies as st

from pepharness.suites import properties
from pepharness.suites.http import summarize
from pepharness.suites.rules import Rule, covers, fail, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import CATALOG, Sinatra, body_of, label

OPERATION = label("GET", CATALOG)
UNKNOWN_GAME_ID = "987654321012345678"


def _catalog(sinatra: Sinatra) -> list[dict[str, Any]]:
    if not sinatra.catalog:
        not_verified("the unfiltered catalog is empty")
    return sinatra.catalog


def _query(
    sinatra: Sinatra, rule: Rule, params: dict[str, str]
) -> tuple[list[str], requests.Response]:
    """The game ids `params` select; fails `rule` unless the answer is 200 with a list, and
    check_filter_results_are_subset_of_catalog unless they are the catalog's."""
    response = sinatra.get(sinatra.path(CATALOG), params=params)
    body = body_of(response)
    if response.status_code != 200 or not isinstance(body, list):
        fail(rule, f"the filter {params} is not answered with a list",
             received=summarize(response), documented="200 with a JSON array of games",
             curl=sinatra.curl(response))
    ids = [str(game.get("gameId")) for game in body if isinstance(game, dict)]
    catalog = {str(game["gameId"]) for game in sinatra.catalog}
    strangers = [game_id for game_id in ids if game_id not in catalog]
    if strangers:
        fail(
            rules.FILTER_SUBSET,
            f"the filter {params} returns games the unfiltered catalog does not have",
            received=f"{len(strangers)} games outside the catalog, e.g. {strangers[:3]}",
            documented="a subset of the unfiltered catalog",
            curl=sinatra.curl(response),
        )
    return ids, response


def _exactly(sinatra: Sinatra, rule: Rule, params: dict[str, str], got: list[str],
             want: set[str], response: requests.Response, meaning: str) -> None:
    if set(got) != want:
        extra, missing = sorted(set(got) - want), sorted(want - set(got))
        fail(
            rule,
            f"{'&'.join(f'{k}={v}' for k, v in params.items())} does not select {meaning}",
            received=f"{len(got)} games; {len(extra)} unexpected e.g. {extra[:3]}, "
            f"{len(missing)} missing e.g. {missing[:3]}",
            documented=f"the {len(want)} games {meaning}",
            curl=sinatra.curl(response),
        )


def _substrings(text: str) -> st.SearchStrategy[str]:
    return st.tuples(st.integers(0, len(text) - 1), st.integers(1, 6)).map(
        lambda cut: text[cut[0]: cut[0] + cut[1]]
    )


def _recased(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([str.swapcase, str.upper, str.lower]).map(lambda change: change(text))


@covers(rules.FILTER_SUBSET, operation=OPERATION)
def test_filter_results_are_subset_of_catalog(sinatra: Sinatra) -> None:
    catalog = _catalog(sinatra)
    names = [str(g["gameName"]) for g in catalog if g.get("gameName")]
    ids = [str(g["gameId"]) for g in catalog]
    filters = st.fixed_dictionaries(
        {},
        optional={
            "game_name": st.sampled_from(names).flatmap(_substrings),
            "game_identifire": st.sampled_from(ids).flatmap(_substrings),
            "game_ids": st.lists(st.sampled_from(ids), min_size=1, max_size=4).map(",".join),
            "date_from": st.dates(date(2015, 1, 1), date(2030, 12, 31)).map(date.isoformat),
            "sub_provider": st.lists(
                st.sampled_from([str(p["id"]) for p in sinatra.providers] or ["1"]),
                min_size=1, max_size=3,
            ).map(",".join),
            "operator_id": st.sampled_from([str(op) for op in sinatra.operator_ids] or ["1"]),
        },
    )

    @given(params=filters)
    def subset(params: dict[str, str]) -> None:
        _query(sinatra, rules.FILTER_SUBSET, params)

    properties.run(subset, sinatra.options, examples=sinatra.options.max_examples)


@covers(rules.GAME_NAME_FILTER, operation=OPERATION)
def test_game_name_is_case_insensitive_substring(sinatra: Sinatra) -> None:
    catalog = _catalog(sinatra)
    names = [str(g["gameName"]) for g in catalog if any(c.isalpha() for c in str(g["gameName"]))]
    queries = (
        st.sampled_from(names)
        .flatmap(_substrings)
        .filter(lambda text: any(c.isalpha() for c in text))
        .flatmap(_recased)
    )

    @given(text=queries)
    def name_filter(text: str) -> None:
        params = {"game_name": text}
        got, response = _query(sinatra, rules.GAME_NAME_FILTER, params)
        folded = text.casefold()
        want = {str(g["gameId"]) for g in catalog if folded in str(g["gameName"]).casefold()}
        _exactly(sinatra, rules.GAME_NAME_FILTER, params, got, want, response,
                 "whose name contains it, ignoring case")

    properties.run(name_filter, sinatra.options, examples=sinatra.options.max_examples)


@covers(rules.GAME_IDENTIFIRE_FILTER, operation=OPERATION)
def test_game_identifire_matches_id_or_name(sinatra: Sinatra) -> None:
    catalog = _catalog(sinatra)
    ids = [str(g["gameId"]) for g in catalog]
    names = [str(g["gameName"]) for g in catalog if g.get("gameName")]
    queries = st.one_of(
        st.sampled_from(ids).flatmap(_substrings),
        st.sampled_from(names).flatmap(_substrings).flatmap(_recased),
    ).filter(lambda text: text.strip() != "")

    @given(text=queries)
    def identifire(text: str) -> None:
        params = {"game_identifire": text}
        got, response = _query(sinatra, rules.GAME_IDENTIFIRE_FILTER, params)
        folded = text.casefold()
        want = {
            str(g["gameId"])
            for g in catalog
            if folded in str(g["gameId"]).casefold() or folded in str(g["gameName"]).casefold()
        }
        _exactly(sinatra, rules.GAME_IDENTIFIRE_FILTER, params, got, want, response,
                 "whose id or name contains it")

    properties.run(identifire, sinatra.options, examples=sinatra.options.max_examples)


@covers(rules.GAME_IDS_FILTER, operation=OPERATION)
def test_game_ids_returns_exactly_those_games(sinatra: Sinatra) -> None:
    catalog = _catalog(sinatra)
    ids = [str(g["gameId"]) for g in catalog]

    @given(chosen=st.lists(st.sampled_from(ids), min_size=1, max_size=6, unique=True),
           unknown=st.booleans())
    def game_ids(chosen: list[str], unknown: bool) -> None:
        asked = [*chosen, UNKNOWN_GAME_ID] if unknown else chosen
        params = {"game_ids": ",".join(asked)}
        got, response = _query(sinatra, rules.GAME_IDS_FILTER, params)
        if len(got) != len(set(got)):
            fail(rules.GAME_IDS_FILTER, "a game is listed twice", received=f"{sorted(got)}",
                 documented="each listed game once", curl=sinatra.curl(response))
        _exactly(sinatra, rules.GAME_IDS_FILTER, params, got, set(chosen), response,
                 "listed (that exist)")

    properties.run(game_ids, sinatra.options, examples=sinatra.options.max_examples)


def _release_dates(catalog: list[dict[str, Any]]) -> st.SearchStrategy[str]:
    dates = sorted({date.fromisoformat(str(g["releaseDate"])) for g in catalog
                    if g.get("releaseDate")})
    return st.sampled_from(dates or [date(2020, 1, 1)]).flatmap(
        lambda day: st.sampled_from([day - timedelta(days=1), day, day + timedelta(days=1)])
    ).map(date.isoformat)


@covers(rules.DATE_FROM_MONOTONE, operation=OPERATION)
def test_date_from_is_monotone(sinatra: Sinatra) -> None:
    catalog = _catalog(sinatra)

    @given(first=_release_dates(catalog), second=_release_dates(catalog))
    def monotone(first: str, second: str) -> None:
        early, late = sorted((first, second))
        wide, _ = _query(sinatra, rules.DATE_FROM_MONOTONE, {"date_from": early})
        narrow, response = _query(sinatra, rules.DATE_FROM_MONOTONE, {"date_from": late})
        extra = sorted(set(narrow) - set(wide))
        if extra:
            fail(
                rules.DATE_FROM_MONOTONE,
                f"date_from={late} returns games that date_from={early} does not",
                received=f"{len(extra)} games, e.g. {extra[:3]}",
                documented=f"a subset of date_from={early}'s games",
                curl=sinatra.curl(response),
            )

    properties.run(monotone, sinatra.options, examples=sinatra.options.max_examples)


@covers(rules.DATE_FROM_ON_OR_AFTER, operation=OPERATION)
def test_date_from_keeps_games_released_on_or_after(sinatra: Sinatra) -> None:
    catalog = _catalog(sinatra)

    @given(day=_release_dates(catalog))
    def on_or_after(day: str) -> None:
        params = {"date_from": day}
        got, response = _query(sinatra, rules.DATE_FROM_ON_OR_AFTER, params)
        want = {str(g["gameId"]) for g in catalog if str(g.get("releaseDate", "")) >= day}
        _exactly(sinatra, rules.DATE_FROM_ON_OR_AFTER, params, got, want, response,
                 "released on or after it")

    properties.run(on_or_after, sinatra.options, examples=sinatra.options.max_examples)


@covers(rules.SUB_PROVIDER_FILTER, operation=OPERATION)
def test_sub_provider_selects_providers_games(sinatra: Sinatra) -> None:
    _catalog(sinatra)
    provider_ids = [str(p["id"]) for p in sinatra.providers]
    if len(provider_ids) < 2:
        not_verified("fewer than two providers to combine")

    @given(pair=st.lists(st.sampled_from(provider_ids), min_size=2, max_size=2, unique=True))
    def union(pair: list[str]) -> None:
        first, _ = _query(sinatra, rules.SUB_PROVIDER_FILTER, {"sub_provider": pair[0]})
        second, _ = _query(sinatra, rules.SUB_PROVIDER_FILTER, {"sub_provider": pair[1]})
        params = {"sub_provider": ",".join(pair)}
        both, response = _query(sinatra, rules.SUB_PROVIDER_FILTER, params)
        note(f"{len(first)} + {len(second)} games, {len(both)} together")
        shared = sorted(set(first) & set(second))
        if shared:
            fail(rules.SUB_PROVIDER_FILTER, "two providers list the same game",
                 received=f"{shared[:3]} under providers {pair[0]} and {pair[1]}",
                 documented="a game belongs to one provider", curl=sinatra.curl(response))
        _exactly(sinatra, rules.SUB_PROVIDER_FILTER, params, both, set(first) | set(second),
                 response, f"of provider {pair[0]} or {pair[1]}")

    properties.run(union, sinatra.options, examples=sinatra.options.max_examples)
