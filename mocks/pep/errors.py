"""The PEP Frontend gateway's errors, rendered as `{"error": code, "message": text}` (D43)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import has_request_context, request

from pepharness.mocks.core import errors
from pepharness.mocks.core.errors import CodedError, ErrorFamily
from pepharness.mocks.core.errors import render as render  # every shape's renderer

REALM = "pep-frontend"
TOKEN_PATH = "/api/oauth/v1/token"


class PepError(CodedError):
    """Base of every error the reference PEP answers; `code` is the body's `error`."""


class InvalidRequest(PepError):
    status = 400
    code = "invalid_request"
    message = "the body must be a JSON object with non-empty string identityToken and clientId"

    def document(self) -> dict[str, Any]:
        if type(self) is InvalidRequest and has_request_context() and request.path == TOKEN_PATH:
            # A request refused before Authlib sees it (text that cannot be encoded, D81) still
            # gets the token endpoint's RFC 6749 §5.2 shape.
            return {"error": self.code, "error_description": self.message}
        return super().document()


class InvalidClient(PepError):
    # 401, as RFC 6749 §5.2 answers an unknown client: the clientId is the API client's
    # credential, and a 400 would tell it to fix a request that is well formed (D44).
    status = 401
    code = "invalid_client"
    message = "unknown clientId, or the client may not use the Frontend gateway"
    headers: Mapping[str, str] = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


class IdentityTokenMalformed(PepError):
    status = 400
    code = "identity_token_malformed"
    message = "the operator refused the identity token as an invalid parameter"


class IdentityTokenInvalid(PepError):
    status = 401
    code = "identity_token_invalid"
    message = "the operator says the identity token is invalid or expired"
    headers: Mapping[str, str] = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


class IdentityTokenExpired(IdentityTokenInvalid):
    code = "identity_token_expired"
    message = "the operator's expiresAt for this identity token has passed"


class PlayerNotFound(PepError):
    status = 404
    code = "player_not_found"
    message = "the operator knows no player for this identity token"


class OperatorError(PepError):
    status = 502
    code = "operator_error"
    message = "the operator's identity endpoint failed"


class OperatorBadResponse(OperatorError):
    code = "operator_bad_response"
    message = "the operator's identity endpoint answered something the contract does not allow"


class OperatorTimeout(PepError):
    status = 504
    code = "operator_timeout"
    message = "the operator's identity endpoint did not answer in time"


class OperatorUnreachable(OperatorTimeout):
    code = "operator_unreachable"
    message = "the operator's identity endpoint could not be reached"


class MissingToken(PepError):
    # RFC 6750 §3.1: no error code in the challenge when no credential was sent.
    status = 401
    code = "missing_token"
    message = "the x-authorization header is required"
    headers: Mapping[str, str] = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}


class InvalidAccessToken(PepError):
    status = 401
    code = "invalid_token"
    message = "the x-authorization token is invalid, expired or revoked"
    headers: Mapping[str, str] = {
        "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'
    }


class NotFound(errors.NotFound, PepError):
    code = "not_found"


class MethodNotAllowed(errors.MethodNotAllowed, PepError):
    code = "method_not_allowed"


class InternalError(errors.InternalError, PepError):
    pass


PLATFORM_REALM = "pep-platform"


class InvalidEvent(PepError):
    """A Platform request body with invalid fields; `problems` lists them."""

    status = 400
    code = "invalid_request"
    message = "the body has invalid fields"

    def __init__(self, problems: list[dict[str, str]], message: str | None = None) -> None:
        super().__init__(message)
        self.problems = problems

    def document(self) -> dict[str, Any]:
        return {**super().document(), "errors": self.problems}


class PlatformAuthError(PepError):
    """A Platform Bearer token missing, invalid or short of scope (RFC 6750 §3.1): the status
    and challenge are Authlib's, the body the gateway's."""

    status = 401
    code = "invalid_token"
    message = "the access token is missing, invalid or expired"


class UnsupportedEncoding(PepError):
    status = 415
    code = "unsupported_content_encoding"
    message = "Content-Encoding must be gzip, br or identity"


class PayloadTooLarge(PepError):
    status = 413
    code = "payload_too_large"
    message = "the body is over 15 MB (after decompression)"


class RateLimited(PepError):
    status = 429
    code = "rate_limited"
    message = "too many data-fetch requests: at most 100 per minute"


class TaskNotFound(PepError):
    status = 404
    code = "not_found"
    message = "no migration task with this id"


ERRORS = ErrorFamily(
    PepError,
    NotFound,
    MethodNotAllowed,
    InternalError,
    bad_request=InvalidRequest,
    too_large="the body is too large",
)
