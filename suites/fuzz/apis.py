"""What the fuzzer knows of each API: its contract as a schemathesis schema, how a request is
authenticated (as the conformance checks authenticate), the realistic flows a profile mixes with
generated requests, and which schemathesis checks judge the answers."""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.core import NOT_SET
from schemathesis.schemas import APIOperation, BaseSchema

from pepharness.suites import boundaries, documents, generated
from pepharness.suites.fuzz.boundary import FLOW_BOUNDARY
from pepharness.suites.http import Answer, Secrets
from pepharness.suites.options import SuiteOptions
from pepharness.suites.sinatra.client import basic_header, round_path_ids

FLOW_GENERATED = "generated"

EXTRA_REQUEST_CHECKS = ("ignored_auth", "unsupported_method")
"""Checks that send requests of their own: the fuzzer's traffic is the planned sequence only."""


class FuzzSetupError(RuntimeError):
    """The target cannot be fuzzed as configured (no credentials, no operator); one line."""


Flow = Callable[["FlowContext", random.Random], Generator[Case[Any], Answer | None, None]]
"""A realistic flow: yields the cases it sends, one at a time, and is sent back each answer
(None when none came), so that a later step can use an earlier answer."""


@dataclass
class FlowContext:
    """What a flow builds its requests from: the schema's operations by id, the item's index
    (for ids that repeat with the seed) and the run's options."""

    operations: Mapping[str, APIOperation[Any, Any, Any, Any]]
    index: int
    options: SuiteOptions
    seed: int

    def case(
        self,
        operation_id: str,
        *,
        path_parameters: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = NOT_SET,
        media_type: str | None = None,
    ) -> Case[Any]:
        operation = self.operations[operation_id]
        if media_type is None and body is not NOT_SET:
            media_type = "application/json"
        return operation.Case(
            path_parameters=path_parameters, query=query, body=body, media_type=media_type
        )

    def unique(self, prefix: str, step: int = 0) -> str:
        """An id that only this seed's item `index` (and `step` of it) uses."""
        return f"{prefix}-s{self.seed}-{self.index}-{step}"


def json_of(answer: Answer | None) -> Any:
    if answer is None:
        return None
    try:
        import json

        return json.loads(answer.text)
    except ValueError:
        return None


@dataclass
class Api:
    """One API as the fuzzer drives it."""

    name: str
    contract: str
    accepted: Mapping[str, list[str]]
    flows: dict[str, Flow]
    profile: dict[str, float]
    """The default mix: flow name (or `generated`) → weight."""
    rules: Mapping[str, Any]
    """Schemathesis check name → the conformance rule it reports as."""
    credentials: Callable[[Case[Any]], tuple[str | None, dict[str, str]]]
    """The auth label and headers of a case, fetched right before it is sent (tokens renew)."""
    secrets: Secrets = field(default_factory=Secrets)
    prepare: Callable[[Case[Any], FlowContext], None] = lambda case, context: None
    """Deterministic per-item changes to a generated case (the PEP's fresh transaction ids)."""
    skip_checks: Callable[[Case[Any]], tuple[str, ...]] = lambda case: ()
    hook: Callable[[schemathesis.HookContext, Case[Any]], bool] | None = None
    close: Callable[[], None] = lambda: None
    exclude: tuple[str, ...] = ()
    """Operation ids never generated (still used by flows)."""
    boundary: Callable[[], list[boundaries.Base]] | None = None
    """A well-formed request of each operation, for the `boundary` flow's probes (D95)."""

    def schema(self, options: SuiteOptions) -> BaseSchema:
        """The contract, configured as its conformance check configures it, without auth
        providers: the fuzzer authenticates each request as it sends it."""
        document = copy.deepcopy(documents.load(self.contract))
        document.pop("webhooks", None)
        without_security(document)
        loaded = schemathesis.openapi.from_dict(
            document, config=generated.config(options, self.accepted)
        )
        if self.hook is not None:
            loaded.hook("filter_case")(self.hook)
        return loaded

    def checks(self) -> list[CheckFunction]:
        """The conformance check's schemathesis checks, but those that send requests of
        their own."""
        functions, _ = generated.enabled_checks(self.rules, [])
        return [f for f in functions if f.__name__ not in EXTRA_REQUEST_CHECKS]


def without_security(document: dict[str, Any]) -> None:
    """Leave the credentials out of what schemathesis generates from: it would take their
    headers for parameters to break, and spend most negative cases on a missing token (the
    checks' business) rather than on the data. The fuzzer sends the real ones with each
    request; its checks still read each operation's documented 401 and 403."""
    document.pop("security", None)
    document.get("components", {}).pop("securitySchemes", None)
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)


def boundary_flow(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
    """The `boundary` flow's name in `flows` (so that --profile knows it): the runner sends its
    probes itself, as raw bytes no generated case can carry (suites/fuzz/boundary.py)."""
    yield from ()


def operation_id(case: Case[Any]) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


# -- Sinatra ---------------------------------------------------------------------------------


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


# -- the operator's identity endpoint --------------------------------------------------------


def operator(options: SuiteOptions) -> Api:
    from pepharness.suites.operator import contract, rules

    valid = list(options.valid_tokens)
    if not valid and options.base_url is not None:
        from pepharness.check import mock_operator_tokens

        found = mock_operator_tokens(options.base_url)
        valid = found[0] if found else []
    if not valid:
        raise FuzzSetupError(
            "no --valid-token, and the target is not a pep-harness operator mock to take a "
            "seeded one from"
        )
    secrets = Secrets()
    for number, token in enumerate(options.valid_tokens, 1):
        secrets.hide(token, f"$PEPHARNESS_VALID_TOKEN_{number}")

    def validate(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """A casino's PEP validating a player's identity token, now and then a stale one."""
        token = rng.choice(valid) if rng.random() < 0.9 else context.unique("never-issued")
        yield context.case("validatePlayerIdentity", body={"identityToken": token})

    return Api(
        name="operator",
        contract="operator-identity",
        accepted=contract.ACCEPTED,
        rules=rules.SCHEMATHESIS_CHECKS,
        flows={"validate": validate, FLOW_BOUNDARY: boundary_flow},
        profile={"validate": 5, FLOW_GENERATED: 5, FLOW_BOUNDARY: 1},
        credentials=lambda case: (None, {}),
        secrets=secrets,
        boundary=lambda: [boundaries.Base(op, body={"identityToken": valid[0]})
                          for op in boundaries.operations("operator-identity")],
    )


# -- the PEP's Platform gateway ---------------------------------------------------------------


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


# -- the PEP's Frontend gateway ---------------------------------------------------------------


def pep_frontend(options: SuiteOptions) -> Api:
    """The harness plays the PEP's operator on --operator-port, as `check pep-frontend` does:
    a login flow programs an identity token there and logs in with it."""
    import requests

    from pepharness.suites.pep_frontend import contract, rules
    from pepharness.suites.pep_frontend.client import HEADER, LOGIN, Pep, access_token
    from pepharness.suites.pep_frontend.harness import HarnessError, HarnessOperator

    harness = HarnessOperator(options.operator_port)
    pep = Pep(options)
    try:
        harness.start()
    except HarnessError as error:
        raise FuzzSetupError(str(error)) from None
    base_url = options.base_url or ""
    session: dict[str, str] = {}

    def player_token() -> str:
        if "token" not in session:
            identity = harness.program()
            answer = requests.post(f"{base_url}{LOGIN}", timeout=30, json={
                "identityToken": identity, "clientId": options.client_id})
            token = access_token(answer)
            if token is None:
                harness.close()
                raise FuzzSetupError(
                    f"cannot log a player in at {base_url}{LOGIN}: {answer.status_code} (the "
                    f"PEP must call its operator at 127.0.0.1:{options.operator_port})"
                )
            session["token"] = token
        return session["token"]

    def credentials(case: Case[Any]) -> tuple[str | None, dict[str, str]]:
        if operation_id(case) == "authenticatePlayer":
            return None, {}
        return HEADER, {HEADER: player_token()}

    def play(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """A player opens the casino: logs in, reads the session, profile, missions,
        leaderboard and notifications, and now and then logs out."""
        identity = harness.program()
        answer = yield context.case("authenticatePlayer", body={
            "identityToken": identity, "clientId": options.client_id})
        token = access_token(answer) if answer is not None else None
        if token is None:
            return
        reads = ["getSession", "getPlayer", "getMissions", "getXpLeaderboard", "getNotifications"]
        for name in rng.sample(reads, rng.randint(2, len(reads))):
            case = context.case(name)
            case.headers[HEADER] = token
            yield case
        if rng.random() < 0.3:
            case = context.case("endSession")
            case.headers[HEADER] = token
            yield case

    return Api(
        name="pep-frontend",
        contract="pep-frontend",
        accepted=contract.ACCEPTED,
        rules=rules.SCHEMATHESIS_CHECKS,
        flows={"play": play, FLOW_BOUNDARY: boundary_flow},
        profile={"play": 5, FLOW_GENERATED: 5, FLOW_BOUNDARY: 1},
        credentials=credentials,
        close=harness.close,
        boundary=lambda: [boundaries.pep_frontend_base(pep, harness, op)
                          for op in sorted(boundaries.operations("pep-frontend"),
                                           key=lambda op: op.startswith("DELETE"))],
        # A generated DELETE would end the session every other generated request uses.
        exclude=("endSession",),
    )


APIS: dict[str, Callable[[SuiteOptions], Api]] = {
    "sinatra": sinatra,
    "operator": operator,
    "pep-platform": pep_platform,
    "pep-frontend": pep_frontend,
}
