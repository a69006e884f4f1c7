"""The `jwt-auth` session token: an HS256 JWT that lives exactly 20 minutes on the service clock."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import jwt

TOKEN_LIFETIME_SECONDS = 20 * 60
ISSUER = "sinatra"
AUDIENCE = "sinatra"
VERIFIED_CACHE_SIZE = 4096
ISSUED_CACHE_SIZE = 256


class InvalidToken(Exception):
    """The token is missing, malformed, forged, of another audience or expired."""


@dataclass(frozen=True)
class TokenIssuer:
    """Signs and verifies session tokens; `now` is always the service's clock.

    A token's signature and claims are checked once and remembered (a pure function of the
    token and the key); its expiry is checked against `now` on every use.
    """

    secret: bytes
    _verified: Callable[[str], tuple[str, float]] = field(init=False, repr=False, compare=False)

    _signed: Callable[[str, int], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cached = functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._verify)
        object.__setattr__(self, "_verified", cached)
        signed = functools.lru_cache(maxsize=ISSUED_CACHE_SIZE)(self._sign)
        object.__setattr__(self, "_signed", signed)

    def issue(self, subject: str, now: datetime) -> str:
        # A token is a pure function of (subject, second of issue): logins of one user within
        # one second of the service clock get the same token, signed once (D179).
        return self._signed(subject, int(now.timestamp()))

    def _sign(self, subject: str, issued_at: int) -> str:
        claims = {
            "sub": subject,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": issued_at,
            "exp": issued_at + TOKEN_LIFETIME_SECONDS,
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def subject(self, token: str, now: datetime) -> str:
        """The token's subject, if it is ours and unexpired at `now`."""
        subject, expires = self._verified(token)
        if now.timestamp() >= expires:
            raise InvalidToken("token expired")
        return subject

    def _verify(self, token: str) -> tuple[str, float]:
        """(subject, expiry) of a token we signed, whatever the time."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],  # never "none", never a key-confusion algorithm
                audience=AUDIENCE,
                issuer=ISSUER,
                # Expiry is checked against the service clock, which /__admin/clock moves;
                # PyJWT would read the wall clock, for `exp` and for `iat` "in the future" alike.
                options={
                    "require": ["sub", "iat", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as error:
            raise InvalidToken(str(error)) from None
        expires, subject = claims["exp"], claims["sub"]
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            raise InvalidToken("exp is not a number")
        if not isinstance(subject, str):
            raise InvalidToken("subject is not a string")
        return subject, float(expires)
