"""Deliberately broken operator identity mocks: each breaks one rule of suites/operator/rules.py,
which `pepharness check operator` must then report by name.

A variant is a fresh `create_app()` altered in one place: the backend's `validate` wrapped on the
instance, or a Flask hook that rewrites requests or responses of the identity endpoint.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, request

from pepharness.mocks.core import parse_rfc3339
from pepharness.mocks.operator import IDENTITY_PATH, Identity, backend_of, create_app
from pepharness.mocks.operator.errors import (
    InternalError,
    InvalidParameter,
    InvalidToken,
    OperatorError,
)
from planted.variants import Variant

Validate = Callable[[bytes], Identity]

BURST_CAPACITY = 4
"""Calls the overloaded variant serves at once; the check's burst is far larger."""
BURST_HOLD_SECONDS = 0.05
"""How long each call holds its slot, so that the burst's calls overlap."""
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/operator/identity.py", line 42, in validate\n'
    "    token = body['identityToken']\n"
    "KeyError: 'identityToken'"
)


def operator_app(**config: Any) -> Flask:
    """The real operator mock the variants start from."""
    return create_app({"SEED": 42, **config})


def _json(response: Response) -> Any:
    try:
        return json.loads(response.get_data())
    except ValueError:
        return None


def _set_json(response: Response, document: Any) -> Response:
    response.set_data(json.dumps(document))
    return response


def _on_identity() -> bool:
    return request.path == IDENTITY_PATH


def _wrap_validate(app: Flask, wrapper: Callable[[Validate, bytes], Identity]) -> Flask:
    """Replace the backend's `validate` with `wrapper(original, raw)`."""
    backend = backend_of(app)
    original = backend.validate

    def validate(raw: bytes) -> Identity:
        return wrapper(original, raw)

    backend.validate = validate  # type: ignore[method-assign]
    return app


def _rewrite_player(change: Callable[[dict[str, Any]], object]) -> Flask:
    """The real mock with `change(body)` applied to every 200 of the identity endpoint."""
    app = operator_app()

    @app.after_request
    def rewrite(response: Response) -> Response:
        body = _json(response)
        if _on_identity() and response.status_code == 200 and isinstance(body, dict):
            change(body)
            return _set_json(response, body)
        return response

    return app


# -- tokens --------------------------------------------------------------------------------------


class Forbidden(OperatorError):
    status = 403
    code = "forbidden"
    message = "unknown identity token"


def unknown_token_403() -> Flask:
    app = operator_app()
    backend = backend_of(app)

    def forbid(original: Validate, raw: bytes) -> Identity:
        try:
            return original(raw)
        except InvalidToken:
            token = json.loads(raw)["identityToken"]
            if backend.rule(token) is None:
                raise Forbidden() from None
            raise

    return _wrap_validate(app, forbid)


def any_token_accepted() -> Flask:
    app = operator_app()
    backend = backend_of(app)

    def accept(original: Validate, raw: bytes) -> Identity:
        try:
            return original(raw)
        except InvalidToken:
            token = json.loads(raw)["identityToken"]
            if backend.rule(token) is None:
                return Identity(f"guest-{token[:8]}", backend.clock.now() + backend.lifetime)
            raise

    return _wrap_validate(app, accept)


def expired_token_accepted() -> Flask:
    """The operator never looks at a token's expiry: it answers a fresh one instead."""
    app = operator_app()
    backend = backend_of(app)

    def ignore_expiry(original: Validate, raw: bytes) -> Identity:
        try:
            return original(raw)
        except InvalidToken:
            rule = backend.rule(json.loads(raw)["identityToken"])
            if rule is not None and rule.expiry == "fixed" and rule.player_id is not None:
                return Identity(rule.player_id, backend.clock.now() + backend.lifetime)
            raise

    return _wrap_validate(app, ignore_expiry)


def player_id_rotates() -> Flask:
    """Each validation answers a new session-like playerId for the same token."""
    app = operator_app()
    calls = iter(range(1, 1_000_000))
    lock = threading.Lock()

    def rotate(original: Validate, raw: bytes) -> Identity:
        identity = original(raw)
        with lock:
            number = next(calls)
        return Identity(f"{identity.player_id}-{number}", identity.expires_at)

    return _wrap_validate(app, rotate)


# -- the 200 -------------------------------------------------------------------------------------


def player_id_missing() -> Flask:
    return _rewrite_player(lambda body: body.pop("playerId"))


def player_id_as_number() -> Flask:
    return _rewrite_player(lambda body: body.update(playerId=int(body["playerId"])))


def _reformat_expiry(format_: Callable[[str], Any]) -> Flask:
    def change(body: dict[str, Any]) -> None:
        if isinstance(body.get("expiresAt"), str):
            body["expiresAt"] = format_(body["expiresAt"])

    return _rewrite_player(change)


def expires_at_with_a_space() -> Flask:
    """`2026-11-25 14:00:00`: a SQL DATETIME, no `T` and no offset."""
    return _reformat_expiry(lambda value: value.replace("T", " ").rstrip("Z"))


def expires_at_as_epoch() -> Flask:
    return _reformat_expiry(lambda value: int(parse_rfc3339(value).timestamp()))


def expires_at_without_offset() -> Flask:
    """`2026-11-25T14:00:00`: local time of nowhere."""
    return _reformat_expiry(lambda value: value.rstrip("Z"))


def expires_at_in_the_past() -> Flask:
    app = operator_app()
    backend = backend_of(app)

    def stale(original: Validate, raw: bytes) -> Identity:
        identity = original(raw)
        return Identity(identity.player_id, backend.clock.now() - timedelta(hours=1))

    return _wrap_validate(app, stale)


def text_plain_answers() -> Flask:
    app = operator_app()

    @app.after_request
    def as_text(response: Response) -> Response:
        if _on_identity():
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return response

    return app


# -- malformed and hostile requests --------------------------------------------------------------


def _token_of(raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return body.get("identityToken") if isinstance(body, dict) else None


def empty_token_500() -> Flask:
    def crash(original: Validate, raw: bytes) -> Identity:
        if _token_of(raw) == "":
            raise InternalError()
        return original(raw)

    return _wrap_validate(operator_app(), crash)


def malformed_is_401() -> Flask:
    """A missing or malformed identityToken is 'Token Invalid' rather than 'Invalid parameter'."""

    def as_invalid_token(original: Validate, raw: bytes) -> Identity:
        try:
            return original(raw)
        except InvalidParameter:
            raise InvalidToken() from None

    return _wrap_validate(operator_app(), as_invalid_token)


def malformed_is_422() -> Flask:
    app = operator_app()

    @app.after_request
    def unprocessable(response: Response) -> Response:
        if _on_identity() and response.status_code == 400:
            response.status_code = 422
        return response

    return app


def non_object_body_500() -> Flask:
    def crash(original: Validate, raw: bytes) -> Identity:
        try:
            return original(raw)
        except InvalidParameter:
            raise InternalError() from None

    return _wrap_validate(operator_app(), crash)


def missing_token_is_a_guest() -> Flask:
    """A body without a usable identityToken logs in a guest player."""
    app = operator_app()
    backend = backend_of(app)

    def guest(original: Validate, raw: bytes) -> Identity:
        try:
            return original(raw)
        except InvalidParameter:
            return Identity("guest", backend.clock.now() + backend.lifetime)

    return _wrap_validate(app, guest)


def non_ascii_token_400() -> Flask:
    """A token outside printable ASCII is refused as a bad parameter, though the contract
    allows any non-empty string."""

    def ascii_only(original: Validate, raw: bytes) -> Identity:
        token = _token_of(raw)
        if isinstance(token, str) and token and not (token.isascii() and token.isprintable()):
            raise InvalidParameter("identityToken must be printable ASCII")
        return original(raw)

    return _wrap_validate(operator_app(), ascii_only)


def quote_in_token_500() -> Flask:
    """A token with a quote breaks the operator's (hand-built) SQL: 500."""

    def injectable(original: Validate, raw: bytes) -> Identity:
        token = _token_of(raw)
        if isinstance(token, str) and "'" in token:
            raise InternalError()
        return original(raw)

    return _wrap_validate(operator_app(), injectable)


def error_body_is_a_string() -> Flask:
    app = operator_app()

    @app.after_request
    def plain_message(response: Response) -> Response:
        body = _json(response)
        if _on_identity() and response.status_code == 401 and isinstance(body, dict):
            return _set_json(response, body.get("message", "unauthorized"))
        return response

    return app


# -- what an answer shows ------------------------------------------------------------------------


def traceback_in_400() -> Flask:
    app = operator_app()

    @app.after_request
    def debug_body(response: Response) -> Response:
        body = _json(response)
        if _on_identity() and response.status_code == 400 and isinstance(body, dict):
            return _set_json(response, {**body, "detail": TRACEBACK})
        return response

    return app


def source_path_in_header() -> Flask:
    app = operator_app()

    @app.after_request
    def debug_header(response: Response) -> Response:
        if _on_identity() and response.status_code >= 400:
            response.headers["X-Debug-Handler"] = "/app/operator/handlers/identity.py"
        return response

    return app


# -- methods -------------------------------------------------------------------------------------


def get_is_404() -> Flask:
    app = operator_app()

    @app.before_request
    def not_found() -> Response | None:
        if _on_identity() and request.method != "POST":
            return Response('{"error": "not_found", "message": "no such route"}', 404,
                            mimetype="application/json")
        return None

    return app


def no_allow_header() -> Flask:
    app = operator_app()

    @app.after_request
    def drop(response: Response) -> Response:
        if response.status_code == 405:
            response.headers.pop("Allow", None)
        return response

    return app


# -- concurrency ---------------------------------------------------------------------------------


def burst_overloaded() -> Flask:
    """At most BURST_CAPACITY calls at once: the others are 503 at once."""
    app = operator_app()
    slots = threading.Semaphore(BURST_CAPACITY)

    @app.before_request
    def take_slot() -> Response | None:
        if not _on_identity():
            return None
        if not slots.acquire(blocking=False):
            return Response('{"error": "unavailable", "message": "busy"}', 503,
                            mimetype="application/json")
        g.slot = True
        time.sleep(BURST_HOLD_SECONDS)
        return None

    @app.teardown_request
    def free_slot(error: BaseException | None) -> None:
        if g.pop("slot", False):
            slots.release()

    return app


def burst_mixes_players() -> Flask:
    """One buffer for the token being validated, shared by every thread: under concurrency a
    call is answered with another call's player."""
    app = operator_app()
    shared: list[bytes] = [b""]

    def racy(original: Validate, raw: bytes) -> Identity:
        shared[0] = raw
        time.sleep(BURST_HOLD_SECONDS)
        return original(shared[0])

    return _wrap_validate(app, racy)


STRICT = ("--strict",)

OPERATOR_VARIANTS: list[Variant] = [
    # tokens
    Variant("unknown_token_403", "an unknown token is 403", unknown_token_403,
            "check_unknown_token_is_401", "check_unknown_token_is_401"),
    Variant("any_token_accepted", "any token is 200 with a guest player", any_token_accepted,
            "check_unknown_token_is_401", "check_unknown_token_is_401"),
    Variant("expired_token_accepted", "an expired token is 200 with a fresh expiresAt",
            expired_token_accepted, "check_expired_token_is_401", "check_expired_token_is_401"),
    Variant("player_id_rotates", "each validation answers a new playerId, with --strict",
            player_id_rotates, "check_same_token_same_player", "check_same_token_same_player",
            level="SHOULD", options=STRICT),
    # the 200
    Variant("player_id_missing", "the 200 has no playerId", player_id_missing,
            "check_valid_token_returns_player_id", "check_valid_token_returns_player_id"),
    Variant("player_id_as_number", "playerId is a JSON number", player_id_as_number,
            "check_valid_token_returns_player_id", "check_valid_token_returns_player_id"),
    Variant("expires_at_with_a_space", "expiresAt is `2026-11-25 14:00:00`",
            expires_at_with_a_space, "check_expires_at*", "check_expires_at_is_rfc3339"),
    Variant("expires_at_as_epoch", "expiresAt is seconds since the epoch", expires_at_as_epoch,
            "check_expires_at*", "check_expires_at_is_rfc3339"),
    Variant("expires_at_without_offset", "expiresAt has no offset", expires_at_without_offset,
            "check_expires_at*", "check_expires_at_is_rfc3339"),
    Variant("expires_at_in_the_past", "expiresAt is an hour ago", expires_at_in_the_past,
            "check_expires_at*", "check_expires_at_is_in_the_future"),
    Variant("text_plain_answers", "every answer is text/plain", text_plain_answers,
            "check_content_type_conformance", "check_content_type_conformance"),
    # malformed and hostile requests
    Variant("empty_token_500", "an empty identityToken is 500", empty_token_500,
            "check_malformed_request*", "check_malformed_request_is_refused"),
    Variant("malformed_is_401", "a malformed request is 401, not 400", malformed_is_401,
            "check_malformed_request*", "check_malformed_request_is_400", exit_code=0,
            level="SHOULD"),
    Variant("malformed_is_401_strict", "a malformed request is 401, not 400, with --strict",
            malformed_is_401, "check_malformed_request*", "check_malformed_request_is_400",
            level="SHOULD", options=STRICT),
    Variant("quote_in_token_500", "a token with a quote is 500", quote_in_token_500,
            "check_hostile_input_is_refused", "check_hostile_input_is_refused"),
    Variant("non_object_body_500", "every invalid body is 500", non_object_body_500,
            "check_not_a_server_error", "check_not_a_server_error"),
    Variant("malformed_is_422", "a malformed request is 422, which is undocumented",
            malformed_is_422, "check_status_code_conformance", "check_status_code_conformance"),
    Variant("missing_token_is_a_guest", "a body without identityToken is 200 for a guest",
            missing_token_is_a_guest, "check_negative_data_rejection",
            "check_negative_data_rejection"),
    Variant("non_ascii_token_400", "a token outside printable ASCII is 400",
            non_ascii_token_400, "check_positive_data_acceptance",
            "check_positive_data_acceptance"),
    Variant("error_body_is_a_string", "the 401's body is a JSON string", error_body_is_a_string,
            "check_response_schema_conformance", "check_response_schema_conformance"),
    # what an answer shows
    Variant("traceback_in_400", "the 400 carries a Python traceback", traceback_in_400,
            "check_errors_do_not_leak_internals", "check_errors_do_not_leak_internals"),
    Variant("source_path_in_header", "every error names its handler's source file",
            source_path_in_header, "check_errors_do_not_leak_internals",
            "check_errors_do_not_leak_internals"),
    # methods
    Variant("get_is_404", "GET on the endpoint is 404, not 405", get_is_404,
            "check_unsupported_method", "check_unsupported_method", exit_code=0,
            level="SHOULD"),
    Variant("no_allow_header", "a 405 without Allow, with --strict", no_allow_header,
            "check_unsupported_method", "check_unsupported_method", level="SHOULD",
            options=STRICT),
    # concurrency
    Variant("burst_overloaded", f"more than {BURST_CAPACITY} calls at once are 503",
            burst_overloaded, "check_burst_is_answered", "check_burst_is_answered"),
    Variant("burst_mixes_players", "concurrent calls get each other's player",
            burst_mixes_players, "check_burst_is_answered", "check_burst_is_answered"),
]


# -- answers that carry fields the contract does not declare ---------------------------------------


def _rename_player_id(body: dict[str, Any]) -> None:
    if "playerId" in body:
        body["player_id"] = body.pop("playerId")


def player_id_renamed() -> Flask:
    """The identity answer names the player `player_id`."""
    return _rewrite_player(_rename_player_id)


OPERATOR_VARIANTS.append(
    Variant("player_id_renamed", "the identity answer's playerId is player_id", player_id_renamed,
            "check_answers_declare_every_field", "check_answers_declare_every_field")
)
