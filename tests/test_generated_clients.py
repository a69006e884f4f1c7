"""Clients generated from every contract by openapi-python-client import and run the README's
walk-throughs against the mocks over real HTTP: what an integrator does first with a contract."""

from __future__ import annotations

import base64
import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

from pepharness import contracts
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.sinatra import create_app

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"
TIMEOUT = 10.0


def package_name(contract: str) -> str:
    return "generated_" + contract.replace("-", "_")


def import_unset(package: Path) -> None:
    """openapi-python-client 0.29's own bug (openapi-generators/openapi-python-client#1451, not
    fixed in any release yet): an operation whose required request body has several media types
    (pep-platform's token endpoint: the RFC 6749 form and the vendor's JSON) is annotated
    `| Unset` without importing `Unset`, so the module does not import. The same one-line fix an
    integrator applies."""
    for module in (package / "api").rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        if "| Unset" in text and "import Response, UNSET\n" in text:
            text = text.replace("import Response, UNSET\n", "import Response, UNSET, Unset\n")
            module.write_text(text, encoding="utf-8")


class GeneratedClients(dict[str, ModuleType]):
    """The contracts' clients by contract name, each generated on first use (under xdist a
    worker generates only what its tests read) and imported from `root`."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.config = root / "config.yaml"
        self.config.write_text("post_hooks: []\n", encoding="utf-8")

    def generate(self, names: list[str]) -> None:
        """Generate `names` side by side, one generator process each."""
        runs = {
            name: subprocess.Popen(
                [
                    str(GENERATOR), "generate", "--path", str(CONTRACTS / f"{name}.yaml"),
                    "--output-path", str(self.root / package_name(name)), "--meta", "none",
                    "--config", str(self.config),
                ],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for name in names
            if name not in self
        }
        for name, run in runs.items():
            output, _ = run.communicate(timeout=120)
            assert run.returncode == 0, f"{name}: {output}"
            import_unset(self.root / package_name(name))
            self[name] = importlib.import_module(package_name(name))

    def __missing__(self, name: str) -> ModuleType:
        self.generate([name])
        return self[name]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeneratedClients]:
    assert GENERATOR, "openapi-python-client is in the `test` extra"
    clients = GeneratedClients(tmp_path_factory.mktemp("clients"))
    sys.path.insert(0, str(clients.root))
    try:
        yield clients
    finally:
        sys.path.remove(str(clients.root))
        packages = {package_name(name) for name in contracts.names()}
        for module in [m for m in sys.modules if m.split(".")[0] in packages]:
            del sys.modules[module]


def submodule(package: ModuleType, path: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{path}")


def client_of(package: ModuleType, base_url: str, **headers: str) -> Any:
    return package.Client(base_url=base_url, headers=headers, timeout=TIMEOUT)


def authenticated(package: ModuleType, base_url: str, token: str, **scheme: str) -> Any:
    return package.AuthenticatedClient(base_url=base_url, token=token, timeout=TIMEOUT, **scheme)


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def sinatra_app() -> Flask:
    """A small Sinatra mock: the walk-through reads a few pages only."""
    return create_app({"SEED": 42, "ROUNDS": 200, "ANCHOR": datetime.now(UTC)})


def test_every_contract_generates_an_importable_client(generated: GeneratedClients) -> None:
    generated.generate(contracts.names())
    assert sorted(generated) == contracts.names()
    for package in generated.values():
        assert package.Client and package.AuthenticatedClient
        root = Path(package.__file__).parent
        for module in sorted(root.rglob("*.py")):
            dotted = module.relative_to(root).with_suffix("").as_posix().replace("/", ".")
            if dotted != "__init__":
                submodule(package, dotted.removesuffix(".__init__"))


# -- Sinatra: login, the token from the `jwt-auth` header, the catalog, history with Basic -----


def sinatra_login(package: ModuleType, base_url: str) -> Any:
    login = submodule(package, "api.auth.login_user")
    body = submodule(package, "models").LoginRequest(
        email=OPERATOR_EMAIL, password=OPERATOR_PASSWORD
    )
    answer = login.sync_detailed("1.0", client=client_of(package, base_url), body=body)
    assert answer.status_code == 200, answer.content
    return answer


def test_sinatra_catalog_and_history(
    generated: GeneratedClients, sinatra_server: ThreadedServer
) -> None:
    package, url = generated["sinatra"], sinatra_server.url
    token = sinatra_login(package, url).headers["jwt-auth"]
    as_user = authenticated(package, url, token, prefix="", auth_header_name="jwt-auth")

    games = submodule(package, "api.catalog.get_available_games").sync_detailed(
        "1.0", client=as_user, game_name="mega"
    )
    assert games.status_code == 200, games.content
    assert games.parsed and all("mega" in game.game_name.lower() for game in games.parsed)

    as_basic = authenticated(package, url, basic(OPERATOR_EMAIL, OPERATOR_PASSWORD), prefix="Basic")
    periods = submodule(package, "models").GetGameHistoryPaginatedTimePeriod
    page = submodule(package, "api.history.get_game_history_paginated").sync_detailed(
        "1.0", client=as_basic, time_period=periods.LAST_30_DAYS, page_size=50, page_number=1
    )
    assert page.status_code == 200, page.content
    assert page.parsed.total_count >= 0


def test_sinatra_login_answer_is_read(
    generated: GeneratedClients, sinatra_server: ThreadedServer
) -> None:
    answer = sinatra_login(generated["sinatra"], sinatra_server.url)
    assert answer.parsed is not None, "the login's 200 has no model"
    assert answer.parsed.user.email == OPERATOR_EMAIL


# -- operator identity, PEP Frontend: identity token, login, /me, the leaderboard --------------


def identity_token(generated: GeneratedClients, operator_url: str) -> str:
    admin = generated["admin"]
    tokens = submodule(admin, "api.default.list_tokens").sync_detailed(
        client=client_of(admin, operator_url)
    )
    assert tokens.status_code == 200, tokens.content
    return str(tokens.parsed.to_dict()["tokens"][0]["identityToken"])


def test_operator_identity(
    generated: GeneratedClients, operator_server: ThreadedServer
) -> None:
    package, url = generated["operator-identity"], operator_server.url
    validate = submodule(package, "api.default.validate_player_identity")
    request = submodule(package, "models").IdentityRequest
    answer = validate.sync_detailed(
        client=client_of(package, url), body=request(identity_token=identity_token(generated, url))
    )
    assert answer.status_code == 200, answer.content
    assert answer.parsed.player_id and isinstance(answer.parsed.expires_at, datetime)

    refused = validate.sync_detailed(
        client=client_of(package, url), body=request(identity_token="no-such-token")
    )
    assert refused.status_code == 401, refused.content


def test_pep_frontend_login_me_leaderboard(
    generated: GeneratedClients,
    operator_server: ThreadedServer,
    pep_server: ThreadedServer,
) -> None:
    package, url = generated["pep-frontend"], pep_server.url
    body = submodule(package, "models").AuthRequest(
        identity_token=identity_token(generated, operator_server.url), client_id=CLIENT
    )
    login = submodule(package, "api.default.authenticate_player").sync_detailed(
        client=client_of(package, url), body=body
    )
    assert login.status_code == 200, login.content
    grant = login.parsed
    player = authenticated(
        package, url, grant.access_token, prefix="", auth_header_name="x-authorization"
    )

    me = submodule(package, "api.default.get_player").sync_detailed(client=player)
    assert me.status_code == 200, me.content
    assert me.parsed.to_dict()["playerId"] == grant.player_id

    board = submodule(package, "api.default.get_xp_leaderboard").sync_detailed(
        client=player, limit=5
    )
    assert board.status_code == 200, board.content
    assert board.parsed.me.player_id == grant.player_id and len(board.parsed.items) <= 5


# -- PEP Platform: token, an event, the data fetch -----------------------------------------------


def platform_client(package: ModuleType, url: str) -> Any:
    form = submodule(package, "models.token_form_request")
    grant_type = submodule(package, "models.token_form_request_grant_type")
    token = submodule(package, "api.oauth.issue_platform_token").sync_detailed(
        client=authenticated(package, url, basic(CLIENT, SECRET), prefix="Basic"),
        body=form.TokenFormRequest(grant_type=grant_type.TokenFormRequestGrantType.CLIENT_CREDENTIALS),
    )
    assert token.status_code == 200, token.content
    return authenticated(package, url, token.parsed.access_token)


def post_deposit(package: ModuleType, client: Any, transaction_id: str) -> Any:
    deposit = submodule(package, "models").MoneyTransaction.from_dict(
        {
            "playerId": "877018", "amount": 60, "exchangeRate": 1, "currency": "EUR",
            "date": datetime.now(UTC).isoformat(), "transactionStatus": "APPROVED",
            "transactionType": "DEPOSIT", "transactionId": transaction_id,
            "realMoneyBalance": 60, "bonusMoneyBalance": 0,
        }
    )
    accepted = submodule(package, "api.events.post_money_transaction").sync_detailed(
        client=client, body=deposit
    )
    assert accepted.status_code == 202, accepted.content
    return accepted.parsed


def test_pep_platform_token_event_fetch(
    generated: GeneratedClients, pep_server: ThreadedServer
) -> None:
    package, url = generated["pep-platform"], pep_server.url
    client = platform_client(package, url)
    accepted = post_deposit(package, client, "gen-dep-1")
    assert accepted.event_id and accepted.duplicate is False

    page = submodule(package, "api.data_fetch.fetch_transactions").sync_detailed(
        client=client, limit=1000
    )
    assert page.status_code == 200, page.content
    ids = [item.transaction_id for item in page.parsed.items]
    assert "gen-dep-1" in ids


def test_pep_platform_fetched_transactions_are_typed(
    generated: GeneratedClients, pep_server: ThreadedServer
) -> None:
    package, url = generated["pep-platform"], pep_server.url
    client = platform_client(package, url)
    accepted = post_deposit(package, client, "gen-dep-2")
    page = submodule(package, "api.data_fetch.fetch_transactions").sync_detailed(
        client=client, limit=1000
    )
    assert page.status_code == 200, page.content
    mine = [item for item in page.parsed.items if item.transaction_id == "gen-dep-2"]
    assert mine and mine[0].event_id == accepted.event_id
    assert mine[0].kind == "money" and isinstance(mine[0].received_at, datetime)


# -- the control API ------------------------------------------------------------------------------


def test_admin_control_api(
    generated: GeneratedClients, sinatra_server: ThreadedServer
) -> None:
    package = generated["admin"]
    admin = client_of(package, sinatra_server.url)
    api = "api.default."
    health = submodule(package, api + "health").sync_detailed(client=admin)
    assert health.status_code == 200 and health.parsed.to_dict()["service"] == "sinatra"

    move = submodule(package, "models").MoveClockBodyType0.from_dict({"advance_seconds": 1199})
    moved = submodule(package, api + "move_clock").sync_detailed(client=admin, body=move)
    assert moved.status_code == 200, moved.content

    users = submodule(package, "models").AddUserBody.from_dict(
        {"email": "qa@example.com", "password": "qa", "permissions": ["View games catalog"],
         "available_operators": [9999999]}
    )
    added = submodule(package, api + "add_user").sync_detailed(client=admin, body=users)
    assert added.status_code == 201, added.content

    reset = submodule(package, api + "reset").sync_detailed(client=admin)
    assert reset.status_code == 200, reset.content


def test_admin_clearing_the_journal_is_read(
    generated: GeneratedClients, sinatra_server: ThreadedServer
) -> None:
    package = generated["admin"]
    cleared = submodule(package, "api.default.clear_requests").sync_detailed(
        client=client_of(package, sinatra_server.url)
    )
    assert cleared.status_code == 200, cleared.content
    assert cleared.parsed is not None, "the 200 has no model"
