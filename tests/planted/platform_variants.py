"""Deliberately broken reference PEPs: each breaks one rule of suites/pep_platform/rules.py (and
only what follows from it), which `pepharness check pep-platform` must then report by name.

A variant is a fresh `create_app()` altered in one place of its Platform gateway (the `Platform`
at `app.extensions["pepharness.pep.platform"]`): a method of the gateway, its event log, the
token server's tokens or the guard replaced on the instance, the gateway swapped for one on
another database, or a Flask hook that rewrites requests or answers. A `restart` variant is
served in a process of its own (serve_platform.py), which the check's --restart-command kills
and starts again on the same database.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from flask import Flask, Response, request
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from pepharness.mocks.pep import create_app, errors
from pepharness.mocks.pep.events import NewEvent, Stored
from pepharness.mocks.pep.oauth import PlatformToken
from pepharness.mocks.pep.platform import Cursor, PlatformGateway
from pepharness.mocks.pep.platform_routes import EXTENSION, Platform
from pepharness.mocks.pep.store import metadata

PlatformConfig = Mapping[str, Any]
"""What a variant is built with: at least DATABASE."""

TOKEN = "/api/oauth/v1/token"
STORE_DELAY_SECONDS = 2.0
"""How long the acknowledging variant waits before it stores an event."""
CENTURY_SECONDS = 100 * 365 * 24 * 3600


@dataclass(frozen=True)
class PlatformVariant:
    """One planted fault: how to build it, which rules to run, which rules must fail."""

    name: str
    breaks: str
    build: Callable[[PlatformConfig], Flask]
    rules: str
    expected: tuple[str, ...]
    exit_code: int = 1
    options: tuple[str, ...] = ()
    level: str = "MUST"
    restart: bool = False
    """Served by serve_platform.py and checked with a --restart-command."""


def platform_app(config: PlatformConfig) -> Flask:
    """The correct reference PEP the variants start from."""
    return create_app({"SEED": 42, **config})


def platform_of(app: Flask) -> Platform:
    found = app.extensions[EXTENSION]
    if not isinstance(found, Platform):
        raise LookupError("the PEP app has no Platform gateway")
    return found


def _rewrite(config: PlatformConfig, change: Callable[[Response], None]) -> Flask:
    """The reference with every answer passed through `change` first."""
    app = platform_app(config)

    @app.after_request
    def rewrite(response: Response) -> Response:
        change(response)
        return response

    return app


# -- the token endpoint ----------------------------------------------------------------------------


def _token_cacheable(response: Response) -> None:
    if request.path == TOKEN:
        response.headers.pop("Cache-Control", None)


def token_answer_cacheable(config: PlatformConfig) -> Flask:
    return _rewrite(config, _token_cacheable)


def _no_client_challenge(response: Response) -> None:
    if request.path == TOKEN and response.status_code == 401:
        response.headers.pop("WWW-Authenticate", None)


def invalid_client_without_challenge(config: PlatformConfig) -> Flask:
    return _rewrite(config, _no_client_challenge)


def _token_renamed(response: Response) -> None:
    if request.path == TOKEN and request.method == "POST" and response.status_code == 200:
        body = json.loads(response.get_data())
        body["token"] = body.pop("access_token", None)
        response.set_data(json.dumps(body))


def token_without_access_token(config: PlatformConfig) -> Flask:
    """The token's 200 carries it as `token`: every check that needs one is off contract at
    setup, which is check_token_by_basic_credentials (exit 1), never exit 2 (D84)."""
    return _rewrite(config, _token_renamed)


def _no_body_client_challenge(response: Response) -> None:
    if "Authorization" not in request.headers:
        _no_client_challenge(response)


def body_invalid_client_without_challenge(config: PlatformConfig) -> Flask:
    """Only a 401 to credentials in the form or JSON lacks its challenge (Basic keeps it)."""
    return _rewrite(config, _no_body_client_challenge)


def _token_without_pragma(response: Response) -> None:
    if request.path == TOKEN:
        response.headers.pop("Pragma", None)


def token_answer_without_pragma(config: PlatformConfig) -> Flask:
    return _rewrite(config, _token_without_pragma)


def both_auth_methods_accepted(config: PlatformConfig) -> Flask:
    """Basic and form credentials together: the Basic header is ignored, the form's are used."""
    app = platform_app(config)

    @app.before_request
    def ignore_basic() -> None:
        basic = request.headers.get("Authorization", "").lower().startswith("basic ")
        if request.path == TOKEN and basic and "client_secret" in request.form:
            request.environ.pop("HTTP_AUTHORIZATION", None)

    return app


def repeated_parameter_first_wins(config: PlatformConfig) -> Flask:
    """A token form with a repeated parameter is read as if only its first value were sent."""
    app = platform_app(config)

    @app.before_request
    def first_values_only() -> None:
        if request.path != TOKEN or request.mimetype != "application/x-www-form-urlencoded":
            return
        pairs = parse_qsl(request.get_data(as_text=True), keep_blank_values=True)
        first = dict(reversed(pairs))
        body = urlencode(first).encode()
        request.environ["wsgi.input"] = io.BytesIO(body)
        request.environ["CONTENT_LENGTH"] = str(len(body))
        request.__dict__.pop("form", None)
        request.__dict__.pop("stream", None)
        request._cached_data = body  # type: ignore[attr-defined]

    return app


def basic_decoded_carelessly(config: PlatformConfig) -> Flask:
    """Decodes the Basic credentials as UTF-8 itself, first, and lets the error out (a 500)."""
    app = platform_app(config)

    @app.before_request
    def decode_basic() -> None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if request.path == TOKEN and scheme.lower() == "basic":
            with contextlib.suppress(binascii.Error):
                raw = base64.b64decode(credentials.encode("latin-1"))
                raw.decode("utf-8")

    return app


def token_never_expires(config: PlatformConfig) -> Flask:
    """Every token it verifies is taken to expire a century after its exp."""
    app = platform_app(config)
    tokens = platform_of(app).server.tokens
    verify = tokens.verify

    def ageless(token: str) -> PlatformToken | None:
        found = verify(token)
        if found is None:
            return None
        return replace(found, expires_at=found.expires_at + CENTURY_SECONDS)

    tokens.verify = ageless  # type: ignore[method-assign]
    return app


# -- Bearer tokens ---------------------------------------------------------------------------------


def _no_challenge(response: Response) -> None:
    if response.status_code == 401:
        response.headers.pop("WWW-Authenticate", None)


def no_challenge(config: PlatformConfig) -> Flask:
    return _rewrite(config, _no_challenge)


def alg_none_accepted(config: PlatformConfig) -> Flask:
    """Verifies signed tokens, and trusts the claims of unsigned (alg none) ones."""
    app = platform_app(config)
    tokens = platform_of(app).server.tokens
    verify = tokens.verify

    def trusting(token: str) -> PlatformToken | None:
        found = verify(token)
        if found is not None:
            return found
        try:
            if str(jwt.get_unverified_header(token).get("alg", "")).lower() != "none":
                return None
            claims = jwt.decode(token, options={"verify_signature": False})
            return PlatformToken(
                client_id=str(claims["client_id"]),
                scope=str(claims["scope"]),
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
                jti=str(claims["jti"]),
                clock=tokens.clock,
            )
        except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
            return None

    tokens.verify = trusting  # type: ignore[method-assign]
    return app


def scope_not_enforced(config: PlatformConfig) -> Flask:
    """Any valid token opens every endpoint, whatever its scope."""
    app = platform_app(config)
    guard = platform_of(app).guard
    acquire = guard.acquire

    def any_scope(scopes: Any = None) -> Any:
        return acquire(None)

    guard.acquire = any_scope  # type: ignore[method-assign]
    return app


# -- reactive events -------------------------------------------------------------------------------


def _events_answer_200(response: Response) -> None:
    if request.path.startswith("/rx-api/") and response.status_code == 202:
        response.status_code = 200


def events_answer_200(config: PlatformConfig) -> Flask:
    return _rewrite(config, _events_answer_200)


def repeat_stored_again(config: PlatformConfig) -> Flask:
    """Every arrival is a new event: the idempotency key gets the arrival's number."""
    app = platform_app(config)
    log = platform_of(app).gateway.events
    append = log.append
    arrivals = itertools.count(1)

    def append_every_time(events: Any, *, client_id: str, received_at: Any) -> list[Stored]:
        fresh = [replace(event, key=f"{event.key}#{next(arrivals)}") for event in events]
        return append(fresh, client_id=client_id, received_at=received_at)

    log.append = append_every_time  # type: ignore[method-assign]
    return app


def _keep_anyway(gateway: PlatformGateway, kind: str, raw: bytes, client_id: str) -> None:
    """What can be read of an invalid money transaction or round, stored all the same."""
    try:
        body = json.loads(raw)
    except ValueError:
        return
    if kind not in ("money", "round") or not isinstance(body, dict):
        return
    items = body.get("gameTransactionRound") if kind == "round" else [body]
    now = gateway.clock.now()
    kept = [
        NewEvent(
            key=f"{kind}:{item.get('transactionType')}:{item.get('transactionId')}",
            kind=kind,
            player_id=str(item.get("playerId")),
            occurred_at=now,
            body=item,
        )
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]
    if kept:
        gateway.events.append(kept, client_id=client_id, received_at=now)


def invalid_event_stored(config: PlatformConfig) -> Flask:
    """An invalid event is answered 400, but stored first."""
    app = platform_app(config)
    gateway = platform_of(app).gateway
    accept = gateway.accept

    def store_then_check(kind: str, raw: bytes, client_id: str) -> dict[str, Any]:
        try:
            return accept(kind, raw, client_id)
        except errors.InvalidEvent:
            _keep_anyway(gateway, kind, raw, client_id)
            raise

    gateway.accept = store_then_check  # type: ignore[method-assign]
    return app


def stored_after_the_answer(config: PlatformConfig) -> Flask:
    """Acknowledges an event at once and stores it STORE_DELAY_SECONDS later, in a thread: a
    restart in between loses it."""
    app = platform_app(config)
    log = platform_of(app).gateway.events
    append = log.append
    numbers = itertools.count(1_000_000)

    def acknowledge_first(events: Any, *, client_id: str, received_at: Any) -> list[Stored]:
        later = threading.Timer(
            STORE_DELAY_SECONDS, append, args=(events,),
            kwargs={"client_id": client_id, "received_at": received_at},
        )
        later.daemon = True
        later.start()
        return [Stored(next(numbers), duplicate=False) for _ in events]

    log.append = acknowledge_first  # type: ignore[method-assign]
    return app


def events_in_memory(config: PlatformConfig) -> Flask:
    """The gateway keeps events, players and tasks in an in-memory SQLite database."""
    app = platform_app(config)
    platform = platform_of(app)
    memory = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    metadata.create_all(memory)
    old = platform.gateway
    platform.gateway = PlatformGateway(
        clock=old.clock, db=memory, operator_url=old.operator_url, seed=old.seed, wake=old.wake
    )
    return app


# -- bulk player sync ------------------------------------------------------------------------------


def sync_errors_unnamed(config: PlatformConfig) -> Flask:
    """The sync's report lists each error's player and message, not its index or field."""
    app = platform_app(config)
    gateway = platform_of(app).gateway
    migrate = gateway.migrate

    def unnamed(raw: bytes, encoding: str | None, client_id: str, base: str) -> dict[str, Any]:
        report = migrate(raw, encoding, client_id, base)
        report["errors"] = [
            {"playerId": error.get("playerId"), "message": error.get("message")}
            for error in report.get("errors", [])
        ]
        return report

    gateway.migrate = unnamed  # type: ignore[method-assign]
    return app


def gzip_refused(config: PlatformConfig) -> Flask:
    """A gzip body is 415 unsupported_content_encoding (Brotli still works)."""
    app = platform_app(config)
    gateway = platform_of(app).gateway
    migrate = gateway.migrate

    def no_gzip(raw: bytes, encoding: str | None, client_id: str, base: str) -> dict[str, Any]:
        if (encoding or "").strip().lower() in ("gzip", "x-gzip"):
            raise errors.UnsupportedEncoding()
        return migrate(raw, encoding, client_id, base)

    gateway.migrate = no_gzip  # type: ignore[method-assign]
    return app


# -- data fetch ------------------------------------------------------------------------------------


def cursor_skips_item(config: PlatformConfig) -> Flask:
    """`next` points one item past the end of its page."""
    app = platform_app(config)
    gateway = platform_of(app).gateway
    fetch = gateway.fetch

    def one_too_far(listing: str, **query: Any) -> dict[str, Any]:
        page = fetch(listing, **query)
        if page["next"] is not None:
            page["next"] = Cursor.encode(listing, Cursor.decode(listing, page["next"]) + 1)
        return page

    gateway.fetch = one_too_far  # type: ignore[method-assign]
    return app


def empty_next_is_first_page(config: PlatformConfig) -> Flask:
    """An empty `next` is taken for no cursor: the first page (the reference before D77)."""
    app = platform_app(config)

    @app.before_request
    def drop_empty_next() -> None:
        if not request.path.startswith("/api/data-fetch/"):
            return
        pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if (k, v) != ("next", "")]
        request.query_string = urlencode(kept).encode()

    return app


def no_rate_limit(config: PlatformConfig) -> Flask:
    app = platform_app(config)
    gateway = platform_of(app).gateway

    def unlimited(client_id: str) -> None:
        return None

    gateway.rate = unlimited  # type: ignore[method-assign]
    return app


CLIENT_CHALLENGE = "check_invalid_client_carries_www_authenticate"
BODY_CLIENT_CHALLENGE = "check_body_credentials_invalid_client_carries_www_authenticate"
CHALLENGES = (BODY_CLIENT_CHALLENGE, "check_bearer_401_carries_challenge")
DURABILITY = "check_accepted_event*"
RESTART = "check_accepted_events_survive_a_restart"

PLATFORM_VARIANTS = [
    # the token endpoint
    PlatformVariant("token_answer_cacheable", "the token's 200 has no Cache-Control: no-store",
                    token_answer_cacheable, "check_token_*",
                    ("check_token_answer_is_not_stored",)),
    PlatformVariant("token_without_access_token", "the token's 200 has it under another name",
                    token_without_access_token, "check_not_a_server_error",
                    ("check_token_by_basic_credentials",),
                    options=("--operations", "POST /rx-api/players-data/v1/login")),
    PlatformVariant("both_auth_methods_accepted", "Basic and form credentials together are 200",
                    both_auth_methods_accepted,
                    "check_both_client_auth_methods_is_invalid_request",
                    ("check_both_client_auth_methods_is_invalid_request",)),
    PlatformVariant("repeated_parameter_first_wins", "grant_type=client_credentials&"
                    "grant_type=password is 200 (the first value wins)",
                    repeated_parameter_first_wins,
                    "check_token_repeated_parameter_is_invalid_request",
                    ("check_token_repeated_parameter_is_invalid_request",)),
    PlatformVariant("basic_decoded_carelessly", "Basic credentials that are not UTF-8 are 500",
                    basic_decoded_carelessly, "check_malformed_client_auth_is_400_or_401",
                    ("check_malformed_client_auth_is_400_or_401",)),
    PlatformVariant("token_never_expires", "a token past its expires_in still opens the API",
                    token_never_expires, "check_token_expires", ("check_token_expires",)),
    PlatformVariant("token_answer_without_pragma", "the token's 200 has no Pragma: no-cache",
                    token_answer_without_pragma, "check_token_answer_carries_pragma_no_cache",
                    ("check_token_answer_carries_pragma_no_cache",)),
    PlatformVariant("invalid_client_without_challenge", "invalid_client has no WWW-Authenticate",
                    invalid_client_without_challenge, CLIENT_CHALLENGE, (CLIENT_CHALLENGE,)),
    PlatformVariant("body_invalid_client_without_challenge", "invalid_client to form or JSON "
                    "credentials has no WWW-Authenticate", body_invalid_client_without_challenge,
                    BODY_CLIENT_CHALLENGE, (BODY_CLIENT_CHALLENGE,), exit_code=0,
                    level="SHOULD"),
    # Bearer tokens
    PlatformVariant("no_challenge", "no 401 carries WWW-Authenticate", no_challenge,
                    ",".join(CHALLENGES), CHALLENGES, exit_code=0, level="SHOULD"),
    PlatformVariant("no_challenge_strict", "the same, with --strict", no_challenge,
                    ",".join(CHALLENGES), CHALLENGES, options=("--strict",), level="SHOULD"),
    PlatformVariant("alg_none_accepted", "an unsigned (alg none) token is trusted",
                    alg_none_accepted, "check_alg_none_bearer_is_401",
                    ("check_alg_none_bearer_is_401",)),
    PlatformVariant("scope_not_enforced", "a token of any scope opens every endpoint",
                    scope_not_enforced, "check_scope_is_enforced", ("check_scope_is_enforced",)),
    # reactive events
    PlatformVariant("events_answer_200", "a valid event is 200, not 202", events_answer_200,
                    "check_valid_event_is_202", ("check_valid_event_is_202",)),
    PlatformVariant("repeat_stored_again", "an event sent twice is stored twice",
                    repeat_stored_again, "check_repeated_event_is_counted_once",
                    ("check_repeated_event_is_counted_once",)),
    PlatformVariant("invalid_event_stored", "an invalid event is 400 but stored",
                    invalid_event_stored, "check_invalid_event_is_not_stored",
                    ("check_invalid_event_is_not_stored",)),
    PlatformVariant("stored_after_the_answer", f"events stored {STORE_DELAY_SECONDS:g} s after "
                    "their 202, in a thread", stored_after_the_answer, DURABILITY,
                    ("check_accepted_event_is_readable_at_once", RESTART), restart=True),
    PlatformVariant("events_in_memory", "events kept in an in-memory database",
                    events_in_memory, DURABILITY, (RESTART,), restart=True),
    # bulk player sync
    PlatformVariant("sync_errors_unnamed", "a refused player's error has no index or field",
                    sync_errors_unnamed, "check_sync_errors_name_index_and_field",
                    ("check_sync_errors_name_index_and_field",)),
    PlatformVariant("gzip_refused", "a gzip-encoded sync is 415", gzip_refused,
                    "check_sync_accepts_compressed_body",
                    ("check_sync_accepts_compressed_body",)),
    # data fetch
    PlatformVariant("cursor_skips_item", "next points one item too far", cursor_skips_item,
                    "check_fetch_pages_partition_items",
                    ("check_fetch_pages_partition_items",)),
    PlatformVariant("empty_next_is_first_page", "next= (empty) answers the first page",
                    empty_next_is_first_page, "check_fetch_malformed_next_is_400",
                    ("check_fetch_malformed_next_is_400",)),
    PlatformVariant("no_rate_limit", "the data fetch has no rate limit", no_rate_limit,
                    "check_rate_limit_is_429_at_request_n_plus_1",
                    ("check_rate_limit_is_429_at_request_n_plus_1",)),
]


# -- answers that carry fields the contract does not declare ---------------------------------------


def _renamed(response: Response, path: str, names: Mapping[str, str]) -> None:
    """Rename the fields `names` of a 200 JSON answer on `path` (in its items too)."""
    if not request.path.startswith(path) or response.status_code != 200:
        return
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return
    for item in [body, *(body.get("items") or [] if isinstance(body, dict) else [])]:
        if isinstance(item, dict):
            for old, new in names.items():
                if old in item:
                    item[new] = item.pop(old)
    response.set_data(json.dumps(body))


def expires_in_renamed(config: PlatformConfig) -> Flask:
    """The token answer says how long the token lives under another name."""
    names = {"expires_in": "expires_in_seconds", "expiresIn": "expiresInSeconds"}
    return _rewrite(config, lambda response: _renamed(response, TOKEN, names))


def registered_at_renamed(config: PlatformConfig) -> Flask:
    """The data fetch's players carry their registration instant under another name."""
    names = {"registrationDate": "registered_at", "registeredAt": "registered_at"}
    players = "/api/data-fetch/v1/players"
    return _rewrite(config, lambda response: _renamed(response, players, names))


ANSWERS_RULE = "check_answers_declare_every_field"
PLATFORM_VARIANTS += [
    PlatformVariant("expires_in_renamed", "the token answer's expires_in is expires_in_seconds",
                    expires_in_renamed, ANSWERS_RULE, (ANSWERS_RULE,),
                    options=("--operations", "POST /api/oauth/v1/token")),
    PlatformVariant("registered_at_renamed", "a fetched player's registration instant is "
                    "registered_at", registered_at_renamed, ANSWERS_RULE, (ANSWERS_RULE,),
                    options=("--operations", "GET /api/data-fetch/v1/players")),
]
