"""The token request's input checks, run before Authlib: Basic credentials that can be read and
parameters sent once (RFC 6749 §2.3.1, §3.2, §5.2)."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError
from flask import Request

SAFE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def malformed_basic(authorization: str) -> OAuth2Error | None:
    """invalid_client when a Basic header cannot be read as `base64(id ":" secret)` in UTF-8
    (RFC 7617 §2, RFC 6749 §2.3.1); None when it can, or when it is not Basic."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    # Werkzeug hands header bytes over as Latin-1: anything past ASCII was never base64.
    try:
        decoded = base64.b64decode(credentials.strip().encode("ascii"), validate=True)
        text = decoded.decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError, binascii.Error):
        return InvalidClientError(
            description="the Basic credentials are not base64 of UTF-8 text"
        )
    client_id, colon, secret = text.partition(":")
    if not colon or not client_id:
        return InvalidClientError(
            description="the Basic credentials are not client_id:client_secret"
        )
    # RFC 6749 §2.3.1 form-encodes both before base64: they must come out as UTF-8 text too.
    for part in (client_id, secret):
        if "\ufffd" in unquote(part, errors="replace") and "\ufffd" not in part:
            return InvalidClientError(
                description="the Basic credentials' percent-encoding is not UTF-8"
            )
    return None


def repeated_parameter(request: Request) -> OAuth2Error | None:
    """invalid_request when a parameter comes more than once, in the query or the form
    (RFC 6749 §3.2: 'parameters MUST NOT be included more than once')."""
    for source, where in ((request.args, "query"), (request.form, "form")):
        repeated = sorted(name for name, values in source.lists() if len(values) > 1)
        if repeated:
            # error_description is limited to printable ASCII without '"' and '\\' (§5.2):
            # a name outside it is not echoed.
            named = [name for name in repeated if SAFE_NAME.fullmatch(name)] or ["a parameter"]
            return InvalidRequestError(
                description=f"{', '.join(named)} sent more than once in the {where} "
                "(RFC 6749 section 3.2)"
            )
    return None


def unencodable_json_credentials(body: dict[str, object]) -> OAuth2Error | None:
    """invalid_request when the JSON shape's strings hold what UTF-8 cannot encode (a lone
    surrogate written as `\\ud800`): JSON parses it, no client id or secret can be it."""
    for key in ("clientId", "clientSecret", "scope"):
        value = body.get(key)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return InvalidRequestError(
                    description=f"{key} is not text that UTF-8 can encode (a lone surrogate)"
                )
    return None


def token_request_error(request: Request) -> OAuth2Error | None:
    """The first thing wrong with the token request's input, before Authlib reads it."""
    return malformed_basic(request.headers.get("Authorization", "")) or repeated_parameter(
        request
    )
