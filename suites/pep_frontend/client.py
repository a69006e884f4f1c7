"""The PEP Frontend gateway seen by the checks: logins, the player endpoints, tokens to try."""

from __future__ import annotations

import os
import time
from typing import Any

import jwt
import requests

from pepharness.suites import documents
from pepharness.suites.http import Target
from pepharness.suites.jwts import b64url, jwt_claims
from pepharness.suites.options import SuiteOptions

CONTRACT = "pep-frontend"
LOGIN = "/api/auth/v1/player"
LOGIN_OPERATION = f"POST {LOGIN}"
SESSION = "/api/auth/v1/session"
HEADER = "x-authorization"


def never_limited(request: requests.PreparedRequest) -> bool:
    return False


def body_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def player_operations() -> list[str]:
    """Every operation the contract puts behind x-authorization, as `GET /path` labels; the
    session's DELETE last (it ends the session)."""
    document = documents.load(CONTRACT)
    default: list[dict[str, Any]] = document.get("security") or []
    labels = []
    for method, template, operation in documents.operations(CONTRACT):
        requirements: list[dict[str, Any]] = operation.get("security", default)
        if any("xAuthorization" in requirement for requirement in requirements):
            labels.append(f"{method} {template}")
    return sorted(labels, key=lambda label: label.startswith("DELETE"))


def access_token(response: requests.Response) -> str | None:
    body = body_of(response)
    token = body.get("accessToken") if isinstance(body, dict) else None
    return token if isinstance(token, str) and token else None


def other_audience(token: str) -> str:
    """The token's claims for another audience (a Sinatra `jwt-auth` token's), signed with a
    key of its own: what another service of the casino would hold."""
    claims = {**(jwt_claims(token) or {}), "aud": "sinatra", "iss": "sinatra"}
    claims.setdefault("sub", "operator@example.com")
    now = int(time.time())
    claims.setdefault("iat", now)
    claims.setdefault("exp", now + 1200)
    return jwt.encode(claims, os.urandom(32), algorithm="HS256")


GARBAGE = ("not-a-token", "Bearer ", "null", b64url(os.urandom(48)), "a.b.c")


class Pep:
    """The PEP under test: one per test process."""

    def __init__(self, options: SuiteOptions) -> None:
        if options.base_url is None:
            raise ValueError("no base URL")
        self.options = options
        self.target = Target(options.base_url, window=None, is_limited=never_limited)
        if options.client_secret:
            self.target.secrets.hide(options.client_secret, "$PEPHARNESS_CLIENT_SECRET")

    def login(
        self, identity_token: str, client_id: str | None = None, **kwargs: Any
    ) -> requests.Response:
        body = {
            "identityToken": identity_token,
            "clientId": self.options.client_id if client_id is None else client_id,
        }
        return self.target.request("POST", LOGIN, json=body, **kwargs)

    def call(self, operation: str, token: str | None) -> requests.Response:
        """`operation` (`GET /api/players/v1/me`) with `token` in x-authorization (none: no
        header)."""
        method, path = operation.split(" ", 1)
        headers = {HEADER: token} if token is not None else {}
        return self.target.request(method, path, headers=headers)

    def curl(self, response: requests.Response) -> str:
        return self.target.curl(response)
