"""Reading a token the way a client may (a JWT's header and claims without its key), and the
broken copies of one that a service must refuse."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import jwt

__all__ = ["altered_signature", "b64url", "forged", "jwt_claims", "jwt_header", "unsigned"]


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of `token` if it is a JWT (three base64url parts, a JSON object in the
    middle), None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def jwt_header(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        decoded = json.loads(_b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(token: str) -> str:
    """The token's claims signed with a key the service has never seen; for an opaque token, the
    token with its last characters changed."""
    claims = jwt_claims(token)
    if claims is None:
        tail = "A" if token[-1:] != "A" else "B"
        return token[:-4] + tail * 4
    header = jwt_header(token) or {}
    algorithm = str(header.get("alg", "HS256"))
    algorithm = algorithm if algorithm in ("HS256", "HS384", "HS512") else "HS256"
    extra = {k: v for k, v in header.items() if k not in ("alg", "typ")}
    return jwt.encode(claims, os.urandom(64), algorithm=algorithm, headers=extra or None)


def altered_signature(token: str) -> str | None:
    """The JWT with one character of its signature changed; None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[2]) < 2:
        return None
    signature = parts[2]
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    return ".".join([parts[0], parts[1], signature[:middle] + swapped + signature[middle + 1:]])


def unsigned(token: str) -> str:
    """The token's claims (or plausible ones) with `alg: none` and no signature."""
    claims = jwt_claims(token) or {"sub": "131918", "iat": int(time.time()),
                                   "exp": int(time.time()) + 3600}
    header = {**(jwt_header(token) or {}), "alg": "none"}
    return ".".join(
        [
            b64url(json.dumps(header, separators=(",", ":")).encode()),
            b64url(json.dumps(claims, separators=(",", ":")).encode()),
            "",
        ]
    )
