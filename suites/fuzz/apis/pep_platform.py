"""The PEP's Platform gateway as the fuzzer drives it: OAuth tokens and the token, bets, sync
and fetch flows."""

from __future__ import annotations

import itertools
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
from pepharness.suites.sinatra.client import basic_header


def pep_platform(options: SuiteOptions) -> Api:
    from pepharness.suites.pep_platform import client as samples
    from pepharness.suites.pep_platform import contract, rules

    platform = samples.Platform(options)
    secrets = Secrets()
    secrets.hide_basic(
        platform.client_id, platform.secret, "PEPHARNESS_CLIENT_ID", "PEPHARNESS_CLIENT_SECRET"
    )

    def credentials(case: Case[Any]) -> tuple[str | None, dict[str, str]]:
        if operation_id(case) == contract.TOKEN_ID:
            if case.media_type == "application/json":
                return None, {}
            return "basic", {"Authorization": basic_header(platform.client_id, platform.secret)}
        try:
            return "bearer", {"Authorization": f"Bearer {platform.token()}"}
        except RuntimeError as error:
            raise FuzzSetupError(str(error)) from None

    def prepare(case: Case[Any], context: FlowContext) -> None:
        """Valid transaction ids become ids of this seed and item (not random ones, as the
        check's are): a stored id repeated would only ever test the duplicate path."""
        numbers = itertools.count()
        contract.own_ids(case, lambda generated: context.unique("fuzz", next(numbers)))

    def skip_checks(case: Case[Any]) -> tuple[str, ...]:
        return ("negative_data_rejection",) if contract.refused_per_player(case) else ()

    def token(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        scope = rng.choice(["events:write", "data:read", "players:sync", samples.ALL_SCOPES])
        yield context.case(
            contract.TOKEN_ID, body={"grant_type": "client_credentials", "scope": scope},
            media_type="application/x-www-form-urlencoded",
        )

    def bets(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """A player's session: a login, then bets and wins, as money or game-round events."""
        player = context.unique("player")
        yield context.case("postLogin", body=samples.login(player))
        for step in range(1, rng.randint(2, 6) + 1):
            if rng.random() < 0.5:
                body = samples.game_round(player)
                for n, item in enumerate(body["gameTransactionRound"]):
                    item["transactionId"] = context.unique("round", step * 10 + n)
                    item["gameSessionId"] = context.unique("session")
                yield context.case("postGameTransactionRound", body=body)
            else:
                kind = rng.choice(["DEPOSIT", "WITHDRAWAL"])
                yield context.case("postMoneyTransaction", body=samples.money(
                    player, transactionType=kind, transactionId=context.unique("money", step),
                    amount=round(rng.uniform(1, 500), 2),
                ))

    def sync(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """A bulk sync of a few players, then its task polled."""
        prefix = context.unique("synced")
        players = [samples.player(n, prefix) for n in range(rng.randint(1, 5))]
        answer = json_of((yield context.case("migratePlayers", body={"players": players})))
        task = answer.get("taskId") if isinstance(answer, dict) else None
        if isinstance(task, str):
            yield context.case("getMigrationTask", path_parameters={"taskId": task})

    def fetch(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """A page of players or transactions, and the next one (the 100-a-minute budget)."""
        operation = rng.choice(list(contract.FETCH_IDS))
        answer = json_of((yield context.case(operation, query={"limit": rng.choice([10, 50])})))
        following = answer.get("next") if isinstance(answer, dict) else None
        if isinstance(following, str) and following:
            yield context.case(operation, query={"next": following})

    return Api(
        name="pep-platform",
        contract="pep-platform",
        accepted=contract.ACCEPTED,
        rules=rules.SCHEMATHESIS_CHECKS,
        flows={"token": token, "bets": bets, "sync": sync, "fetch": fetch,
               FLOW_BOUNDARY: boundary_flow},
        profile={"token": 1, "bets": 4, "sync": 1, "fetch": 0.2, FLOW_GENERATED: 4,
                 FLOW_BOUNDARY: 1},
        credentials=credentials,
        secrets=secrets,
        prepare=prepare,
        skip_checks=skip_checks,
        close=platform.target.close,
        boundary=lambda: [boundaries.pep_platform_base(platform, op)
                          for op in boundaries.operations("pep-platform")],
    )
