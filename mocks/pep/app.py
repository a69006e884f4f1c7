"""The reference PEP Frontend gateway as a Flask app: player sessions and the player's own data."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from pepharness.mocks.core import (
    CORE_DEFAULTS,
    AdminBadRequest,
    AdminConflict,
    AdminNotFound,
    Clock,
    backend_extension,
    backend_in,
    install_mock,
    new_app,
    read_json_object,
)
from pepharness.mocks.core.state import (
    JTI_DRAWS,
    TASK_DRAWS,
    SharedDraws,
    SharedRateLimiter,
    SharedState,
)
from pepharness.mocks.pep.backend import PepBackend
from pepharness.mocks.pep.engine import ENGINE_EXTENSION, EngineConfig, ReactiveEngine
from pepharness.mocks.pep.errors import ERRORS
from pepharness.mocks.pep.oauth import PlatformGuard, PlatformTokens, TokenServer
from pepharness.mocks.pep.operator_client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_OPERATOR_URL,
    DEFAULT_READ_TIMEOUT,
    OperatorClient,
)
from pepharness.mocks.pep.platform import DATA_FETCH_LIMIT, PlatformGateway
from pepharness.mocks.pep.platform_routes import EXTENSION as PLATFORM_EXTENSION
from pepharness.mocks.pep.platform_routes import Platform, platform, render_auth_error
from pepharness.mocks.pep.reads import engine_of, reads
from pepharness.mocks.pep.realtime import frontend_verifier, install_realtime
from pepharness.mocks.pep.realtime_workers import PRIVATE_PORT_EXTENSION, open_private_port
from pepharness.mocks.pep.store import ClientExists, ClientSpec, Store, database_url
from pepharness.mocks.pep.tokens import DEFAULT_ISSUER, AccessTokens, seed_secret

SERVICE = "pep"
EXTENSION = backend_extension(SERVICE)
DEMO_CLIENT_ID = "pep-demo-client"
DEMO_CLIENT_SECRET = "pep-demo-secret"
CLIENT_KEYS = ("clientId", "clientSecret", "gateways")

DEFAULTS: dict[str, Any] = {
    **CORE_DEFAULTS,
    "OPERATOR_URL": DEFAULT_OPERATOR_URL,
    "OPERATOR_CONNECT_TIMEOUT": DEFAULT_CONNECT_TIMEOUT,
    "OPERATOR_READ_TIMEOUT": DEFAULT_READ_TIMEOUT,
    "DATABASE": None,
    "SECRET": None,
    "ISSUER": DEFAULT_ISSUER,
    "SESSION_LIFETIME_SECONDS": 3600,
    "JWT_LEEWAY_SECONDS": 0,
    "CLIENTS": (ClientSpec(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),),
    "PLATFORM_TOKEN_LIFETIME_SECONDS": 3600,
    "ENGINE_CONFIG": None,
    "ENGINE": True,
    "WORKER": 0,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A reference PEP Frontend gateway; `config` overrides these keys (all optional):

    SEED                      42: seed of the players (the operator mock's) and of session ids.
    ANCHOR                    tz-aware datetime the seeded data ends at; default: now.
    ADMIN                     True: serve `/__admin` (with `/__admin/sessions`, `/__admin/clients`).
    JOURNAL_SIZE              1000: requests kept by the journal (`GET /__admin/requests`).
    CLOCK                     a `Clock` to read "now" from (tests inject one); default: real time.
    MAX_CONTENT_LENGTH        1 MiB: a larger body is 400 `invalid_request`.
    OPERATOR_URL              http://127.0.0.1:8102: the operator API the identity is checked at.
    OPERATOR_CONNECT_TIMEOUT  2.0 s to connect to the operator (then 504).
    OPERATOR_READ_TIMEOUT     5.0 s for each read of its answer; the whole call is bounded by
                              connect + read (then 504).
    DATABASE                  SQLite file path or SQLAlchemy URL of the PEP's state (API
                              clients, sessions); default: a new file in a new temporary folder,
                              removed with the app.
    SECRET                    str or bytes (>= 32 bytes) signing access tokens; default: derived
                              from SEED.
    ISSUER                    "pep-harness": the tokens' `iss`.
    SESSION_LIFETIME_SECONDS  3600: a token's lifetime when the operator's expiresAt is later
                              or absent.
    JWT_LEEWAY_SECONDS        0: leeway on `exp` (the issuer is the verifier, on one clock).
    PLATFORM_TOKEN_LIFETIME_SECONDS  3600: a Platform access token's lifetime.
    ENGINE_CONFIG             YAML file of segments, missions, levels, ranks and notification
                              triggers; default: the shipped mocks/pep/engine.yaml.
    ENGINE                    True: a background thread applies every stored event within
                              milliseconds; False: only `engine.apply_pending()` does.
    CLIENTS                   API clients seeded (and restored by /__admin/reset):
                              `ClientSpec`s or `{clientId, clientSecret, gateways?}` mappings;
                              default `pep-demo-client` / `pep-demo-secret`, both gateways.
    STATE                     a `SharedState` when several worker processes serve the app, each
                              building its own after the fork on one DATABASE (D207).
    WORKER                    0: this worker's index (with STATE).
    """
    app, clock = new_app(__name__, DEFAULTS, config)
    seed: int = app.config["SEED"]
    secret = app.config["SECRET"]
    key = seed_secret(seed) if secret is None else secret
    store = _open_store(app, app.config["DATABASE"])
    backend = PepBackend(
        clock=clock,
        store=store,
        operator=OperatorClient(
            app.config["OPERATOR_URL"],
            connect_timeout=float(app.config["OPERATOR_CONNECT_TIMEOUT"]),
            read_timeout=float(app.config["OPERATOR_READ_TIMEOUT"]),
        ),
        tokens=AccessTokens(
            key.encode() if isinstance(key, str) else key,
            issuer=app.config["ISSUER"],
            leeway_seconds=int(app.config["JWT_LEEWAY_SECONDS"]),
        ),
        clients=_client_specs(app.config["CLIENTS"]),
        seed=seed,
        anchor=app.config["ANCHOR"],
        session_lifetime_seconds=app.config["SESSION_LIFETIME_SECONDS"],
        engine_config=EngineConfig.load(app.config["ENGINE_CONFIG"]),
    )
    core = install_mock(app, SERVICE, backend, ERRORS, clock, [api], [session_routes])
    engine = _install_engine(app, backend, clock)
    gateway = _install_platform(app, backend, key, clock, seed, engine)
    # `/__admin/rate-limit` reads and sets the data fetch's limit, the PEP's only one (D115).
    if gateway.limiter.clock is not core.clock:
        raise ValueError("the data fetch's rate limiter must read the core's clock")
    core.rate_limiter = gateway.limiter
    state: SharedState | None = app.config["STATE"]
    if state is not None:
        # Served by several workers: the private port other workers forward this one's
        # Socket.IO sessions to (D209).
        private = open_private_port(app, state, int(app.config["WORKER"]))
        app.extensions[PRIVATE_PORT_EXTENSION] = private
        weakref.finalize(app, private.stop)
    return app


def _share(state: SharedState, backend: PepBackend, gateway: PlatformGateway) -> None:
    """What one process keeps in memory, moved to the workers' shared state (D208): the data
    fetch's rate limit, the players' writer lock, and the seeded sequences of session and task
    ids."""
    gateway.limiter = SharedRateLimiter(state, gateway.clock, *DATA_FETCH_LIMIT)
    # Each player change takes the next change_seq: read and written by one worker at a time.
    gateway.players_lock = state.serial
    backend.shared_draws = SharedDraws(state, JTI_DRAWS, backend.seed, 128)
    gateway.shared_draws = SharedDraws(state, TASK_DRAWS, f"migration:{gateway.seed}", 96)


def prepare_database(database: str | Path, clients: Iterable[ClientSpec | Mapping[str, Any]] = (
    DEFAULTS["CLIENTS"]
)) -> None:
    """Create the PEP's tables in `database` and seed its clients, once, before the worker
    processes that share it each build their app on it (D207): on SQLite, two workers'
    creating them at once could both insert a client."""
    store = _store(database_url(database))
    try:
        store.seed_clients(_client_specs(clients))
    finally:
        store.close()


def _install_engine(app: Flask, backend: PepBackend, clock: Clock) -> ReactiveEngine:
    """The reactive engine on the same database, pushing to the players over Socket.IO; its
    thread applies the events the Platform gateway stores (not started with ENGINE False:
    then only `apply_pending` applies them)."""
    state: SharedState | None = app.config["STATE"]
    worker = None if state is None else (state, int(app.config["WORKER"]))
    realtime = install_realtime(app, frontend_verifier(backend), worker=worker)
    engine = ReactiveEngine(
        backend.store.engine,
        clock=clock,
        config=backend.players.config,
        publish=realtime.publish,
        # One rank model and one standing: the seeded XP is the engine's starting state (D90).
        starting_xp=backend.players.seeded_xp,
    )
    app.extensions[ENGINE_EXTENSION] = engine
    app.register_blueprint(reads)
    if app.config["ENGINE"]:
        engine.start()
        weakref.finalize(app, engine.stop)
    return engine


def _install_platform(
    app: Flask,
    backend: PepBackend,
    key: str | bytes,
    clock: Clock,
    seed: int,
    engine: ReactiveEngine,
) -> PlatformGateway:
    """The Platform gateway on the same database and clock. Its tokens are signed with the
    Frontend's key for another audience: neither opens the other gateway (D46)."""
    tokens = PlatformTokens(
        key.encode() if isinstance(key, str) else key,
        clock=clock,
        issuer=app.config["ISSUER"],
        lifetime_seconds=int(app.config["PLATFORM_TOKEN_LIFETIME_SECONDS"]),
    )
    gateway = PlatformGateway(
        clock=clock,
        db=backend.store.engine,
        operator_url=app.config["OPERATOR_URL"],
        seed=seed,
        wake=engine.wake,
    )
    if app.config["STATE"] is not None:
        _share(app.config["STATE"], backend, gateway)
    app.extensions[PLATFORM_EXTENSION] = Platform(
        gateway, TokenServer(backend.store, tokens), PlatformGuard(tokens, render_auth_error)
    )
    # The events go first, then the engine's state built from them.
    backend.on_reset(gateway.reset)
    backend.on_reset(engine.reset)
    app.register_blueprint(platform)
    return gateway


def _open_store(app: Flask, database: str | Path | None) -> Store:
    if database is not None:
        store = _store(database_url(database))
        weakref.finalize(app, store.close)
        return store
    folder = tempfile.mkdtemp(prefix="pepharness-pep-")
    store = Store(database_url(Path(folder) / "pep.sqlite3"))
    weakref.finalize(app, _discard, store, folder)
    return store


def _store(url: str) -> Store:
    """The store at `url`; a database that cannot be opened is a ValueError of one line, naming
    it without its password (`serve` says it as its `error:` line) (D194)."""
    try:
        return Store(url)
    except ImportError as error:
        missing = error.name or "its driver"
        hint = " (pip install 'pep-harness[postgres]')" if missing == "psycopg" else ""
        raise ValueError(f"cannot open the database: {missing} is not installed{hint}") from None
    except (SQLAlchemyError, OSError) as error:
        shown = make_url(url).render_as_string(hide_password=True)
        cause = getattr(error, "orig", None) or error
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ValueError(f"cannot open the database {shown}: {reason}") from None


def _discard(store: Store, folder: str) -> None:
    store.close()
    shutil.rmtree(folder, ignore_errors=True)


def _client_specs(clients: Iterable[ClientSpec | Mapping[str, Any]]) -> list[ClientSpec]:
    specs = []
    for client in clients:
        if isinstance(client, ClientSpec):
            specs.append(client)
        else:
            gateways = client.get("gateways")
            specs.append(
                ClientSpec(
                    client["clientId"],
                    client["clientSecret"],
                    *(() if gateways is None else (tuple(gateways),)),
                )
            )
    return specs


def backend_of(app: Flask | None = None) -> PepBackend:
    """The backend of `app` (the current app by default)."""
    return backend_in(app, SERVICE, PepBackend, "a PEP app")


api = Blueprint(SERVICE, __name__)

AUTH_HEADER = "x-authorization"


@api.post("/api/auth/v1/player")
def start_session() -> ResponseReturnValue:
    grant = backend_of().start_session(request.get_data(cache=True))
    response = jsonify(grant.to_json())
    response.headers["Cache-Control"] = "no-store"
    return response


@api.get("/api/auth/v1/session")
def current_session() -> ResponseReturnValue:
    return jsonify(backend_of().session(request.headers.get(AUTH_HEADER)).to_json())


@api.delete("/api/auth/v1/session")
def end_session() -> ResponseReturnValue:
    backend_of().end_session(request.headers.get(AUTH_HEADER))
    return Response(status=204)


@api.get("/api/players/v1/me")
def me() -> ResponseReturnValue:
    backend = backend_of()
    session = backend.session(request.headers.get(AUTH_HEADER))
    state = engine_of().player_state(session.player_id)
    return jsonify(backend.players.document(session.player_id, state))


def session_routes(admin: Blueprint) -> None:
    """`GET /__admin/sessions` lists the stored sessions; `GET/POST /__admin/clients` list
    and add API clients (secrets are never shown); `GET /__admin/engine` and
    `GET /__admin/engine/players/<id>` show the reactive engine's progress and a player's
    state."""

    @admin.get("/sessions")
    def list_sessions() -> ResponseReturnValue:
        backend = backend_of()
        sessions = [session.to_json() for session in backend.store.sessions()]
        return jsonify(database=backend.store.engine.url.render_as_string(), sessions=sessions)

    @admin.get("/engine")
    def engine_status() -> ResponseReturnValue:
        engine = engine_of()
        return jsonify(pending=engine.pending(), running=engine.running)

    @admin.get("/engine/players/<player_id>")
    def engine_player(player_id: str) -> ResponseReturnValue:
        state = engine_of().player_state(player_id)
        if state is None:
            raise AdminNotFound(f"no event of player {player_id!r} has been applied")
        return jsonify({"playerId": player_id, **state})

    @admin.get("/clients")
    def list_clients() -> ResponseReturnValue:
        return jsonify(clients=[client.to_json() for client in backend_of().store.clients()])

    @admin.post("/clients")
    def add_client() -> ResponseReturnValue:
        body = read_json_object(allowed=CLIENT_KEYS, required=("clientId", "clientSecret"))
        client_id, secret = body["clientId"], body["clientSecret"]
        gateways = body.get("gateways", ["frontend", "platform"])
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise AdminBadRequest("clientId and clientSecret must be strings")
        if not isinstance(gateways, list) or not all(isinstance(g, str) for g in gateways):
            raise AdminBadRequest("gateways must be a list of strings")
        try:
            added = backend_of().store.add_client(ClientSpec(client_id, secret, tuple(gateways)))
        except ValueError as error:
            raise AdminBadRequest(str(error)) from None
        except ClientExists as error:
            raise AdminConflict(str(error)) from None
        return jsonify(added.to_json()), 201
