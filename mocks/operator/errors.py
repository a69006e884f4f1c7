"""The operator identity endpoint's errors, rendered as `{"error": code, "message": text}` (D34)."""

from __future__ import annotations

from flask import Response, jsonify

from pepharness.mocks.core.errors import ApiError


class OperatorError(ApiError):
    """Base of every error the operator mock answers; `code` is the body's `error`."""

    code: str = "internal_server_error"


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


class NotFound(OperatorError):
    status = 404
    code = "not_found"
    message = "no such route"


class MethodNotAllowed(OperatorError):
    status = 405
    code = "method_not_allowed"
    message = "method not allowed"


class InternalError(OperatorError):
    status = 500
    code = "internal_server_error"
    message = "internal server error"


FORCED: dict[int, type[OperatorError]] = {
    400: InvalidParameter,
    401: InvalidToken,
    404: PlayerNotFound,
    500: InternalError,
}
"""The error a token programmed with `status` answers."""


def render(error: ApiError) -> Response:
    code = error.code if isinstance(error, OperatorError) else "error"
    response = jsonify(error=code, message=error.message)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response
