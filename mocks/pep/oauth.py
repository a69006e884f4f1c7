"""The Platform gateway's OAuth 2.0 client credentials (RFC 6749 §4.4) on Authlib.

Authlib parses the token request, authenticates the client (`client_secret_basic` or
`client_secret_post`), dispatches the grant and renders RFC 6749 §5.2 errors; this module gives
it the PEP's API clients, the scopes, and a JWT access token on the service clock. The vendor's
JSON shape (`{clientId, clientSecret}` → `{accessToken}`) goes through the same server, as the
equivalent form request.

Resource endpoints are guarded by Authlib's ResourceProtector with a validator that verifies
the JWT (one algorithm, `aud` `pep-platform`, `iss`) against the service clock.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jwt
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from flask import Request, Response

from pepharness.mocks.core.clock import Clock
from pepharness.mocks.pep.oauth_input import token_request_error, unencodable_json_credentials
from pepharness.mocks.pep.store import ApiClient, Store

AUDIENCE = "pep-platform"
REALM = "pep-platform"
ALGORITHM = "HS256"
EVENTS_WRITE = "events:write"
PLAYERS_SYNC = "players:sync"
DATA_READ = "data:read"
SCOPES = (EVENTS_WRITE, PLAYERS_SYNC, DATA_READ)
DEFAULT_LIFETIME_SECONDS = 3600
PLATFORM = "platform"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "client_id", "scope"]


class OAuthClient(ClientMixin):  # type: ignore[misc]
    """An API client as Authlib sees it: client credentials only, on the token endpoint."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The scope asked for (already checked against SCOPES), all of them when none is."""
        asked = scope_to_list(scope) if scope else list(SCOPES)
        return " ".join(s for s in SCOPES if s in asked)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        # A client of the Frontend gateway only authenticates, but may not get a Platform
        # token: RFC 6749 §5.2 unauthorized_client (400).
        return grant_type == "client_credentials" and self.client.allows(PLATFORM)


@dataclass(frozen=True)
class PlatformToken(TokenMixin):  # type: ignore[misc]
    """A verified access token; expiry is judged on the service clock."""

    client_id: str
    scope: str
    issued_at: int
    expires_at: int
    jti: str
    clock: Clock

    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_at - self.issued_at

    def is_expired(self) -> bool:
        return self.clock.now().timestamp() >= self.expires_at

    def is_revoked(self) -> bool:
        return False


class PlatformTokens:
    """Signs and verifies Platform access tokens (HS256, `aud` pep-platform)."""

    def __init__(
        self,
        secret: bytes,
        *,
        clock: Clock,
        issuer: str,
        lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    ) -> None:
        if lifetime_seconds < 1:
            raise ValueError("the Platform token lifetime must be at least one second")
        self.secret = secret
        self.clock = clock
        self.issuer = issuer
        self.lifetime = lifetime_seconds
        # 128 random bits per token, not a seeded sequence: the tokens are not stored, and a
        # sequence restarting with the process would give a later token an earlier one's jti
        # (RFC 7519 §4.1.7 wants them unique).
        # A client sends its token with every event: its signature is checked once. What a
        # token says never changes; whether it has expired is judged on each request.
        self._claims = functools.lru_cache(maxsize=4096)(self._decode)

    def issue(self, client_id: str, scope: str) -> str:
        now = int(self.clock.now().timestamp())
        jti = secrets.token_hex(16)
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": client_id,
            "client_id": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": jti,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM, headers={"typ": "at+jwt"})

    def _decode(self, token: str) -> dict[str, Any] | None:
        """The claims of a token we signed for `pep-platform` (signature, algorithm, audience
        and issuer checked; expiry is not: it depends on the clock)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            return None
        return claims

    def verify(self, token: str) -> PlatformToken | None:
        """The token's claims if we signed it for `pep-platform`; None otherwise (expiry is
        left to `PlatformToken.is_expired`, so that Authlib answers it as invalid_token)."""
        claims = self._claims(token)
        if claims is None:
            return None
        numbers = (claims["iat"], claims["exp"])
        if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
            return None
        if not all(isinstance(claims[k], str) for k in ("client_id", "scope", "jti")):
            return None
        return PlatformToken(
            client_id=claims["client_id"],
            scope=claims["scope"],
            issued_at=claims["iat"],
            expires_at=claims["exp"],
            jti=claims["jti"],
            clock=self.clock,
        )


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """RFC 6749 §4.4, the client authenticated by HTTP Basic or by the form (§2.3.1)."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]


class JsonTokenRequest(OAuth2Request):  # type: ignore[misc]
    """The vendor's JSON token request as the RFC 6749 form request it stands for."""

    def __init__(self, request: Request, form: Mapping[str, str]) -> None:
        super().__init__(method=request.method, uri=request.url, headers=request.headers)
        self._form = dict(form)
        self.payload = BasicOAuth2Payload(self._form)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class TokenServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server with the PEP's clients; every `invalid_client` is 401 with a Basic
    challenge (RFC 6749 §5.2 allows 400 for body credentials; one answer is clearer)."""

    def __init__(self, store: Store, tokens: PlatformTokens) -> None:
        super().__init__(query_client=self._query, save_token=self._save)
        self.store = store
        self.tokens = tokens
        self.scopes_supported = list(SCOPES)
        self.register_grant(ClientCredentials)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=self._access_token,
                expires_generator=lambda client, grant_type: tokens.lifetime,
            ),
        )

    def _query(self, client_id: str) -> OAuthClient | None:
        client = self.store.client(client_id)
        return None if client is None else OAuthClient(client)

    def _save(self, token: Mapping[str, Any], request: Any) -> None:
        """Nothing to keep: the access token is a self-contained JWT."""

    def _access_token(self, client: OAuthClient, grant_type: str, user: Any, scope: str) -> str:
        return self.tokens.issue(client.get_client_id(), scope)

    def create_oauth2_request(self, request: Any) -> Any:
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def handle_response(
        self, status: int, body: Mapping[str, Any], headers: list[tuple[str, str]]
    ) -> Response:
        headers = [(k, v) for k, v in headers if k.lower() != "www-authenticate"]
        if body.get("error") == "invalid_client":
            status = 401
            headers.append(("WWW-Authenticate", f'Basic realm="{REALM}"'))
        return Response(json.dumps(body), status=status, headers=headers,
                        mimetype="application/json")

    def token_response(self, request: Request) -> Response:
        """`POST /api/oauth/v1/token`, the RFC 6749 form or the vendor's JSON shape."""
        basic = request.headers.get("Authorization", "").lower().startswith("basic ")
        refused = token_request_error(request)
        if refused is not None:
            response: Response = self.handle_error_response(None, refused)
            return response
        if request.mimetype == "application/json":
            return self._json_token_response(request, basic)
        if not request.form.get("grant_type"):
            # RFC 6749 §5.2: a missing parameter is invalid_request, not an unsupported grant.
            response = self.handle_error_response(
                None, InvalidRequestError(description="grant_type is required")
            )
            return response
        if "scope" in request.form and not request.form["scope"].strip():
            response = self.handle_error_response(
                None, InvalidScopeError(description="scope, when sent, names a scope")
            )
            return response
        if basic and ("client_secret" in request.form or "client_id" in request.form):
            # RFC 6749 §2.3: a client uses one authentication method per request.
            error = InvalidRequestError(
                description="authenticate with HTTP Basic or with the form, not both"
            )
            response = self.handle_error_response(None, error)
            return response
        response = self.create_token_response()
        return response

    def _json_token_response(self, request: Request, basic: bool) -> Response:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # JSON nested deeper than the parser goes
            body = None
        fields = ("clientId", "clientSecret")
        if not isinstance(body, dict) or not all(
            isinstance(body.get(key), str) and body[key] for key in fields
        ):
            error = InvalidRequestError(
                description="the JSON body needs non-empty string clientId and clientSecret"
            )
            return _camel(self.handle_error_response(None, error))
        unencodable = unencodable_json_credentials(body)
        if unencodable is not None:
            return _camel(self.handle_error_response(None, unencodable))
        if basic:
            error = InvalidRequestError(
                description="authenticate with HTTP Basic or with the body, not both"
            )
            return _camel(self.handle_error_response(None, error))
        scope = body.get("scope")
        if "scope" in body and (not isinstance(scope, str) or not scope.strip()):
            return _camel(self.handle_error_response(
                None, InvalidScopeError(description="scope, when sent, is a string naming scopes")
            ))
        form = {
            "grant_type": "client_credentials",
            "client_id": body["clientId"],
            "client_secret": body["clientSecret"],
        }
        if scope:
            form["scope"] = scope
        return _camel(self.create_token_response(JsonTokenRequest(request, form)))


CAMEL = {"access_token": "accessToken", "token_type": "tokenType", "expires_in": "expiresIn"}


def _camel(response: Response) -> Response:
    """A token answer in the vendor's JSON shape (errors keep RFC 6749's names)."""
    if response.status_code != 200:
        return response
    body = json.loads(response.get_data())
    response.set_data(json.dumps({CAMEL.get(k, k): v for k, v in body.items()}))
    return response


class PlatformValidator(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, tokens: PlatformTokens) -> None:
        super().__init__(realm=REALM)
        self.tokens = tokens

    def authenticate_token(self, token_string: str) -> PlatformToken | None:
        return self.tokens.verify(token_string)


class PlatformGuard(ResourceProtector):  # type: ignore[misc]
    """Authlib's protector; its errors are rendered by `render` (the gateway's error shape)
    with the RFC 6750 challenge Authlib computed."""

    def __init__(self, tokens: PlatformTokens, render: Callable[[OAuth2Error], Response]) -> None:
        super().__init__()
        self.register_token_validator(PlatformValidator(tokens))
        self._render = render

    def raise_error_response(self, error: OAuth2Error) -> None:
        from werkzeug.exceptions import HTTPException

        raise HTTPException(response=self._render(error))
