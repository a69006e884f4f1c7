"""Sinatra as the fuzzer drives it: a login's jwt-auth (Basic on the paginated history) and
the catalog, history and rounds flows."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

from schemathesis import Case

from pepharness.suites import boundaries
from pepharness.suites.fuzz.apis.base import (
    FLOW_GENERATED,
    Api,
    FlowContext,
    FuzzSetupError,
    boundary_flow,
    json_of,
    operation_id,
)
from pepharness.suites.fuzz.boundary import FLOW_BOUNDARY
from pepharness.suites.http import Secrets
from pepharness.suites.options import SuiteOptions
from pepharness.suites.sinatra.client import basic_header, round_path_ids


def sinatra(options: SuiteOptions) -> Api:
    from pepharness.suites.sinatra import contract, rules
    from pepharness.suites.sinatra.client import Sinatra

    client = Sinatra(options)
    secrets = Secrets()
    secrets.hide_basic(options.email, options.password, "PEPHARNESS_EMAIL", "PEPHARNESS_PASSWORD")
    version = {"version": "1.0"}

    def credentials(case: Case[Any]) -> tuple[str | None, dict[str, str]]:
        name = operation_id(case)
        if name == "loginUser":
            return None, {}
        if name == contract.PAGINATED_ID:
            return "basic", {"Authorization": basic_header(options.email, options.password)}
        try:
            return "jwt-auth", {"jwt-auth": client.token()}
        except RuntimeError as error:
            raise FuzzSetupError(str(error)) from None

    def login(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        yield context.case(
            "loginUser", path_parameters=version,
            body={"email": options.email, "password": options.password},
        )

    def catalog(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """Browse the catalog: the providers, the games (maybe of one provider), one game's
        assets."""
        providers = json_of((yield context.case("getAvailableGameProviders",
                                                path_parameters=version)))
        query: dict[str, Any] = {}
        ids = _values(providers, "id")
        if ids and rng.random() < 0.5:
            query["sub_provider"] = str(rng.choice(ids))
        games = json_of((yield context.case("getAvailableGames", path_parameters=version,
                                            query=query)))
        games_ids = _values(games, "gameId")
        if games_ids:
            game = str(rng.choice(games_ids))
            yield context.case("getGameMarketingAssets",
                               path_parameters={**version, "game_id": game})

    def history(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """Page through the paginated history (Basic auth; each page spends the rate limit)."""
        size = rng.choice([5, 20, 50])
        for number in range(1, rng.randint(1, 3) + 1):
            answer = yield context.case(
                contract.PAGINATED_ID, path_parameters=version,
                query={"page_number": number, "page_size": size, "time_period": "today"},
            )
            if answer is None or answer.status_code != 200:
                return

    def rounds(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """The history's metadata, today's rounds, one round's details."""
        yield context.case("getGameHistoryMetadata", path_parameters=version)
        found = json_of((yield context.case("getGameHistory", path_parameters=version,
                                            query={"time_period": "last 7 days"})))
        keys = [key for key in map(round_path_ids, _records(found)) if key is not None]
        if keys:
            yield context.case("getRoundDetails", path_parameters={**version,
                                                                   **rng.choice(keys)})

    return Api(
        name="sinatra",
        contract="sinatra",
        accepted=contract.ACCEPTED,
        rules=rules.SCHEMATHESIS_CHECKS,
        flows={"login": login, "catalog": catalog, "history": history, "rounds": rounds,
               FLOW_BOUNDARY: boundary_flow},
        profile={"login": 1, "catalog": 3, "history": 0.5, "rounds": 1, FLOW_GENERATED: 4,
                 FLOW_BOUNDARY: 1},
        credentials=credentials,
        secrets=secrets,
        hook=contract.filter_case,
        close=client.target.close,
        boundary=lambda: [boundaries.sinatra_base(client, op)
                          for op in boundaries.operations("sinatra")],
    )


def _records(document: Any) -> list[dict[str, Any]]:
    """The objects of a list answer, or of the first list inside an object answer."""
    if isinstance(document, list):
        return [item for item in document if isinstance(item, dict)]
    if isinstance(document, dict):
        for value in document.values():
            if isinstance(value, list):
                return _records(value)
    return []


def _values(document: Any, key: str) -> list[Any]:
    return [item[key] for item in _records(document) if item.get(key) not in (None, "")]
