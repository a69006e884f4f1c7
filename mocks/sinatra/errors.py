"""Sinatra's errors: each a status and the seed's own text, rendered as `{"errMsg": …}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pepharness.mocks.core import errors
from pepharness.mocks.core.errors import ApiError, ErrorFamily
from pepharness.mocks.core.errors import render as render  # every shape's renderer


class SinatraError(ApiError):
    """Base of every error the Sinatra mock answers."""

    seed_text = True  # the seed's texts, exactly: text that cannot be encoded is "Bad Request"

    def document(self) -> dict[str, Any]:
        return {"errMsg": self.message}


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


class NotFound(errors.NotFound, SinatraError):
    message = "not found"


class MethodNotAllowed(errors.MethodNotAllowed, SinatraError):
    pass


class InvalidParameters(SinatraError):
    status = 422
    message = "Invalid parameters"


class SlowDown(SinatraError):
    status = 429
    message = "slow down"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.headers = {"Retry-After": str(retry_after)}


class InternalError(errors.InternalError, SinatraError):
    pass


# Too large a body is a bad request too, with the seed's text: 400 is what the operations document.
ERRORS = ErrorFamily(
    SinatraError, NotFound, MethodNotAllowed, InternalError, bad_request=BadRequest
)
