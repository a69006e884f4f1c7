"""Text that cannot be encoded is bad input, on every mock (issue 13 item 3, D81-D83).

A lone surrogate (raw, or a JSON `\\ud800` escape) or bytes that are not UTF-8 cannot be stored,
logged or answered as text, nor can a NUL in a header, a query or a form. `install_text_guard`
(called by `install_core`) makes every app refuse them with a 400 in the shape of the API owning
the path (its `install_error_renderer`), wherever they come:

- header values (before any view), except the credential headers (`Authorization`,
  `x-authorization`, `jwt-auth`): each API's own auth code answers bad credentials (D82);
- query names and values, read from the raw query string before werkzeug's lenient decoding
  turns bad bytes into U+FFFD (before any view);
- form bodies (`application/x-www-form-urlencoded`), names and values, raw as well;
- JSON bodies, at any depth, keys and values (lone surrogates; a NUL is a valid JSON string,
  which the contracts admit, D83); a body that is not JSON at all stays the view's
  business (its own 400). Bodies are checked when the view reads them, not before, so each
  route's own body limit still applies first; a gzip, deflate or br body is checked decoded
  (one that does not decode is the route's own to refuse) (D83).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Request, request
from werkzeug.exceptions import BadRequest

from pepharness.mocks.core.encoding import BodyTooLarge, UndecodableBody, UnknownCoding, decode_body

EXTENSION = "pepharness.text"
CREDENTIAL_HEADERS = frozenset({"HTTP_AUTHORIZATION", "HTTP_X_AUTHORIZATION", "HTTP_JWT_AUTH"})
WHAT = "text that cannot be encoded (a lone surrogate, NUL or bytes that are not UTF-8)"

_SURROGATE = re.compile("[\ud800-\udfff]")
# Only an escape can put a surrogate into valid JSON from valid UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_FORM = "application/x-www-form-urlencoded"
_BODY_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
DECODED_LIMIT = 16 * 1024 * 1024
"""The most a compressed body is decoded to for the check when the route sets no limit."""


class UnencodableText(BadRequest):
    """400: `where` (e.g. "the query", "header X-Foo") holds text that cannot be encoded.
    Each API's error shape renders it with this description as its message."""

    def __init__(self, where: str) -> None:
        super().__init__(f"{where} holds {WHAT}")


def is_bad_bytes(raw: bytes) -> bool:
    """Whether `raw` is not UTF-8 (encoded surrogates included) or holds a NUL."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return "\x00" in text


def bad_urlencoded(raw: bytes) -> bool:
    """Whether a query string or form body has a name or value that is bad once decoded."""
    if raw.isascii() and b"%" not in raw and b"\x00" not in raw:
        return False  # the common case: nothing to decode, nothing that cannot be encoded
    for pair in raw.split(b"&"):
        for part in pair.split(b"=", 1):
            if is_bad_bytes(unquote_to_bytes(part.replace(b"+", b" "))):
                return True
    return False


def bad_json(raw: bytes, *, declared: bool) -> bool:
    """Whether a JSON body holds a lone surrogate (an escape of one half of a pair); a body
    that is not JSON is not judged here, except that one declared JSON (or text) must be UTF-8
    (RFC 8259 §8.1). A `\\u0000` escape is a NUL the body may carry: a valid JSON string the
    contracts' schemas admit, and one every mock stores and answers (D83)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return declared
    if _SURROGATE_ESCAPE.search(text) is None:
        return False
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return _holds_bad_text(document)


def _holds_bad_text(document: Any) -> bool:
    pending: list[Any] = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def bad_header(environ: dict[str, Any]) -> str | None:
    """The name of the first header (credentials aside) whose value is bad, if any."""
    for key, value in environ.items():
        if not isinstance(value, str) or (value.isascii() and "\x00" not in value):
            continue  # the common case: ASCII without a NUL is good text
        if not (key.startswith("HTTP_") or key in _BODY_HEADERS) or key in CREDENTIAL_HEADERS:
            continue
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogatepass")
        if is_bad_bytes(raw):
            name = key.removeprefix("HTTP_").replace("_", "-").title()
            return name
    return None


def _decoded(raw: bytes, coding: str, limit: int) -> bytes | None:
    """The body before its `Content-Encoding`; None when the guard leaves it to the route: an
    unknown coding, data that does not decode, or more than `limit` bytes once decoded (the
    route answers those with its own 4xx)."""
    try:
        return decode_body(raw, coding, limit)
    except (UnknownCoding, UndecodableBody, BodyTooLarge):
        return None


class TextCheckedRequest(Request):
    """Flask's request, whose body is checked for bad text the first time a view reads it."""

    _text_checked = False

    def get_data(self, *args: Any, **kwargs: Any) -> Any:
        if not self._text_checked:
            self._text_checked = True
            self._check_body()
        return super().get_data(*args, **kwargs)

    def _load_form_data(self) -> None:
        if not self._text_checked and self.mimetype == _FORM:
            self.get_data(cache=True, parse_form_data=False)
        super()._load_form_data()

    def _check_body(self) -> None:
        coding = (self.environ.get("HTTP_CONTENT_ENCODING") or "identity").strip().lower()
        data = super().get_data(cache=True, parse_form_data=False)
        raw: bytes | None
        if coding == "identity" and len(data) <= DECODED_LIMIT:
            # Nothing to decode, and within any limit: a body read is never longer than the
            # route's `max_content_length` (werkzeug refuses it first), so no need to ask.
            raw = data
        else:
            raw = _decoded(data, coding, self.max_content_length or DECODED_LIMIT)
        if not raw:
            return
        mimetype = self.mimetype
        if mimetype == _FORM:
            bad = bad_urlencoded(raw)
        else:
            declared = mimetype.endswith(("/json", "+json")) or mimetype.startswith("text/")
            bad = bad_json(raw, declared=declared)
        if bad:
            raise UnencodableText("the body")


def install_text_guard(app: Flask) -> None:
    """Refuse bad text in `app`'s headers, query and bodies with its errors' 400 (see above)."""
    if EXTENSION in app.extensions:
        return
    app.extensions[EXTENSION] = True
    if app.request_class is Request:
        app.request_class = TextCheckedRequest
    elif not issubclass(app.request_class, TextCheckedRequest):
        raise RuntimeError(f"{app.name}'s request class must derive from TextCheckedRequest")

    def guard() -> None:
        header = bad_header(request.environ)
        if header is not None:
            raise UnencodableText(f"header {header}")
        if bad_urlencoded(request.query_string):
            raise UnencodableText("the query")

    app.before_request(guard)
