"""Deliberately broken Sinatra mocks: each breaks one documented rule of the real app, which the
conformance suite must then report by name.

A variant is a fresh `create_app()` altered in one place: a backend method replaced on the
instance, a token issuer swapped, or a Flask hook that rewrites requests or responses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import jwt
from flask import Flask, Response, request

from pepharness.fixtures import game_document
from pepharness.mocks.sinatra import SinatraBackend, backend_of, create_app
from pepharness.mocks.sinatra.catalog import json_bytes
from pepharness.mocks.sinatra.history import RoundIndex, Window, window_for
from pepharness.mocks.sinatra.params import HistoryQuery
from pepharness.mocks.sinatra.tokens import InvalidToken, TokenIssuer

ROUNDS = 1500
RATE_LIMIT = (50, 1.0)
"""The variants' rate limit: high enough that the paced checks do not wait long."""
PERIODS = ("today", "yesterday", "last 7 days", "last 30 days")


@dataclass(frozen=True)
class Variant:
    """One planted fault: how to build it, which rules to run, which rule must fail."""

    name: str
    breaks: str
    build: Callable[[], Flask]
    rules: str
    expected: str
    exit_code: int = 1
    options: tuple[str, ...] = ()
    level: str = "MUST"
    operations: str = ""
    """--operations for the check: a schemathesis variant needs only its operation generated."""


def base_app(**config: Any) -> Flask:
    app = create_app({"SEED": 42, "ROUNDS": ROUNDS, "RATE_LIMIT": RATE_LIMIT, **config})
    backend = backend_of(app)
    # The route answers `history_page_json` (pages rendered once, D183): a variant replaces
    # `history_page`, so its answer goes through whatever `history_page` is at call time.
    backend.history_page_json = (  # type: ignore[method-assign]
        lambda account, args: json_bytes(backend.history_page(account, args))
    )
    return app


def _json(response: Response) -> Any:
    try:
        return json.loads(response.get_data())
    except ValueError:
        return None


def _set_json(response: Response, document: Any) -> Response:
    response.set_data(json.dumps(document))
    return response


def _is(path_part: str) -> bool:
    return path_part in request.path


# -- response rewriting --------------------------------------------------------------------------


def login_401() -> Flask:
    app = base_app()

    @app.after_request
    def refuse_with_401(response: Response) -> Response:
        body = _json(response)
        if _is("/login") and response.status_code == 400 and isinstance(body, dict) and (
            body.get("errMsg") == "Username or Password incorrect"
        ):
            response.status_code = 401
        return response

    return app


def unauthorized_text() -> Flask:
    app = base_app()

    @app.after_request
    def capitalize(response: Response) -> Response:
        if response.status_code == 401 and not _is("/history/api"):
            return _set_json(response, {"errMsg": "Unauthorized"})
        return response

    return app


def retry_after_missing() -> Flask:
    app = base_app(RATE_LIMIT=(5, 1.0))

    @app.after_request
    def drop(response: Response) -> Response:
        if response.status_code == 429:
            del response.headers["Retry-After"]
        return response

    return app


def wrong_content_type() -> Flask:
    app = base_app()

    @app.after_request
    def as_text(response: Response) -> Response:
        if _is("/view/detailed") and response.status_code == 200:
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return response

    return app


def game_id_as_number() -> Flask:
    app = base_app()

    @app.after_request
    def to_int(response: Response) -> Response:
        body = _json(response)
        if _is("/view/detailed") and response.status_code == 200 and isinstance(body, list):
            for game in body:
                game["gameId"] = int(game["gameId"])
            return _set_json(response, body)
        return response

    return app


def unknown_asset_404() -> Flask:
    app = base_app()

    @app.after_request
    def not_found(response: Response) -> Response:
        if _is("/assets/") and response.status_code == 400:
            response.status_code = 404
            return _set_json(response, {"errMsg": "not found"})
        return response

    return app


def server_error_on_bad_operator_id() -> Flask:
    app = base_app()

    @app.before_request
    def crash() -> Response | None:
        value = request.args.get("operator_id")
        if _is("/view/detailed") and value and not value.lstrip("-").isdigit():
            return Response('{"errMsg": "internal server error"}', 500,
                            mimetype="application/json")
        return None

    return app


def version_strict() -> Flask:
    app = base_app()

    @app.before_request
    def only_1_0() -> Response | None:
        parts = request.path.strip("/").split("/")
        version = parts[0] if _is("/login") else parts[1] if len(parts) > 1 else ""
        if not request.path.startswith("/__admin") and version != "1.0":
            return Response('{"errMsg": "not found"}', 404, mimetype="application/json")
        return None

    return app


# -- tokens --------------------------------------------------------------------------------------


def _swap_tokens(app: Flask, issuer: TokenIssuer) -> Flask:
    backend_of(app).tokens = issuer
    return app


class ThirtyMinuteIssuer(TokenIssuer):
    def issue(self, subject: str, now: datetime) -> str:
        issued = int(now.timestamp())
        claims = {"sub": subject, "iss": "sinatra", "aud": "sinatra", "iat": issued,
                  "exp": issued + 30 * 60}
        return jwt.encode(claims, self.secret, algorithm="HS256")


class NeverExpiringIssuer(TokenIssuer):
    def subject(self, token: str, now: datetime) -> str:
        return self._verified(token)[0]


class UnverifiedIssuer(TokenIssuer):
    """Trusts any HS256-labelled token without checking its signature."""

    def subject(self, token: str, now: datetime) -> str:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as error:
            raise InvalidToken(str(error)) from None
        if header.get("alg") != "HS256" or now.timestamp() >= claims.get("exp", 0):
            raise InvalidToken("refused")
        return str(claims["sub"])


class AlgNoneIssuer(TokenIssuer):
    """Verifies signed tokens, and trusts unsigned (alg none) ones."""

    def subject(self, token: str, now: datetime) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise InvalidToken(str(error)) from None
        if str(header.get("alg", "")).lower() == "none":
            claims = jwt.decode(token, options={"verify_signature": False})
            return str(claims["sub"])
        return super().subject(token, now)


def token_30_minutes() -> Flask:
    app = base_app()
    return _swap_tokens(app, ThirtyMinuteIssuer(backend_of(app).tokens.secret))


def token_never_expires() -> Flask:
    app = base_app()
    return _swap_tokens(app, NeverExpiringIssuer(backend_of(app).tokens.secret))


def forged_token_accepted() -> Flask:
    app = base_app()
    return _swap_tokens(app, UnverifiedIssuer(backend_of(app).tokens.secret))


def alg_none_accepted() -> Flask:
    app = base_app()
    return _swap_tokens(app, AlgNoneIssuer(backend_of(app).tokens.secret))


# -- backend rules -------------------------------------------------------------------------------


def basic_not_required() -> Flask:
    app = base_app()
    backend = backend_of(app)
    original = backend.basic

    def anyone(credentials: tuple[str, str] | None) -> Any:
        if credentials is None:
            return original(("operator@example.com", "operator-secret"))
        return original(credentials)

    backend.basic = anyone  # type: ignore[method-assign]
    return app


def permission_not_enforced() -> Flask:
    app = base_app()
    backend = backend_of(app)
    backend.providers_json = lambda account: backend.catalog.providers_json  # type: ignore[method-assign]
    return app


def game_name_case_sensitive() -> Flask:
    app = base_app()

    @app.after_request
    def case_sensitive(response: Response) -> Response:
        text = request.args.get("game_name")
        body = _json(response)
        if _is("/view/detailed") and text and isinstance(body, list):
            return _set_json(response, [g for g in body if text in g["gameName"]])
        return response

    return app


def _history_args(backend: SinatraBackend, change: Callable[[dict[str, str]], object]) -> None:
    """Rewrite the query both history endpoints see before their rules apply."""
    page, plain = backend.history_page, backend.plain_history

    def history_page(account: Any, args: Mapping[str, str]) -> Any:
        changed = dict(args.items())
        change(changed)
        return page(account, changed)

    def plain_history(account: Any, args: Mapping[str, str]) -> Any:
        changed = dict(args.items())
        change(changed)
        return plain(account, changed)

    backend.history_page = history_page  # type: ignore[method-assign]
    backend.plain_history = plain_history  # type: ignore[method-assign]


def from_without_to_accepted() -> Flask:
    app = base_app()

    def pair(args: dict[str, str]) -> None:
        if ("from" in args) != ("to" in args):
            args.setdefault("from", "")
            args.setdefault("to", "")

    _history_args(backend_of(app), pair)
    return app


def unknown_time_period_accepted() -> Flask:
    app = base_app()

    def lenient(args: dict[str, str]) -> None:
        if args.get("time_period") and args["time_period"] not in PERIODS:
            args["time_period"] = "today"

    _history_args(backend_of(app), lenient)
    return app


def round_ids_ignored() -> Flask:
    app = base_app()
    _history_args(backend_of(app), lambda args: args.pop("round_ids", None))
    return app


def six_months_not_enforced() -> Flask:
    app = base_app()
    history = backend_of(app).history

    def select(operators: frozenset[int], query: HistoryQuery, now: datetime) -> Any:
        if query.first is not None and query.last is not None:
            start = datetime.combine(query.first, time(), now.tzinfo)
            end = datetime.combine(query.last + timedelta(days=1), time(), now.tzinfo)
            window = Window(start, min(end, now))
        else:
            window = window_for(now, query.period, query.first, query.last)
        index = history.index(operators)
        if query.round_ids is not None:
            found = (history.data.round_by_id.get(r) for r in query.round_ids)
            index = RoundIndex([r for r in found if r is not None])
        lo, hi = index.span(window)
        return index, lo, hi

    history.select = select  # type: ignore[method-assign]
    return app


def _repaged(backend: SinatraBackend, slicer: Callable[[list[Any], int, int], list[Any]]) -> None:
    """The paginated history cut by `slicer(transactions, page_number, page_size)` out of the
    whole window, each transaction carried with its round."""
    page = backend.history_page

    def history_page(account: Any, args: Mapping[str, str]) -> Any:
        asked = dict(args.items())
        number, size = int(asked.get("page_number") or 1), int(asked.get("page_size") or 200)
        whole = page(account, {**asked, "page_number": "1", "page_size": "10000"})
        flat = [
            (round_, kind, transaction)
            for round_ in whole["responses"]
            for kind in ("good_transactions", "bad_transactions")
            for transaction in round_["transactions"][kind]
        ]
        rounds: list[dict[str, Any]] = []
        for round_, kind, transaction in slicer(flat, number, size):
            if not rounds or rounds[-1]["round_id"] != round_["round_id"]:
                rounds.append({**round_, "transactions": {"good_transactions": [],
                                                          "bad_transactions": []}})
            rounds[-1]["transactions"][kind].append(transaction)
        return {**whole, "page_num": number, "size_per_page": size, "responses": rounds}

    backend.history_page = history_page  # type: ignore[method-assign]


def off_by_one_page() -> Flask:
    app = base_app()

    def overlapping(flat: list[Any], number: int, size: int) -> list[Any]:
        start = (number - 1) * size - (1 if number > 1 else 0)
        return flat[start : start + size]

    _repaged(backend_of(app), overlapping)
    return app


def page_size_counts_rounds() -> Flask:
    app = base_app()

    def by_rounds(flat: list[Any], number: int, size: int) -> list[Any]:
        order = list(dict.fromkeys(round_["round_id"] for round_, _, _ in flat))
        chosen = set(order[(number - 1) * size : number * size])
        return [entry for entry in flat if entry[0]["round_id"] in chosen]

    _repaged(backend_of(app), by_rounds)
    return app


def no_rate_limit() -> Flask:
    return base_app(RATE_LIMIT=(100_000, 1.0))


def _catalog_args(backend: SinatraBackend, change: Callable[[dict[str, str]], object]) -> None:
    """Rewrite the catalog's query before its filters apply."""
    games = backend.games_json

    def games_json(
        account: Any, args: Mapping[str, str] | Callable[[], Mapping[str, str]], raw: Any = None
    ) -> bytes:
        # The route may pass its query as a function and the raw query string (D180): the
        # changed query is parsed afresh, never taken from the parsed-queries cache.
        changed = dict((args() if callable(args) else args).items())
        change(changed)
        return games(account, changed)

    backend.games_json = games_json  # type: ignore[method-assign]


def _catalog_filter(keep: Callable[[dict[str, Any], str], bool], parameter: str) -> Flask:
    """The catalog answered in full for `parameter`, then cut down by `keep(game, value)`."""
    app = base_app()
    _catalog_args(backend_of(app), lambda args: args.pop(parameter, None))

    @app.after_request
    def cut(response: Response) -> Response:
        value = request.args.get(parameter)
        body = _json(response)
        if _is("/view/detailed") and value and isinstance(body, list):
            return _set_json(response, [g for g in body if keep(g, value)])
        return response

    return app


class PrefixIssuer(TokenIssuer):
    """Accepts a token whose signature is only the beginning of the right one."""

    def subject(self, token: str, now: datetime) -> str:
        head, _, signature = token.rpartition(".")
        mac = hmac.new(self.secret, head.encode(), hashlib.sha256).digest()
        full = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        if len(signature) >= 8 and full.startswith(signature):
            token = f"{head}.{full}"
        return super().subject(token, now)


def truncated_token_accepted() -> Flask:
    app = base_app()
    return _swap_tokens(app, PrefixIssuer(backend_of(app).tokens.secret))


def metadata_refuses_tokens() -> Flask:
    app = base_app()

    @app.after_request
    def refuse(response: Response) -> Response:
        if _is("/history/metadata"):
            response.status_code = 401
            return _set_json(response, {"errMsg": "unauthorized"})
        return response

    return app


def metadata_without_auth() -> Flask:
    app = base_app()
    backend = backend_of(app)
    session = backend.session

    def lenient(token: str | None) -> Any:
        if token is None and _is("/history/metadata"):
            return backend.users.get("operator@example.com")
        return session(token)

    backend.session = lenient  # type: ignore[method-assign]
    return app


def wrong_basic_accepted() -> Flask:
    app = base_app()
    backend = backend_of(app)
    original = backend.basic

    def any_password(credentials: tuple[str, str] | None) -> Any:
        if credentials is not None and backend.users.get(credentials[0]) is not None:
            return backend.users.get(credentials[0])
        return original(credentials)

    backend.basic = any_password  # type: ignore[method-assign]
    return app


def jwt_opens_paginated() -> Flask:
    app = base_app()
    backend = backend_of(app)
    original = backend.basic

    def jwt_too(credentials: tuple[str, str] | None) -> Any:
        token = request.headers.get("jwt-auth")
        if credentials is None and token:
            return backend.session(token)
        return original(credentials)

    backend.basic = jwt_too  # type: ignore[method-assign]
    return app


def basic_challenge_missing() -> Flask:
    app = base_app()

    @app.after_request
    def no_challenge(response: Response) -> Response:
        response.headers.pop("WWW-Authenticate", None)
        return response

    return app


def login_without_token() -> Flask:
    app = base_app()

    @app.after_request
    def no_token(response: Response) -> Response:
        if _is("/login"):
            response.headers.pop("jwt-auth", None)
        return response

    return app


def login_without_token_for_example_user() -> Flask:
    """The contract's own example credentials work, and the login answers no token."""
    app = login_without_token()
    backend_of(app).add_user("tst@domain.com", "secret", [], [])
    return app


def page_num_always_1() -> Flask:
    app = base_app()

    @app.after_request
    def first(response: Response) -> Response:
        body = _json(response)
        if _is("/history/api") and isinstance(body, dict) and "page_num" in body:
            return _set_json(response, {**body, "page_num": 1})
        return response

    return app


def past_the_end_repeats_last_page() -> Flask:
    app = base_app()
    backend = backend_of(app)
    page = backend.history_page

    def history_page(account: Any, args: Mapping[str, str]) -> Any:
        answer = page(account, args)
        number = int(args.get("page_number") or 1)
        if not answer["responses"] and number > 1 and answer["total_count"]:
            size = answer["size_per_page"]
            last = max(1, -(-answer["total_count"] // size))
            answer = {**page(account, {**dict(args.items()), "page_number": str(last)}),
                      "page_num": number}
        return answer

    backend.history_page = history_page  # type: ignore[method-assign]
    return app


def page_number_0_is_1() -> Flask:
    app = base_app()

    def zero_is_one(args: dict[str, str]) -> None:
        if args.get("page_number") in ("0", "-1"):
            args["page_number"] = "1"

    _history_args(backend_of(app), zero_is_one)
    return app


def page_size_text_ignored() -> Flask:
    app = base_app()

    def ignore(args: dict[str, str]) -> None:
        if args.get("page_size") and not args["page_size"].isdigit():
            args.pop("page_size")

    _history_args(backend_of(app), ignore)
    return app


def foreign_game_in_results() -> Flask:
    app = base_app()
    template = game_document(backend_of(app).data.games[0])
    stranger = {**template, "gameId": "999000999", "gameName": "Planted Stranger"}

    @app.after_request
    def add(response: Response) -> Response:
        body = _json(response)
        if _is("/view/detailed") and request.args and isinstance(body, list):
            return _set_json(response, [*body, stranger])
        return response

    return app


def identifire_ignores_names() -> Flask:
    return _catalog_filter(lambda game, text: text in game["gameId"], "game_identifire")


def game_ids_ignored() -> Flask:
    app = base_app()
    _catalog_args(backend_of(app), lambda args: args.pop("game_ids", None))
    return app


def date_from_inverted() -> Flask:
    return _catalog_filter(lambda game, day: game["releaseDate"] < day, "date_from")


def date_from_strictly_after() -> Flask:
    return _catalog_filter(lambda game, day: game["releaseDate"] > day, "date_from")


def sub_provider_first_only() -> Flask:
    app = base_app()

    def first(args: dict[str, str]) -> None:
        if args.get("sub_provider"):
            args["sub_provider"] = args["sub_provider"].split(",")[0]

    _catalog_args(backend_of(app), first)
    return app


def burst_gets_500() -> Flask:
    app = base_app(RATE_LIMIT=(5, 1.0))

    @app.after_request
    def crash(response: Response) -> Response:
        if response.status_code == 429:
            response.status_code = 503
            return _set_json(response, {"errMsg": "internal server error"})
        return response

    return app


def retry_after_too_short() -> Flask:
    app = base_app(RATE_LIMIT=(5, 5.0))

    @app.after_request
    def hurry(response: Response) -> Response:
        if response.status_code == 429:
            response.headers["Retry-After"] = "1"
        return response

    return app


def old_from_refused() -> Flask:
    app = base_app()
    backend = backend_of(app)
    page, plain = backend.history_page, backend.plain_history

    def refuse(args: Mapping[str, str]) -> None:
        start = args.get("from")
        if start and start < (datetime.now().date() - timedelta(days=183)).isoformat():
            from pepharness.mocks.sinatra.errors import InvalidParameters

            raise InvalidParameters()

    def history_page(account: Any, args: Mapping[str, str]) -> Any:
        refuse(args)
        return page(account, args)

    def plain_history(account: Any, args: Mapping[str, str]) -> Any:
        refuse(args)
        return plain(account, args)

    backend.history_page = history_page  # type: ignore[method-assign]
    backend.plain_history = plain_history  # type: ignore[method-assign]
    return app


def yesterday_refused() -> Flask:
    app = base_app()

    @app.before_request
    def refuse() -> Response | None:
        if _is("/games/history") and request.args.get("time_period") == "yesterday":
            return Response('{"errMsg": "Bad Request"}', 400, mimetype="application/json")
        return None

    return app


def old_date_from_refused() -> Flask:
    app = base_app()

    @app.before_request
    def refuse() -> Response | None:
        day = request.args.get("date_from", "")
        if _is("/view/detailed") and day[:4].isdigit() and day < "2015":
            return Response('{"errMsg": "Bad Request"}', 400, mimetype="application/json")
        return None

    return app


def post_catalog_served() -> Flask:
    app = base_app()

    @app.before_request
    def serve_any_method() -> Response | None:
        if _is("/view/detailed") and request.method not in ("GET", "HEAD", "OPTIONS"):
            return Response("[]", 200, mimetype="application/json")
        return None

    return app


def options_allow_lies() -> Flask:
    app = base_app()

    @app.after_request
    def advertise(response: Response) -> Response:
        if request.method == "OPTIONS":
            response.headers["Allow"] = "GET, POST, HEAD, OPTIONS"
        return response

    return app


def no_allow_header() -> Flask:
    app = base_app()

    @app.after_request
    def drop(response: Response) -> Response:
        if response.status_code == 405:
            response.headers.pop("Allow", None)
        return response

    return app


CATALOG = "GET /games/{version}/view/detailed"
ASSETS = "GET /games/{version}/assets/{game_id}"
METADATA = "GET /transactions/{version}/games/history/metadata"
PAGED = "GET /transactions/{version}/games/history/api"
LOGIN = "POST /{version}/login/"
LIMIT_5 = ("--expect-rate-limit", "5/1")

VARIANTS = [
    # setup: what the checks need from the target before their own request
    # (the same fault met by a generated check's auth provider, first while pytest collects:
    # the login rule by name, exit 1, never a suite that did not run, D84)
    Variant("login_without_token_at_setup", "the login answers no jwt-auth header",
            login_without_token, "check_not_a_server_error",
            "check_login_returns_jwt_auth_header", operations=CATALOG),
    # authentication and tokens
    Variant("login_401", "a bad login is 401, not 400", login_401, "check_bad_login*",
            "check_bad_login_is_400_username_or_password_incorrect"),
    Variant("unauthorized_text", "a 401 says 'Unauthorized'", unauthorized_text,
            "check_missing_token_is_401", "check_missing_token_is_401"),
    Variant("forged_token_accepted", "the token's signature is not checked",
            forged_token_accepted, "check_forged_token_is_401", "check_forged_token_is_401"),
    Variant("truncated_token_accepted", "a token cut short still works",
            truncated_token_accepted, "check_truncated_token_is_401",
            "check_truncated_token_is_401"),
    Variant("alg_none_accepted", "unsigned (alg none) tokens are trusted", alg_none_accepted,
            "check_alg_none_token_is_401", "check_alg_none_token_is_401"),
    Variant("metadata_refuses_tokens", "the history metadata refuses a good token",
            metadata_refuses_tokens, "check_issued_token*",
            "check_issued_token_opens_protected_operation"),
    Variant("metadata_without_auth", "the history metadata answers without a token",
            metadata_without_auth, "check_ignored_auth", "check_ignored_auth",
            operations=METADATA),
    Variant("token_30_minutes", "tokens live 30 minutes", token_30_minutes, "check_token_*",
            "check_token_lifetime_is_20_minutes"),
    Variant("token_never_expires", "expired tokens are accepted", token_never_expires,
            "check_token_expires*", "check_token_expires_after_20_minutes"),
    Variant("login_without_token", "the login answers no jwt-auth header", login_without_token,
            "check_login_returns*", "check_login_returns_jwt_auth_header"),
    Variant("login_without_token_for_example_user",
            "the contract's example user logs in, with no jwt-auth header",
            login_without_token_for_example_user, "check_response_headers_conformance",
            "check_response_headers_conformance", operations=LOGIN),
    Variant("permission_not_enforced", "a user without permission sees the providers",
            permission_not_enforced, "check_missing_permission_is_403",
            "check_missing_permission_is_403"),
    # HTTP Basic on the paginated history
    Variant("basic_not_required", "the paginated history opens without Basic",
            basic_not_required, "check_paginated_history_without_basic_is_401",
            "check_paginated_history_without_basic_is_401"),
    Variant("wrong_basic_accepted", "the paginated history takes any password",
            wrong_basic_accepted, "check_paginated_history_with_wrong_basic_is_401",
            "check_paginated_history_with_wrong_basic_is_401"),
    Variant("jwt_opens_paginated", "a jwt-auth token opens the paginated history",
            jwt_opens_paginated, "check_paginated_history_refuses_jwt_alone",
            "check_paginated_history_refuses_jwt_alone"),
    Variant("basic_challenge_missing", "the Basic 401 has no WWW-Authenticate",
            basic_challenge_missing, "check_basic_401*", "check_basic_401_carries_challenge",
            exit_code=0, level="SHOULD"),
    # pagination
    Variant("page_size_counts_rounds", "page_size counts rounds", page_size_counts_rounds,
            "check_page*", "check_page_holds_at_most_page_size_transactions"),
    Variant("off_by_one_page", "each page repeats the last transaction of the one before",
            off_by_one_page, "check_page*", "check_pages_partition_the_transactions"),
    Variant("page_num_always_1", "page_num is always 1", page_num_always_1,
            "check_page_envelope_agrees", "check_page_envelope_agrees"),
    Variant("past_the_end_repeats_last_page", "a page after the last repeats the last one",
            past_the_end_repeats_last_page, "check_page_past*",
            "check_page_past_the_end_is_empty"),
    Variant("page_number_0_is_1", "page_number 0 is served as page 1", page_number_0_is_1,
            "check_page_bounds*", "check_page_bounds_are_enforced"),
    Variant("page_size_text_ignored", "a non-integer page_size is ignored",
            page_size_text_ignored, "check_negative_data_rejection",
            "check_negative_data_rejection", operations=PAGED),
    # catalog filters
    Variant("game_name_case_sensitive", "game_name matches case-sensitively",
            game_name_case_sensitive, "check_game_name*",
            "check_game_name_is_case_insensitive_substring"),
    Variant("foreign_game_in_results", "a filtered catalog lists a game it does not have",
            foreign_game_in_results, "check_filter_results*",
            "check_filter_results_are_subset_of_catalog"),
    Variant("identifire_ignores_names", "game_identifire matches ids only",
            identifire_ignores_names, "check_game_identifire*",
            "check_game_identifire_matches_id_or_name"),
    Variant("game_ids_ignored", "game_ids is ignored", game_ids_ignored, "check_game_ids*",
            "check_game_ids_returns_exactly_those_games"),
    Variant("date_from_inverted", "date_from keeps the games released before it",
            date_from_inverted, "check_date_from_is_monotone", "check_date_from_is_monotone"),
    Variant("date_from_strictly_after", "date_from drops the games released on that day",
            date_from_strictly_after, "check_date_from_keeps*",
            "check_date_from_keeps_games_released_on_or_after", exit_code=0, level="SHOULD"),
    Variant("sub_provider_first_only", "sub_provider reads only the first id",
            sub_provider_first_only, "check_sub_provider*",
            "check_sub_provider_selects_providers_games"),
    # rate limiting
    Variant("no_rate_limit", "the paginated history has no rate limit", no_rate_limit,
            "check_burst_above*", "check_burst_above_rate_limit_is_429_slow_down",
            options=LIMIT_5),
    Variant("retry_after_missing", "a 429 without Retry-After", retry_after_missing,
            "check_429*,check_rate_limit*", "check_429_carries_valid_retry_after",
            exit_code=0, level="SHOULD", options=LIMIT_5),
    Variant("retry_after_missing_strict", "a 429 without Retry-After, with --strict",
            retry_after_missing, "check_429*", "check_429_carries_valid_retry_after",
            level="SHOULD", options=(*LIMIT_5, "--strict")),
    Variant("burst_gets_503", "a burst above the limit gets 503", burst_gets_500,
            "check_burst_never*", "check_burst_never_answers_5xx", options=LIMIT_5),
    Variant("retry_after_too_short", "Retry-After says 1 s, the window is 5 s",
            retry_after_too_short, "check_rate_limit_recovers*",
            "check_rate_limit_recovers_after_retry_after", options=LIMIT_5),
    # history windows and parameters
    Variant("from_without_to_accepted", "`from` without `to` is accepted",
            from_without_to_accepted, "check_from_and_to_go_together",
            "check_from_and_to_go_together"),
    Variant("unknown_time_period_accepted", "an unknown time_period is accepted",
            unknown_time_period_accepted, "check_unknown_time_period_is_400",
            "check_unknown_time_period_is_400"),
    Variant("yesterday_refused", "time_period=yesterday is 400", yesterday_refused,
            "check_each_time_period*", "check_each_time_period_is_accepted"),
    Variant("round_ids_ignored", "round_ids is ignored", round_ids_ignored,
            "check_round_ids*", "check_round_ids_returns_only_those_rounds"),
    Variant("six_months_not_enforced", "history older than six months is served",
            six_months_not_enforced, "check_history_reaches*",
            "check_history_reaches_back_six_months_only"),
    Variant("old_from_refused", "`from` older than six months is 422", old_from_refused,
            "check_history_older*", "check_history_older_from_is_clamped", exit_code=0,
            level="SHOULD"),
    Variant("version_strict", "only version 1.0 is served", version_strict,
            "check_any_version*", "check_any_version_behaves_as_1_0"),
    # responses against the contract (schemathesis and the explicit 200 check)
    Variant("server_error_on_bad_operator_id", "a malformed operator_id is a 500",
            server_error_on_bad_operator_id, "check_not_a_server_error",
            "check_not_a_server_error", operations=CATALOG),
    Variant("unknown_asset_404", "an unknown game's assets are 404, which is undocumented",
            unknown_asset_404, "check_status_code_conformance", "check_status_code_conformance",
            operations=ASSETS),
    Variant("wrong_content_type", "the catalog is served as text/plain", wrong_content_type,
            "check_well_formed*", "check_well_formed_request_gets_documented_200"),
    Variant("wrong_content_type_schemathesis", "the catalog is served as text/plain",
            wrong_content_type, "check_content_type_conformance",
            "check_content_type_conformance", operations=CATALOG),
    Variant("game_id_as_number", "gameId is a number, not a string", game_id_as_number,
            "check_response_schema*", "check_response_schema_conformance",
            operations=CATALOG),
    Variant("old_date_from_refused", "a date_from before 2015 is 400", old_date_from_refused,
            "check_positive_data_acceptance", "check_positive_data_acceptance",
            operations=CATALOG),
    Variant("post_catalog_served", "POST on the catalog is 200", post_catalog_served,
            "check_unsupported_method", "check_unsupported_method", exit_code=0,
            level="SHOULD", operations=CATALOG),
    Variant("no_allow_header", "a 405 without Allow", no_allow_header,
            "check_unsupported_method", "check_unsupported_method", exit_code=0,
            level="SHOULD", operations=CATALOG),
    Variant("options_allow_lies", "OPTIONS advertises an undocumented POST",
            options_allow_lies, "check_allow_header_conformance",
            "check_allow_header_conformance", exit_code=0, level="SHOULD",
            operations=CATALOG),
]


# -- answers that carry fields the contract does not declare ---------------------------------------


def vendor_name_renamed() -> Flask:
    """The provider list calls a provider's `name` `vendorName` (a rename: the stray field is
    what check_answers_declare_every_field names)."""
    app = base_app()

    @app.after_request
    def rename(response: Response) -> Response:
        body = _json(response)
        if _is("/view/available") and response.status_code == 200 and isinstance(body, list):
            for provider in body:
                if isinstance(provider, dict) and "name" in provider:
                    provider["vendorName"] = provider.pop("name")
            return _set_json(response, body)
        return response

    return app


# -- boundary values (issue 13) --------------------------------------------------------------------


def server_error_after_2100() -> Flask:
    """A Sinatra whose date arithmetic overflows past 2100: any query date after it is a 500."""
    app = base_app()

    @app.before_request
    def overflow() -> Response | None:
        for value in request.args.values():
            year = value[:4]
            if len(value) >= 10 and value[4:5] == "-" and year.isdigit() and int(year) > 2100:
                response = Response(json.dumps({"errMsg": "internal server error"}), 500)
                response.content_type = "application/json"
                return response
        return None

    return app


PROVIDERS = "GET /vendors/{version}/view/available"
VARIANTS.append(
    Variant("vendor_name_renamed", "a provider's name is sent as vendorName", vendor_name_renamed,
            "check_answers_declare_every_field", "check_answers_declare_every_field",
            operations=PROVIDERS)
)
VARIANTS.append(
    Variant("server_error_after_2100", "a date after 2100 in a query is a 500",
            server_error_after_2100, "check_boundary_values_never_5xx",
            "check_boundary_values_never_5xx",
            operations="GET /transactions/{version}/games/history")
)
