"""The operator identity endpoint's errors, rendered as `{"error": code, "message": text}` (D34)."""

from __future__ import annotations

from pepharness.mocks.core import errors
from pepharness.mocks.core.errors import CodedError, ErrorFamily
from pepharness.mocks.core.errors import render as render  # every shape's renderer


class OperatorError(CodedError):
    """Base of every error the operator mock answers; `code` is the body's `error`."""

    code = "internal_server_error"


class InvalidParameter(OperatorError):
    status = 400
    code = "invalid_parameter"
    message = "identityToken is required: a non-empty string in a JSON object"


class InvalidToken(OperatorError):
    status = 401
    code = "invalid_token"
    message = "the identity token is invalid or expired"


class PlayerNotFound(OperatorError):
    status = 404
    code = "not_found"
    message = "no player for this identity token"


class NotFound(errors.NotFound, OperatorError):
    code = "not_found"


class MethodNotAllowed(errors.MethodNotAllowed, OperatorError):
    code = "method_not_allowed"


class InternalError(errors.InternalError, OperatorError):
    pass


FORCED: dict[int, type[OperatorError]] = {
    400: InvalidParameter,
    401: InvalidToken,
    404: PlayerNotFound,
    500: InternalError,
}
"""The error a token programmed with `status` answers."""

ERRORS = ErrorFamily(
    OperatorError,
    NotFound,
    MethodNotAllowed,
    InternalError,
    bad_request=InvalidParameter,
    too_large="the body is too large",
)
