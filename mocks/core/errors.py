"""Errors are data: each API declares its errors as classes and one renderer answers them all.

A mock subclasses `ApiError` into its own hierarchy (status and text on each class; the base's
`document()` is the API's body shape: Sinatra's `{"errMsg": …}`, `CodedError`'s
`{"error": code, "message": …}`), specialises the three errors every API answers (`NotFound`,
`MethodNotAllowed`, `InternalError`, here) and declares them once as an `ErrorFamily`, which its
app installs. From then on its views raise, never build, error responses; Flask's own HTTP
errors (unknown route, wrong method, a body that is not JSON, a body too large) and any
unexpected exception come out in the same shape — never HTML. Several shapes can share an app,
each owning a path prefix (`/__admin` answers `{"error": …}` while the API's paths answer its
own shape); the longest prefix wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug import exceptions as http
from werkzeug.exceptions import HTTPException, InternalServerError

from pepharness.mocks.core.text import UnencodableText

EXTENSION = "pepharness.errors"
_UNEXPECTED = "pepharness_unexpected_error"


class ApiError(Exception):
    """An error an API answers on purpose: its status, its text, and any headers.

    Subclasses set `status`, `message` and (optionally) `headers` as class attributes; an
    instance may override the message, or the headers (e.g. a computed `Retry-After`).
    """

    status: int = 500
    message: str = "internal server error"
    headers: Mapping[str, str] = {}
    seed_text: bool = False
    """True when the vendor fixes the text: a refusal's own description (e.g. which part
    holds text that cannot be encoded) never replaces it."""

    def __init__(
        self, message: str | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        if message is not None:
            self.message = message
        if headers:
            self.headers = {**self.headers, **headers}
        super().__init__(self.message)

    def document(self) -> dict[str, Any]:
        """The body's JSON; each API's base overrides it with its own shape."""
        return {"error": self.message}


class CodedError(ApiError):
    """The `{"error": code, "message": text}` shape (the operator's D34, the PEP's D43)."""

    code: str = "internal_error"

    def document(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


class NotFound(ApiError):
    """No such route; an API specialises it (`class NotFound(errors.NotFound, ItsError)`)."""

    status = 404
    message = "no such route"


class MethodNotAllowed(ApiError):
    """A route that does not take this method (werkzeug's `Allow` header is kept)."""

    status = 405
    message = "method not allowed"


class InternalError(ApiError):
    """An unexpected exception: the traceback goes to the log, never to the client."""

    status = 500
    message = "internal server error"


def render(error: ApiError) -> Response:
    """`error` as its API's JSON document, with its status and headers."""
    response = jsonify(error.document())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


ErrorFactory = Callable[[], ApiError]
Render = Callable[[ApiError], Response]


@dataclass(frozen=True)
class ErrorFamily:
    """One API's errors: its base, the errors answering an unknown route, a wrong method and an
    unexpected exception, and what a body werkzeug refuses becomes.

    `bad_request` answers a body werkzeug cannot read (400), and a body over
    MAX_CONTENT_LENGTH (413) too when `bad_request` is given: every API documents 400 for it,
    with `too_large` as the text (None keeps the class's own, as Sinatra's seed text does).
    Without `bad_request` (the admin API), werkzeug's status and name are kept.
    """

    base: type[ApiError]
    not_found: ErrorFactory
    method_not_allowed: ErrorFactory
    internal: ErrorFactory
    bad_request: type[ApiError] | None = None
    too_large: str | None = None

    def http_errors(self) -> dict[int, ErrorFactory]:
        bad_request = self.bad_request
        if bad_request is None:
            return {}
        too_large = self.too_large

        def body_too_large() -> ApiError:
            return bad_request(too_large)

        return {400: bad_request, 413: body_too_large}

    def install(
        self, app: Flask, *, prefix: str = "", logger: logging.Logger | None = None
    ) -> None:
        """Answer every error of the paths under `prefix` (all by default) in this family."""
        install_error_renderer(
            app,
            self.base,
            render,
            not_found=self.not_found,
            method_not_allowed=self.method_not_allowed,
            internal=self.internal,
            http_errors=self.http_errors(),
            prefix=prefix,
            logger=logger,
        )


@dataclass(frozen=True)
class ErrorShape:
    """How the paths under `prefix` answer errors: `base`'s hierarchy through `render`."""

    prefix: str
    base: type[ApiError]
    render: Render
    not_found: ErrorFactory
    method_not_allowed: ErrorFactory
    internal: ErrorFactory
    http_errors: Mapping[int, ErrorFactory] = field(default_factory=dict)

    def owns(self, path: str) -> bool:
        prefix = self.prefix.rstrip("/")
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def from_http(self, error: HTTPException) -> ApiError:
        """Werkzeug's HTTP error as one of this API's errors, keeping headers such as `Allow`."""
        code = error.code or 500
        made: ApiError
        if code in self.http_errors:
            made = self.http_errors[code]()
        elif isinstance(error, http.NotFound):
            made = self.not_found()
        elif isinstance(error, http.MethodNotAllowed):
            made = self.method_not_allowed()
        elif code >= 500:
            made = self.internal()
        else:
            made = self.base(error.name)
            made.status = code
        if isinstance(error, UnencodableText) and error.description and not made.seed_text:
            made.message = error.description
        extra = {
            name: value
            for name, value in error.get_headers()
            if name.lower() != "content-type" and name not in made.headers
        }
        if extra:
            made.headers = {**made.headers, **extra}
        return made


@dataclass
class _Shapes:
    logger: logging.Logger
    shapes: list[ErrorShape] = field(default_factory=list)

    def for_path(self, path: str) -> ErrorShape | None:
        owning = [shape for shape in self.shapes if shape.owns(path)]
        return max(owning, key=lambda shape: len(shape.prefix.rstrip("/")), default=None)

    def for_error(self, error: ApiError, preferred: ErrorShape | None) -> ErrorShape | None:
        if preferred is not None and isinstance(error, preferred.base):
            return preferred
        return next((shape for shape in self.shapes if isinstance(error, shape.base)), None)


def install_error_renderer(
    app: Flask,
    base: type[ApiError],
    render: Render,
    *,
    not_found: ErrorFactory,
    method_not_allowed: ErrorFactory,
    internal: ErrorFactory,
    http_errors: Mapping[int, ErrorFactory] | None = None,
    prefix: str = "",
    logger: logging.Logger | None = None,
) -> None:
    """Answer every error of the paths under `prefix` (all paths by default) with `render`.

    `base`: the root of the API's error classes; `not_found`, `method_not_allowed`, `internal`:
    factories (an error class will do) for unknown routes, wrong methods and unexpected
    exceptions; `http_errors`: factories for other werkzeug statuses (a status not listed
    becomes a `base` carrying werkzeug's status and name, e.g. 413 "Request Entity Too Large").
    Unexpected exceptions are logged with their traceback (to `logger`, else the app's) and
    kept for the request journal (`unexpected_error()`).
    """
    shapes = app.extensions.get(EXTENSION)
    if shapes is None:
        shapes = _Shapes(logger or app.logger)
        app.extensions[EXTENSION] = shapes

        def handle(error: Exception) -> ResponseReturnValue:
            return _handle(shapes, error)

        app.register_error_handler(Exception, handle)
    elif logger is not None:
        shapes.logger = logger
    if any(shape.prefix.rstrip("/") == prefix.rstrip("/") for shape in shapes.shapes):
        raise ValueError(f"errors under {prefix or '/'!r} already have a renderer")
    shapes.shapes.append(
        ErrorShape(
            prefix, base, render, not_found, method_not_allowed, internal, dict(http_errors or {})
        )
    )


def unexpected_error() -> BaseException | None:
    """The unexpected exception the current request ended with, if any."""
    error: Any = g.get(_UNEXPECTED)
    return error if isinstance(error, BaseException) else None


def _handle(shapes: _Shapes, error: Exception) -> ResponseReturnValue:
    shape = shapes.for_path(request.path)
    if isinstance(error, ApiError):
        owner = shapes.for_error(error, shape)
        if owner is not None:
            return owner.render(error)
        return _unexpected(shapes, shape, error)
    if isinstance(error, InternalServerError) and error.original_exception is not None:
        return _unexpected(shapes, shape, error.original_exception)
    if isinstance(error, HTTPException):
        if shape is None or error.code is None or error.code < 400:
            return error
        return shape.render(shape.from_http(error))
    return _unexpected(shapes, shape, error)


def _unexpected(
    shapes: _Shapes, shape: ErrorShape | None, error: BaseException
) -> ResponseReturnValue:
    setattr(g, _UNEXPECTED, error)
    shapes.logger.error(
        "unexpected %s answering %s %s",
        type(error).__name__,
        request.method,
        request.path,
        exc_info=error,
    )
    if shape is None:
        return InternalServerError()
    return shape.render(shape.internal())
