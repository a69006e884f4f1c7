"""Deliberately broken reference PEPs: each breaks one rule of suites/pep_frontend/rules.py (and
only what follows from it), which `pepharness check pep-frontend` must then report by name.

A variant is a fresh `create_app()` altered in one place: its operator client or token
component swapped for a subclass, a backend method replaced on the instance, or a Flask hook
that rewrites answers. Every variant calls the operator at the `OPERATOR_URL` it is given.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import requests
from flask import Flask, Request, Response, request

from pepharness.mocks.pep import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, backend_of, create_app, errors
from pepharness.mocks.pep.operator_client import OperatorClient, OperatorIdentity
from pepharness.mocks.pep.store import ApiClient, PlayerSession
from pepharness.mocks.pep.tokens import AccessClaims, AccessTokens, InvalidAccessToken

PepConfig = Mapping[str, Any]
"""What a variant is built with: at least OPERATOR_URL and DATABASE."""

OPERATOR_TIMEOUTS = {"OPERATOR_CONNECT_TIMEOUT": 1.0, "OPERATOR_READ_TIMEOUT": 2.0}
"""The reference's timeouts towards the operator: well within the check's --operator-timeout."""
PATIENCE_SECONDS = 6.5
"""How long the patient variant keeps trying a dead operator: past the tests' 5 s bound."""
LOGIN = "/api/auth/v1/player"
ME = "/api/players/v1/me"


@dataclass(frozen=True)
class PepVariant:
    """One planted fault: how to build it, which rules to run, which rule must fail."""

    name: str
    breaks: str
    build: Callable[[PepConfig], Flask]
    rules: str
    expected: str
    exit_code: int = 1
    options: tuple[str, ...] = ()
    level: str = "MUST"


def pep_app(config: PepConfig) -> Flask:
    """The correct reference PEP the variants start from."""
    return create_app({"SEED": 42, **OPERATOR_TIMEOUTS, **config})


def _swap_operator(app: Flask, kind: type[OperatorClient], **overrides: float) -> Flask:
    """The app with its operator client replaced by a `kind`, at the same URL and timeouts."""
    backend = backend_of(app)
    current = backend.operator
    timeouts = {"connect_timeout": current.connect_timeout, "read_timeout": current.read_timeout}
    backend.operator = kind(current.base_url, **{**timeouts, **overrides})
    return app


def _swap_tokens(app: Flask, kind: type[AccessTokens]) -> Flask:
    backend = backend_of(app)
    current = backend.tokens
    backend.tokens = kind(current.secret, current.issuer, current.leeway_seconds)
    return app


def _claims(payload: Mapping[str, Any]) -> AccessClaims:
    """The AccessClaims of a decoded payload, taken as they are."""
    try:
        return AccessClaims(
            jti=str(payload["jti"]),
            player_id=str(payload["sub"]),
            client_id=str(payload["client_id"]),
            issued_at=datetime.fromtimestamp(payload["iat"], UTC),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise InvalidAccessToken("claims missing") from None


# -- the call to the operator ----------------------------------------------------------------------


class RetryingOperatorClient(OperatorClient):
    """Asks the operator a second time when it refuses the identity token, "in case of a glitch"."""

    def validate(self, identity_token: str) -> OperatorIdentity:
        try:
            return super().validate(identity_token)
        except (errors.IdentityTokenMalformed, errors.IdentityTokenInvalid, errors.PlayerNotFound):
            return super().validate(identity_token)


class RefusalIsInternalError(OperatorClient):
    """Treats the operator's 401 as an unexpected failure of its own."""

    def validate(self, identity_token: str) -> OperatorIdentity:
        try:
            return super().validate(identity_token)
        except errors.IdentityTokenInvalid:
            raise errors.InternalError() from None


class RelayedOperatorFailure(errors.OperatorError):
    status = 500


class RelayingOperatorClient(OperatorClient):
    """Passes the operator's 500 on as its own 500, instead of a 502."""

    def validate(self, identity_token: str) -> OperatorIdentity:
        try:
            return super().validate(identity_token)
        except errors.OperatorError as error:
            if type(error) is errors.OperatorError and "HTTP 500" in error.message:
                raise RelayedOperatorFailure() from None
            raise


class LenientOperatorClient(OperatorClient):
    """Takes the operator's 200 without playerId as the identity of an anonymous player."""

    def _read(self, response: requests.Response, deadline: float) -> bytes:
        body = super()._read(response, deadline)
        try:
            document = json.loads(body)
        except ValueError:
            return body
        if isinstance(document, dict) and "playerId" not in document:
            document["playerId"] = "anonymous"
        return json.dumps(document).encode()


class SecretInBody(requests.auth.AuthBase):
    """Adds the API client's secret to a JSON body, "so that the operator knows the PEP"."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = prepared.body if isinstance(prepared.body, bytes) else b"{}"
        prepared.prepare_body(None, None, json={**json.loads(raw), "clientSecret": self.secret})
        return prepared


class SecretSharingOperatorClient(OperatorClient):
    """Sends the demo client's secret to the operator with the identity token."""

    def _session(self) -> requests.Session:
        session = super()._session()
        session.auth = SecretInBody(DEMO_CLIENT_SECRET)
        return session


class PatientOperatorClient(OperatorClient):
    """Keeps trying an operator that refuses connections, for PATIENCE_SECONDS."""

    def validate(self, identity_token: str) -> OperatorIdentity:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:
            try:
                return super().validate(identity_token)
            except errors.OperatorUnreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def operator_4xx_retried(config: PepConfig) -> Flask:
    return _swap_operator(pep_app(config), RetryingOperatorClient)


def operator_wait_unbounded(config: PepConfig) -> Flask:
    return _swap_operator(pep_app(config), OperatorClient, read_timeout=60.0)


def dead_operator_retried(config: PepConfig) -> Flask:
    return _swap_operator(pep_app(config), PatientOperatorClient)


def operator_401_is_500(config: PepConfig) -> Flask:
    return _swap_operator(pep_app(config), RefusalIsInternalError)


def operator_500_is_500(config: PepConfig) -> Flask:
    return _swap_operator(pep_app(config), RelayingOperatorClient)


def missing_player_id_accepted(config: PepConfig) -> Flask:
    return _swap_operator(pep_app(config), LenientOperatorClient)


def client_secret_sent(config: PepConfig) -> Flask:
    return _swap_operator(pep_app(config), SecretSharingOperatorClient)


def unknown_client_accepted(config: PepConfig) -> Flask:
    app = pep_app(config)
    backend = backend_of(app)
    original = backend.frontend_client

    def any_client(client_id: str) -> ApiClient:
        if backend.store.client(client_id) is None:
            return original(DEMO_CLIENT_ID)
        return original(client_id)

    backend.frontend_client = any_client  # type: ignore[method-assign]
    return app


# -- the token -------------------------------------------------------------------------------------


class UncappedTokens(AccessTokens):
    """Signs every token for an hour, whatever the operator's expiresAt (the session row, and
    the answer's expiresAt, stay capped)."""

    def issue(self, claims: AccessClaims) -> str:
        hour = claims.issued_at + timedelta(hours=1)
        return super().issue(
            AccessClaims(claims.jti, claims.player_id, claims.client_id, claims.issued_at, hour)
        )


class NeverExpiringTokens(AccessTokens):
    """Checks everything but the expiry."""

    def verify(self, token: str, now: datetime) -> AccessClaims:
        return super().verify(token, datetime.fromtimestamp(0, UTC))


class AlgNoneTokens(AccessTokens):
    """Verifies signed tokens, and trusts unsigned (alg none) ones."""

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise InvalidAccessToken(str(error)) from None
        if str(header.get("alg", "")).lower() == "none":
            return _claims(jwt.decode(token, options={"verify_signature": False}))
        return super().verify(token, now)


class UnverifiedTokens(AccessTokens):
    """Checks the algorithm, issuer, audience and expiry of a token, but not its signature."""

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            payload = jwt.decode(
                token,
                options={"verify_signature": False, "verify_exp": False},
                audience="pep-frontend",
                issuer=self.issuer,
            )
        except jwt.InvalidTokenError as error:
            raise InvalidAccessToken(str(error)) from None
        claims = _claims(payload)
        if header.get("alg") != "HS256" or now >= claims.expires_at:
            raise InvalidAccessToken("refused")
        return claims


class FederatedTokens(AccessTokens):
    """Verifies the tokens it issued; a token of another issuer is trusted as the casino's
    other services' ("they verified it already"), whatever its audience or signature."""

    # A PEP that checks its own signature but not `aud` is not planted: the check signs its
    # other-audience token with a key of its own, which any signature check refuses already.

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            payload = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as error:
            raise InvalidAccessToken(str(error)) from None
        if payload.get("iss") == self.issuer:
            return super().verify(token, now)
        claims = _claims(payload)
        if now >= claims.expires_at:
            raise InvalidAccessToken("the token has expired")
        return claims


def exp_not_capped(config: PepConfig) -> Flask:
    return _swap_tokens(pep_app(config), UncappedTokens)


def expired_token_accepted(config: PepConfig) -> Flask:
    return _swap_tokens(pep_app(config), NeverExpiringTokens)


def alg_none_accepted(config: PepConfig) -> Flask:
    return _swap_tokens(pep_app(config), AlgNoneTokens)


def forged_token_accepted(config: PepConfig) -> Flask:
    return _swap_tokens(pep_app(config), UnverifiedTokens)


def other_issuer_trusted(config: PepConfig) -> Flask:
    return _swap_tokens(pep_app(config), FederatedTokens)


# -- x-authorization and the answers ---------------------------------------------------------------


def me_without_x_authorization(config: PepConfig) -> Flask:
    """GET /api/players/v1/me without x-authorization shows a guest player."""
    app = pep_app(config)
    backend = backend_of(app)
    session = backend.session

    def guest_allowed(header: str | None) -> PlayerSession:
        if header is None and request.path == ME:
            now = backend.clock.now()
            return PlayerSession("guest", "guest", DEMO_CLIENT_ID, now, now + timedelta(hours=1))
        return session(header)

    backend.session = guest_allowed  # type: ignore[method-assign]
    return app


def login_answer_cacheable(config: PepConfig) -> Flask:
    app = pep_app(config)

    @app.after_request
    def no_cache_control(response: Response) -> Response:
        if request.path == LOGIN:
            response.headers.pop("Cache-Control", None)
        return response

    return app


def login_without_token(config: PepConfig) -> Flask:
    """The login's 200 carries the token as `token`, not where the contract puts it: every
    check that needs a token is then off contract at setup, which is check_login_issues_token
    (exit 1), never a suite that did not run (D84)."""
    app = pep_app(config)

    @app.after_request
    def move_token(response: Response) -> Response:
        if request.path == LOGIN and request.method == "POST" and response.status_code == 200:
            body = json.loads(response.get_data())
            body["token"] = body.pop("accessToken", None)
            response.set_data(json.dumps(body))
        return response

    return app


def surrogate_client_id_500(config: PepConfig) -> Flask:
    """The PEP as it was before D81: bodies unguarded, so a lone surrogate in clientId reaches
    the client lookup, which cannot encode it for the database: 500."""
    app = pep_app(config)
    app.request_class = Request
    return app


NO_STORE = "check_login_answer_is_not_stored"
SETUP_RULES = "check_not_a_server_error"
"""A generated check, whose auth provider logs in while pytest collects the contract."""

PEP_VARIANTS = [
    # the call to the operator
    PepVariant("client_secret_sent", "the client secret goes to the operator in the body",
               client_secret_sent, "check_client_secret_not_sent_to_operator",
               "check_client_secret_not_sent_to_operator"),
    PepVariant("unknown_client_accepted", "an unknown clientId logs in as the demo client",
               unknown_client_accepted, "check_unknown_client_is_refused",
               "check_unknown_client_is_refused"),
    PepVariant("operator_4xx_retried", "an operator 400/401/404 is asked again",
               operator_4xx_retried, "check_operator_4xx_not_retried",
               "check_operator_4xx_not_retried"),
    PepVariant("operator_401_is_500", "an operator 401 makes the login a 500",
               operator_401_is_500, "check_operator_refusal_is_refused",
               "check_operator_refusal_is_refused"),
    PepVariant("operator_500_is_500", "an operator 500 makes the login a 500, not a 502",
               operator_500_is_500, "check_operator_failure_is_bad_gateway",
               "check_operator_failure_is_bad_gateway"),
    PepVariant("missing_player_id_accepted", "an operator 200 without playerId logs in",
               missing_player_id_accepted, "check_operator_failure_is_bad_gateway",
               "check_operator_failure_is_bad_gateway"),
    PepVariant("operator_wait_unbounded", "the PEP waits 60 s for a silent operator",
               operator_wait_unbounded, "check_operator_timeout_is_bounded",
               "check_operator_timeout_is_bounded"),
    PepVariant("dead_operator_retried", f"a dead operator is retried for {PATIENCE_SECONDS:g} s",
               dead_operator_retried, "check_dead_operator_is_bounded",
               "check_dead_operator_is_bounded"),
    # the token
    PepVariant("exp_not_capped", "the JWT lives an hour past the operator's expiresAt",
               exp_not_capped, "check_token_does_not_outlive_expires_at",
               "check_token_does_not_outlive_expires_at"),
    PepVariant("expired_token_accepted", "a token past its exp opens the player endpoints",
               expired_token_accepted, "check_expired_token_is_refused",
               "check_expired_token_is_refused"),
    # x-authorization
    PepVariant("alg_none_accepted", "an unsigned (alg none) token is trusted",
               alg_none_accepted, "check_alg_none_token_is_401", "check_alg_none_token_is_401"),
    PepVariant("forged_token_accepted", "the token's signature is not verified",
               forged_token_accepted, "check_forged_token_is_401", "check_forged_token_is_401"),
    PepVariant("other_issuer_trusted", "a token of another issuer and audience is trusted",
               other_issuer_trusted, "check_other_audience_token_is_401",
               "check_other_audience_token_is_401"),
    PepVariant("me_without_x_authorization", "GET /api/players/v1/me opens without a token",
               me_without_x_authorization, "check_missing_x_authorization_is_401",
               "check_missing_x_authorization_is_401"),
    PepVariant("surrogate_client_id_500", "a lone surrogate in clientId makes the login a 500",
               surrogate_client_id_500, "check_login_refuses_unencodable_text",
               "check_login_refuses_unencodable_text"),
    # setup: what the checks need from the target before their own request
    PepVariant("login_without_token", "the login's 200 has the token under another name",
               login_without_token, SETUP_RULES, "check_login_issues_token",
               options=("--operations", "GET /api/players/v1/me")),
    PepVariant("login_answer_cacheable", "the login's 200 has no Cache-Control: no-store",
               login_answer_cacheable, NO_STORE, NO_STORE, exit_code=0, level="SHOULD"),
    PepVariant("login_answer_cacheable_strict", "no Cache-Control: no-store, with --strict",
               login_answer_cacheable, NO_STORE, NO_STORE, level="SHOULD",
               options=("--strict",)),
]


# -- answers that carry fields the contract does not declare ---------------------------------------


def expires_at_renamed(config: PepConfig) -> Flask:
    """The login answer says when its token expires under another name (`expires_at`)."""
    app = pep_app(config)

    @app.after_request
    def rename(response: Response) -> Response:
        if request.path != LOGIN or response.status_code != 200:
            return response
        try:
            body = json.loads(response.get_data())
        except ValueError:
            return response
        if isinstance(body, dict) and "expiresAt" in body:
            body["expires_at"] = body.pop("expiresAt")
            response.set_data(json.dumps(body))
        return response

    return app


PEP_VARIANTS.append(
    PepVariant("expires_at_renamed", "the login answer's expiresAt is expires_at",
               expires_at_renamed, "check_answers_declare_every_field",
               "check_answers_declare_every_field",
               options=("--operations", "POST /api/auth/v1/player"))
)


# -- the player's standing (issue 13 item 6) -------------------------------------------------------


def standing_drops_after_an_event(config: PepConfig) -> Flask:
    """The two rank models of issue 13: `/me` and the leaderboard tell the seeded standing, but
    the engine starts a player's first event from level 1 and 0 XP (27,992 XP → 100 XP)."""
    from pepharness.mocks.pep.engine import Standing
    from pepharness.mocks.pep.reads import engine_of

    app = pep_app(config)
    engine = engine_of(app)
    load = engine._load
    first = Standing(0, 1, engine.config.rank_for(1))

    def forgetting(connection: Any, events: Any) -> Any:
        batch = load(connection, events)
        for player in batch.players.values():
            if player.stored_standing is None:
                player.standing = first
        return batch

    engine._load = forgetting  # type: ignore[method-assign]
    return app


STANDING = "check_player_standing_never_decreases"
PEP_VARIANTS.append(
    PepVariant("standing_drops_after_an_event", "a seeded player's first event resets its XP",
               standing_drops_after_an_event, STANDING, STANDING)
)
