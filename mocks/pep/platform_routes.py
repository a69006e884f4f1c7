"""The Platform gateway's routes: the token endpoint, the reactive events, the bulk sync and the
data fetch, each behind the scope it needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from pepharness.mocks.core.clock import parse_rfc3339
from pepharness.mocks.pep import errors
from pepharness.mocks.pep.oauth import (
    DATA_READ,
    EVENTS_WRITE,
    PLAYERS_SYNC,
    PlatformGuard,
    PlatformToken,
    TokenServer,
)
from pepharness.mocks.pep.platform import (
    INVALID_QUERY,
    MAX_FETCH,
    MAX_SYNC_BYTES,
    PlatformGateway,
)

EXTENSION = "pepharness.pep.platform"
TOKEN_PATH = "/api/oauth/v1/token"
MIGRATE_PATH = "/api/players-data/v1/migrate/batch"

EVENT_PATHS = {
    "/rx-api/transactions/v1/money-transaction": ("POST", "money"),
    "/rx-api/transactions/v1/game-transaction-round": ("POST", "round"),
    "/rx-api/players-data/v1/registration": ("POST", "registration"),
    "/rx-api/players-data/v1/login": ("POST", "login"),
    "/rx-api/players-data/v1/tags/upsert": ("PATCH", "tags"),
}


class Platform:
    """What the routes need: the gateway, Authlib's token server and resource guard."""

    def __init__(self, gateway: PlatformGateway, server: TokenServer, guard: PlatformGuard) -> None:
        self.gateway = gateway
        self.server = server
        self.guard = guard


def _platform() -> Platform:
    found = current_app.extensions.get(EXTENSION)
    if not isinstance(found, Platform):
        raise LookupError("the PEP app has no Platform gateway")
    return found


def render_auth_error(error: OAuth2Error) -> Response:
    """Authlib's RFC 6750 verdict (status, challenge) with the gateway's error body."""
    code = error.error or "invalid_token"
    # No Bearer token (none, or another scheme such as Basic): RFC 6750 §3.1's bare challenge.
    no_credentials = code in ("missing_authorization", "unsupported_token_type")
    failure = errors.PlatformAuthError(
        "the Authorization header needs a Bearer access token"
        if no_credentials
        else error.description or errors.PlatformAuthError.message,
        headers=dict(error.get_headers()),
    )
    failure.status = error.status_code or 401
    failure.code = "missing_token" if no_credentials else code
    realm = f'Bearer realm="{errors.PLATFORM_REALM}"'
    if no_credentials:
        # RFC 6750 §3.1: no error code in the challenge when no credentials were sent.
        failure.headers = {"WWW-Authenticate": realm}
    elif code == "insufficient_scope":
        needed = g.get("pepharness_scope", "")
        failure.headers = {
            "WWW-Authenticate": f'{realm}, error="insufficient_scope", scope="{needed}"'
        }
    return errors.render(failure)


def _token(scope: str) -> PlatformToken:
    g.pepharness_scope = scope  # for the 403's challenge
    with _platform().guard.acquire(scope) as token:
        return token  # type: ignore[no-any-return]


platform = Blueprint("platform", __name__)


@platform.post(TOKEN_PATH)
def token() -> ResponseReturnValue:
    return _platform().server.token_response(request)


def _event_view(kind: str) -> Callable[[], ResponseReturnValue]:
    def view() -> ResponseReturnValue:
        client = _token(EVENTS_WRITE).client_id
        answer = _platform().gateway.accept(kind, request.get_data(cache=True), client)
        return jsonify(answer), 202

    view.__name__ = f"event_{kind}"
    return view


for _path, (_method, _kind) in EVENT_PATHS.items():
    platform.add_url_rule(_path, view_func=_event_view(_kind), methods=[_method])


@platform.before_app_request
def _large_sync_bodies() -> None:
    if request.path == MIGRATE_PATH and request.method == "POST":
        request.max_content_length = MAX_SYNC_BYTES


@platform.post(MIGRATE_PATH)
def migrate() -> ResponseReturnValue:
    client = _token(PLAYERS_SYNC).client_id
    answer = _platform().gateway.migrate(
        request.get_data(cache=True),
        request.headers.get("Content-Encoding"),
        client,
        request.host_url,
    )
    return jsonify(answer), 202


@platform.get(f"{MIGRATE_PATH}/<task_id>")
def migration_task(task_id: str) -> ResponseReturnValue:
    client = _token(PLAYERS_SYNC).client_id
    return jsonify(_platform().gateway.task(task_id, client))


LIMIT_TEXT = re.compile(r"[1-9][0-9]{0,3}")
"""A limit as the contract's integer: ASCII digits, no sign, no leading zero, no exponent."""
FETCH_PARAMETERS = ("limit", "next", "delta")
MAX_CURSOR = 512


def _fetch(listing: str) -> ResponseReturnValue:
    client = _token(DATA_READ).client_id
    gateway = _platform().gateway
    gateway.rate(client)
    problems = [
        {"field": name, "message": "is sent more than once"}
        for name in FETCH_PARAMETERS
        if len(request.args.getlist(name)) > 1
    ]
    limit_text = request.args.get("limit", str(MAX_FETCH))
    if not LIMIT_TEXT.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_FETCH:
        problems.append({"field": "limit", "message": f"must be an integer from 1 to {MAX_FETCH}"})
    cursor = request.args.get("next")
    if cursor is not None and not 1 <= len(cursor) <= MAX_CURSOR:
        problems.append({"field": "next", "message": "is not a cursor of this list"})
    delta: Any = None
    if "delta" in request.args:
        try:
            delta = parse_rfc3339(request.args["delta"])
        except ValueError:
            problems.append({"field": "delta", "message": "must be an RFC 3339 date-time"})
    if problems:
        raise errors.InvalidEvent(problems, INVALID_QUERY)
    answer = gateway.fetch(listing, limit=int(limit_text), cursor=cursor, delta=delta)
    return jsonify(answer)


@platform.get("/api/data-fetch/v1/players")
def fetch_players() -> ResponseReturnValue:
    return _fetch("players")


@platform.get("/api/data-fetch/v1/transactions")
def fetch_transactions() -> ResponseReturnValue:
    return _fetch("transactions")
