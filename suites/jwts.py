"""Reading a token the way a client may: a JWT's header and claims without its key."""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["b64url", "jwt_claims", "jwt_header"]


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
