"""The player's access token: an HS256 JWT for the `pep-frontend` audience, on the service clock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

AUDIENCE = "pep-frontend"
DEFAULT_ISSUER = "pep-harness"
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "client_id"]


class InvalidAccessToken(Exception):
    """The token is malformed, forged, of another issuer or audience, or expired."""


def seed_secret(seed: int) -> bytes:
    """The default signing key: derived from the seed, so the same seed signs the same tokens."""
    return hashlib.sha256(f"pepharness-pep-jwt:{seed}".encode()).digest()


@dataclass(frozen=True)
class AccessClaims:
    """The claims of one of our tokens that passed every check."""

    jti: str
    player_id: str
    client_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AccessTokens:
    """Signs and verifies access tokens; expiry is checked against the `now` given, never
    the wall clock (RFC 8725: one algorithm allowed, `aud` and `iss` checked)."""

    secret: bytes
    issuer: str = DEFAULT_ISSUER
    leeway_seconds: int = 0

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_BYTES:
            # RFC 7518 §3.2: an HS256 key has at least 256 bits.
            raise ValueError(f"the signing key needs at least {MIN_SECRET_BYTES} bytes")
        if self.leeway_seconds < 0:
            raise ValueError("the leeway cannot be negative")

    def issue(self, claims: AccessClaims) -> str:
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": claims.player_id,
            "client_id": claims.client_id,
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
            "jti": claims.jti,
        }
        return jwt.encode(payload, self.secret, algorithm=ALGORITHM, headers={"typ": "at+jwt"})

    def verify(self, token: str, now: datetime) -> AccessClaims:
        """The claims of `token` if we signed it for `pep-frontend` and it is unexpired at
        `now` (with the leeway); `InvalidAccessToken` otherwise."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],  # never "none", never a key-confusion algorithm
                audience=AUDIENCE,
                issuer=self.issuer,
                # The service clock, which /__admin/clock moves, decides expiry, not PyJWT's
                # wall clock.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as error:
            raise InvalidAccessToken(str(error)) from None
        expires, issued = claims["exp"], claims["iat"]
        for name, value in (("exp", expires), ("iat", issued)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidAccessToken(f"{name} is not a number")
        for name in ("sub", "jti", "client_id"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise InvalidAccessToken(f"{name} is not a non-empty string")
        if now.timestamp() >= expires + self.leeway_seconds:
            raise InvalidAccessToken("the token has expired")
        return AccessClaims(
            jti=claims["jti"],
            player_id=claims["sub"],
            client_id=claims["client_id"],
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )
