"""The Sinatra mock as a Flask app: routes that parse the request, call the backend, serialize."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from pepharness.mocks.core import (
    CORE_DEFAULTS,
    AdminBadRequest,
    AdminConflict,
    RateLimiter,
    backend_extension,
    backend_in,
    core_of,
    install_mock,
    new_app,
    read_json_object,
)
from pepharness.mocks.core.faults import json_integer
from pepharness.mocks.sinatra.backend import SinatraBackend
from pepharness.mocks.sinatra.catalog import json_bytes
from pepharness.mocks.sinatra.errors import ERRORS, SlowDown
from pepharness.mocks.sinatra.params import MAX_INTEGER, parse_basic, parse_login
from pepharness.mocks.sinatra.users import Account, SharedUsers, UserExists

SERVICE = "sinatra"
EXTENSION = backend_extension(SERVICE)
USER_KEYS = ("email", "password", "permissions", "available_operators")

DEFAULTS: dict[str, Any] = {
    **CORE_DEFAULTS,
    "ROUNDS": 4000,
    "RATE_LIMIT": (5, 1.0),
    "SECRET": None,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """A Sinatra mock; `config` overrides these keys (all optional):

    SEED          42: seed of the generated data (and of fault probabilities).
    ROUNDS        4000: number of generated game rounds.
    ANCHOR        tz-aware datetime the generated history ends at; default: the clock's now.
    RATE_LIMIT    (5, 1.0): (requests, seconds) per credential on the paginated history.
    ADMIN         True: serve the `/__admin` control API (with `/__admin/users`).
    JOURNAL_SIZE  1000: requests kept by the journal (`GET /__admin/requests`).
    SECRET        str or bytes (>= 32 bytes) signing `jwt-auth` tokens; default: derived from
                  SEED, so the same seed issues the same tokens.
    CLOCK         a `Clock` to read "now" from (tests inject one); default: real time.
    MAX_CONTENT_LENGTH  1 MiB: a larger body is 400 `Bad Request`.
    """
    app, clock = new_app(__name__, DEFAULTS, config)
    limiter = RateLimiter(clock, *app.config["RATE_LIMIT"])
    secret = app.config["SECRET"]
    anchor: datetime | None = app.config["ANCHOR"]
    backend = SinatraBackend(
        clock=clock,
        seed=app.config["SEED"],
        rounds=app.config["ROUNDS"],
        anchor=anchor,
        secret=secret.encode() if isinstance(secret, str) else secret,
    )
    if app.config["STATE"] is not None:  # several workers: users added anywhere are everywhere
        backend.users = SharedUsers(app.config["STATE"], backend.data.users, backend.data.brands)
    install_mock(app, SERVICE, backend, ERRORS, clock, [api], [user_routes], rate_limiter=limiter)
    return app


def backend_of(app: Flask | None = None) -> SinatraBackend:
    """The backend of `app` (the current app by default)."""
    return backend_in(app, SERVICE, SinatraBackend, "a Sinatra app")


def _json(body: bytes) -> Response:
    # The same Content-Type `mimetype="application/json"` gives, without working it out.
    return Response(body, content_type="application/json")


def _document(document: Any) -> Response:
    # Flask's jsonify would sort the keys; the seed's order is kept.
    return _json(json_bytes(document))


def _session(backend: SinatraBackend | None = None) -> Account:
    return (backend or backend_of()).session(request.headers.get("jwt-auth"))


# Every `version` segment is accepted and behaves as 1.0 (D1).
api = Blueprint(SERVICE, __name__)


@api.post("/<version>/login/")
@api.post("/<version>/login")  # D3: also without the slash, and without a redirect
def login(version: str) -> ResponseReturnValue:
    email, password = parse_login(request.get_data())
    body, token = backend_of().login(email, password)
    response = _json(body)
    response.headers["jwt-auth"] = token
    return response


@api.get("/vendors/<version>/view/available")
def providers(version: str) -> ResponseReturnValue:
    return _json(backend_of().providers_json(_session()))


@api.get("/games/<version>/view/detailed")
def games(version: str) -> ResponseReturnValue:
    current = request._get_current_object()  # type: ignore[attr-defined]
    backend = backend_of()
    account = _session(backend)
    return _json(backend.games_json(account, lambda: current.args, current.query_string))


@api.get("/games/<version>/assets/<game_id>")
def assets(version: str, game_id: str) -> ResponseReturnValue:
    return _json(backend_of().assets_json(_session(), game_id))


@api.get("/transactions/<version>/games/history")
def history(version: str) -> ResponseReturnValue:
    return _document(backend_of().plain_history(_session(), request.args))


@api.get("/transactions/<version>/games/history/api")
def history_page(version: str) -> ResponseReturnValue:
    backend = backend_of()
    account = backend.basic(parse_basic(request.headers.get("Authorization")))
    limiter = core_of().rate_limiter
    if limiter is not None:
        decision = limiter.hit(account.email)
        if not decision.allowed:
            raise SlowDown(decision.retry_after)
    return _json(backend.history_page_json(account, request.args))


@api.get("/transactions/<version>/games/history/metadata")
def history_metadata(version: str) -> ResponseReturnValue:
    return _json(backend_of().metadata_json(_session()))


@api.get("/transactions/<version>/games/round/details/<casino_id>/<game_id>/<round_id>")
def round_details(version: str, casino_id: str, game_id: str, round_id: str) -> ResponseReturnValue:
    return _document(backend_of().round_details(_session(), casino_id, game_id, round_id))


def _list_of(body: Mapping[str, Any], key: str, strings: bool, what: str) -> list[Any]:
    """`body[key]` (default: empty) if it is a list of integers (JSON Schema's: `5.0` is 5,
    booleans are not integers), and of strings too when `strings`."""
    value = body.get(key, [])
    if not isinstance(value, list):
        raise AdminBadRequest(f"{key} must be a list of {what}")
    items = []
    for item in value:
        number = json_integer(item)
        if number is None and not (strings and isinstance(item, str)):
            raise AdminBadRequest(f"{key} must be a list of {what}")
        items.append(item if number is None else number)
    return items


def user_routes(admin: Blueprint) -> None:
    """`GET /__admin/users` lists the users (no passwords); `POST /__admin/users` adds one."""

    @admin.get("/users")
    def list_users() -> ResponseReturnValue:
        return jsonify(users=[account.to_json() for account in backend_of().users.all()])

    @admin.post("/users")
    def add_user() -> ResponseReturnValue:
        body = read_json_object(allowed=USER_KEYS, required=("email", "password"))
        email, password = body["email"], body["password"]
        if not isinstance(email, str) or not isinstance(password, str):
            raise AdminBadRequest("email and password must be strings")
        permissions = _list_of(body, "permissions", True, "permission names or ids")
        operators = _list_of(body, "available_operators", False, "integers")
        if not all(0 <= operator <= MAX_INTEGER for operator in operators):
            raise AdminBadRequest(f"available_operators must be integers from 0 to {MAX_INTEGER}")
        try:
            added = backend_of().add_user(email, password, permissions, operators)
        except UserExists as error:
            raise AdminConflict(str(error)) from None
        except ValueError as error:
            raise AdminBadRequest(str(error)) from None
        return jsonify(added.to_json()), 201
