"""Sinatra's errors: each a status and the seed's own text, rendered as `{"errMsg": …}`."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Response, jsonify

from pepharness.mocks.core.errors import ApiError


class SinatraError(ApiError):
    """Base of every error the Sinatra mock answers."""

    seed_text = True  # the seed's texts, exactly: text that cannot be encoded is "Bad Request"


class BadCredentials(SinatraError):
    # The seed answers a failed login with 400, not 401.
    status = 400
    message = "Username or Password incorrect"


class BadRequest(SinatraError):
    status = 400
    message = "Bad Request"


class Unauthorized(SinatraError):
    status = 401
    message = "unauthorized"


class BasicUnauthorized(Unauthorized):
    """A missing or wrong Basic credential on the paginated history (RFC 7617 challenge)."""

    headers: Mapping[str, str] = {"WWW-Authenticate": 'Basic realm="sinatra"'}


class Forbidden(SinatraError):
    status = 403
    message = "forbidden_operation"


class HistoryForbidden(Forbidden):
    # The paginated history's own table says "forbidden", unlike every other endpoint.
    message = "forbidden"


class NotFound(SinatraError):
    status = 404
    message = "not found"


class MethodNotAllowed(SinatraError):
    status = 405
    message = "method not allowed"


class InvalidParameters(SinatraError):
    status = 422
    message = "Invalid parameters"


class SlowDown(SinatraError):
    status = 429
    message = "slow down"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(retry_after)}


class InternalError(SinatraError):
    status = 500
    message = "internal server error"


def render(error: ApiError) -> Response:
    response = jsonify(errMsg=error.message)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response
