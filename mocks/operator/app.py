"""The operator identity mock as a Flask app: the endpoint the PEP calls, and `/__admin/tokens`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from pepharness.mocks.core import (
    CORE_DEFAULTS,
    AdminBadRequest,
    backend_extension,
    backend_in,
    install_mock,
    new_app,
    read_json_object,
)
from pepharness.mocks.operator.backend import (
    TOKEN_KEYS,
    OperatorBackend,
    ProgramError,
    SharedOperatorBackend,
)
from pepharness.mocks.operator.errors import ERRORS

SERVICE = "operator"
EXTENSION = backend_extension(SERVICE)
IDENTITY_PATH = "/api/auth/v1/player"
FEEDBACK_PATH = "/api/players/v1/migration/feedback"

DEFAULTS: dict[str, Any] = {
    **CORE_DEFAULTS,
    "TOKEN_LIFETIME_SECONDS": 4 * 3600,
    "RECEIVED_SIZE": 1000,
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """An operator identity mock; `config` overrides these keys (all optional):

    SEED                    42: seed of the players (the same as Sinatra's and the PEP's).
    ANCHOR                  tz-aware datetime the generated data ends at; default: now. The
                            players depend on its UTC date only.
    TOKEN_LIFETIME_SECONDS  14400: a seeded token answers `expiresAt` = now + this.
    ADMIN                   True: serve `/__admin` (with `/__admin/tokens`, `/__admin/received`).
    JOURNAL_SIZE            1000: requests kept by the journal (`GET /__admin/requests`).
    RECEIVED_SIZE           1000: identity requests kept, redacted (`GET /__admin/received`).
    CLOCK                   a `Clock` to read "now" from (tests inject one); default: real time.
    MAX_CONTENT_LENGTH      1 MiB: a larger body is 400 `invalid_parameter`.
    """
    app, clock = new_app(__name__, DEFAULTS, config)
    anchor: datetime | None = app.config["ANCHOR"]
    settings: dict[str, Any] = {
        "seed": app.config["SEED"],
        "anchor": anchor,
        "token_lifetime_seconds": app.config["TOKEN_LIFETIME_SECONDS"],
        "received_size": app.config["RECEIVED_SIZE"],
    }
    state = app.config["STATE"]
    backend = (
        OperatorBackend(clock=clock, **settings)
        if state is None  # several workers: tokens and what was received are shared (D205)
        else SharedOperatorBackend(state, clock=clock, **settings)
    )
    install_mock(app, SERVICE, backend, ERRORS, clock, [api], [token_routes])
    app.after_request(_keep_received)
    return app


def backend_of(app: Flask | None = None) -> OperatorBackend:
    """The backend of `app` (the current app by default)."""
    return backend_in(app, SERVICE, OperatorBackend, "an operator app")


api = Blueprint(SERVICE, __name__)


@api.post(IDENTITY_PATH)
def validate_identity() -> ResponseReturnValue:
    return jsonify(backend_of().validate(request.get_data(cache=True)).to_json())


@api.post(FEEDBACK_PATH)
def migration_feedback() -> ResponseReturnValue:
    """The PEP's word that a bulk player sync ended: 204, kept in `/__admin/received`."""
    return Response(status=204)


def _keep_received(response: Response) -> Response:
    # Kept for every POST to the endpoints, faulted or refused ones too: what was *sent*.
    if request.path in (IDENTITY_PATH, FEEDBACK_PATH) and request.method == "POST":
        try:
            raw: bytes | None = request.get_data(cache=True)
        except RequestEntityTooLarge:
            raw = None
        backend_of().received.record(
            method=request.method,
            path=request.path,
            status=response.status_code,
            content_type=request.content_type,
            header_names=request.headers.keys(),
            raw=raw,
            size=request.content_length,
        )
    return response


def _limit() -> int | None:
    limit = request.args.get("limit")
    if limit is not None and (not limit.isdigit() or int(limit) < 1):
        raise AdminBadRequest(f"limit must be a positive integer, not {limit!r}")
    return int(limit) if limit is not None else None


def token_routes(admin: Blueprint) -> None:
    """`GET/POST /__admin/tokens` list and program tokens; `GET/DELETE /__admin/received`
    show and forget what the identity endpoint received."""

    @admin.get("/tokens")
    def list_tokens() -> ResponseReturnValue:
        backend = backend_of()
        now = backend.clock.now()
        return jsonify(tokens=[
            rule.to_json(now, backend.lifetime, backend.player_ids) for rule in backend.rules()
        ])

    @admin.post("/tokens")
    def program_token() -> ResponseReturnValue:
        body = read_json_object(allowed=TOKEN_KEYS, required=("identityToken",))
        backend = backend_of()
        try:
            rule = backend.program(body)
        except ProgramError as error:
            raise AdminBadRequest(str(error)) from None
        document = rule.to_json(backend.clock.now(), backend.lifetime, backend.player_ids)
        return jsonify(document), 201

    @admin.get("/received")
    def received() -> ResponseReturnValue:
        entries = backend_of().received.entries(_limit())
        return jsonify(received=[entry.to_json() for entry in entries])

    @admin.delete("/received")
    def forget_received() -> ResponseReturnValue:
        backend_of().received.reset()
        return jsonify(received=[])
