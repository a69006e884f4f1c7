"""Every exchange of the mocks of a process, appended to one JSON Lines file, and read back.

`serve --traffic FILE` (D103) opens one `TrafficWriter` and `install_traffic` hooks it into
each mock's app. A request thread only builds a small dict and puts it on a bounded queue; one
background thread serialises and writes the lines, and flushes whenever the queue runs dry, so
a reader following the file sees each exchange within milliseconds. `read_traffic(path)`
streams the entries back, one at a time, skipping a last line torn by a writer still at work
(or killed). Secrets are never written (D104): query values by the journal's rules, no header
but the few chosen ones, a credential only as a short SHA-256 prefix of its token (of the user
alone for Basic), request bodies never, only the idempotency keys a mock names (and a
login's user as a digest, D150).
`traffic_feed` is every mock's `GET /__admin/traffic` (D135, D136): the file's lines streamed
back, once the writer has written every exchange numbered before the GET.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from flask import Flask, Request, Response, g, request
from werkzeug.exceptions import HTTPException

from pepharness.mocks.core.admin import (
    _ARRIVED,
    _FAULT_KIND,
    _FAULTED,
    _STARTED,
    SANDBOX_ENVIRON,
    AdminNotFound,
    core_of,
    exchange_status,
)
from pepharness.mocks.core.clock import to_rfc3339
from pepharness.mocks.core.encoding import (
    BodyTooLarge,
    UndecodableBody,
    UnknownCoding,
    decode_body,
)
from pepharness.mocks.core.errors import unexpected_error
from pepharness.mocks.core.journal import auth_kind, describe_error, is_secret_key, redact_query

QUEUE_SIZE = 10_000
"""Exchanges waiting for the writer; when full, a request waits up to PUT_TIMEOUT_SECONDS."""
PUT_TIMEOUT_SECONDS = 1.0
CREDENTIAL_DIGITS = 12
"""Hex digits of a credential's SHA-256 kept: 48 bits, enough to tell any two tokens apart."""
REQUEST_HEADERS = ("Content-Type", "Content-Encoding", "User-Agent", "X-Request-Id")
RESPONSE_HEADERS = ("Retry-After", "Content-Type")
MAX_HEADER_CHARS = 200
MAX_KEYS_BODY_BYTES = 1 << 20
"""A JSON body larger than this is not parsed for keys (`keys_truncated` says so)."""
MAX_KEY_OBJECTS = 100
MAX_KEY_CHARS = 200
MAX_COUNTED_BYTES = 32 << 20
"""A counted body (`Mock.traffic_counts`, D152) is decoded up to this many bytes."""
ANSWER_SCAN_BYTES = 512
"""How far into a JSON answer `answer_keys` are looked for (a paging envelope comes first)."""
TOKEN_HEADERS = ("jwt-auth", "x-authorization")
ISSUING_HEADERS = ("jwt-auth",)
"""Response headers that hand a client its token (Sinatra's login): kept as `issued`."""

TRAFFIC_EXTENSION = "pepharness.traffic"
"""Where `install_traffic` leaves (writer, mock name, core) for what Flask never sees (D116)."""
SOCKETIO_PATH = "/socket.io/"
FEED_MEDIA_TYPE = "application/x-ndjson"
FEED_SEQ_HEADER = "X-Pepharness-Traffic-Seq"
"""`GET /__admin/traffic`'s header: the last seq numbered when the GET arrived, where its
stream stops (D136)."""
SETTLE_SECONDS = 5.0
"""How long `GET /__admin/traffic` waits for the writer to have written every line numbered
before it arrived (D136); past it, the stream holds what the file holds."""
FEED_BLOCK_BYTES = 64 * 1024
NO_TRAFFIC = "this serve records no traffic: start it with --traffic FILE"

logger = logging.getLogger("pepharness.traffic")

_STOP = object()
_COMPACT = (",", ":")


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_rfc3339(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class TrafficWriter:
    """One JSON Lines file fed by every mock of the process through one writer thread.

    `open()` truncates the file (a serve run is one file, numbered from 1) and raises
    `OSError` when it cannot be written, before anything is served. `record()` is what the
    request threads call; `close()` writes what is queued, flushes and closes. An exchange
    that could not be queued within PUT_TIMEOUT_SECONDS (a stalled disk) is dropped, counted
    in `lost` and logged on close; when the queue was full, its `seq` is missing from the file.
    """

    def __init__(self, stream: IO[str], *, queue_size: int = QUEUE_SIZE) -> None:
        self._stream = stream
        self.path: Path | None = None
        """The file written, when opened by `open()`: what `GET /__admin/traffic` streams."""
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._next_seq = 1
        self._dropped = 0  # by the request threads, under the lock
        self._unwritten = 0  # by the writer thread
        self.written = 0
        self._thread = threading.Thread(target=self._write, name="pepharness-traffic", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: str | Path, **kwargs: Any) -> TrafficWriter:
        stream = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 (closed by close())
        writer = cls(stream, **kwargs)
        writer.path = Path(path)
        return writer

    def record(self, entry: dict[str, Any]) -> int:
        """Number `entry` and queue it; its `seq`, or 0 when it was lost (queue full too long)."""
        deadline = time.monotonic() + PUT_TIMEOUT_SECONDS
        # One lock numbers and queues: the file's order is the order of the numbers.
        if not self._lock.acquire(timeout=PUT_TIMEOUT_SECONDS):
            self._dropped += 1  # unlocked, as no lock was had: a count for the log only
            return 0
        try:
            seq = self._next_seq
            self._next_seq += 1
            try:
                wait = max(0.0, deadline - time.monotonic())
                self._queue.put({"seq": seq, **entry}, timeout=wait)
            except queue.Full:
                self._dropped += 1
                return 0
            return seq
        finally:
            self._lock.release()

    @property
    def lost(self) -> int:
        """Exchanges not in the file: dropped (no room in time) or not written (a write error)."""
        return self._dropped + self._unwritten

    def _write(self) -> None:
        broken: OSError | None = None
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    self._stream.flush()
                    return
                if isinstance(item, threading.Event):
                    self._stream.flush()
                    item.set()
                    continue
                if broken is not None:
                    self._unwritten += 1
                    continue
                self._stream.write(json.dumps(item, separators=_COMPACT, default=_json) + "\n")
                self.written += 1
                if self._queue.empty():
                    self._stream.flush()
            except OSError as error:
                # A full or vanished disk: keep draining, so no request ever waits on it.
                if broken is None:
                    broken = error
                    logger.error("traffic: cannot write any more: %s", error.strerror or error)
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                else:
                    self._unwritten += 1

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until every exchange queued so far is written and flushed (False: timed out)."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def settle(self, timeout: float = SETTLE_SECONDS) -> int:
        """The last seq numbered so far, once every line up to it is written and flushed, or
        `timeout` passed (the caller then reads what the file holds). Numbered under the
        record lock: an exchange numbered before is queued ahead of the wait's marker."""
        deadline = time.monotonic() + timeout
        done = threading.Event()
        if not self._lock.acquire(timeout=timeout):
            return self._next_seq - 1
        try:
            upto = self._next_seq - 1
            queued = False
            if self._thread.is_alive():
                try:
                    self._queue.put(done, timeout=max(0.0, deadline - time.monotonic()))
                    queued = True
                except queue.Full:
                    pass
        finally:
            self._lock.release()
        if queued:
            done.wait(max(0.0, deadline - time.monotonic()))
        return upto

    def close(self) -> None:
        """Write every queued exchange, flush and close the file (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if not self._stream.closed:
            self._stream.close()
        if self.lost:
            logger.warning("traffic: %d exchange(s) are not in the file", self.lost)

    def __enter__(self) -> TrafficWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def credential_id(value: str) -> str:
    """A short, non-secret identity of a credential: the SHA-256 prefix of the token, or of
    the user alone for Basic (a password never enters a digest someone could brute-force)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(rest.strip(), validate=True).split(b":", 1)[0]
        except (binascii.Error, ValueError):
            return "unreadable"
        return "user:" + hashlib.sha256(user).hexdigest()[:CREDENTIAL_DIGITS]
    token = rest.strip() if scheme.lower() == "bearer" else value.strip()
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:CREDENTIAL_DIGITS]


def _credential(headers: Any) -> str | None:
    for name in ("Authorization", *TOKEN_HEADERS):
        value = headers.get(name)
        if value is not None:
            return credential_id(value)
    return None


def _issued(response: Response) -> str | None:
    for name in ISSUING_HEADERS:
        value = response.headers.get(name)
        if value is not None:
            return credential_id(value)
    return None


def _headers(source: Any, names: Collection[str]) -> dict[str, str]:
    chosen = {}
    for name in names:
        value = source.get(name)
        if value is not None:
            chosen[name] = value[:MAX_HEADER_CHARS]
    return chosen


def _key_value(value: Any) -> Any:
    if isinstance(value, str):
        return value[:MAX_KEY_CHARS]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return json.dumps(value, separators=(",", ":"))[:MAX_KEY_CHARS]


def body_keys(body: Any, fields: Collection[str]) -> tuple[list[dict[str, Any]], bool]:
    """The `fields` of a JSON body: one dict per object holding any of them — the body itself,
    or each object of an array (the body, or any of its top-level values: a round's
    `gameTransactionRound`, a bulk sync's list). At most MAX_KEY_OBJECTS; the flag says more
    were left out."""
    candidates: list[Any] = []
    if isinstance(body, list):
        candidates.extend(body)
    elif isinstance(body, dict):
        candidates.append(body)
        for value in body.values():
            if isinstance(value, list):
                candidates.extend(value)
    found: list[dict[str, Any]] = []
    for candidate in candidates:
        if not isinstance(candidate, dict):
            continue
        keys = {f: _key_value(candidate[f]) for f in fields if f in candidate}
        if keys:
            if len(found) == MAX_KEY_OBJECTS:
                return found, True
            found.append(keys)
    return found, False


def _small_json_body(current: Request) -> tuple[bytes, Any] | None:
    """The request's raw body and its JSON, when it is at most MAX_KEYS_BODY_BYTES of JSON;
    None otherwise (too large, unreadable, not JSON)."""
    try:
        raw = current.get_data(cache=True)
    except (HTTPException, OSError):  # a chunked body past MAX_CONTENT_LENGTH, a dead client
        return None
    if not raw or len(raw) > MAX_KEYS_BODY_BYTES:
        return None
    try:
        return raw, json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _request_keys(current: Request, fields: Collection[str]) -> dict[str, Any]:
    if (current.content_length or 0) > MAX_KEYS_BODY_BYTES:
        return {"keys": [], "keys_truncated": True}
    read = _small_json_body(current)
    if read is None:
        return {}
    raw, body = read
    keys, truncated = body_keys(body, fields)
    if not keys:
        return {}
    shown: dict[str, Any] = {"keys": keys, "body_sha256": hashlib.sha256(raw).hexdigest()[:16]}
    if truncated:
        shown["keys_truncated"] = True
    return shown


def _request_size(current: Request, field: str) -> dict[str, int]:
    """`body_bytes`: the request body's size after its Content-Encoding (past
    MAX_COUNTED_BYTES: `body_bytes_at_least`, that + 1), and `items`: the length of its
    top-level `field` list (or of the body, a list) when it is JSON (the bulk sync's
    `players`, D152). Nothing for a body that cannot be read or decoded."""
    try:
        raw = current.get_data(cache=True)
    except (HTTPException, OSError):
        return {}
    coding = (current.headers.get("Content-Encoding") or "identity").strip().lower()
    try:
        data = decode_body(raw, coding, MAX_COUNTED_BYTES)
    except BodyTooLarge:
        return {"body_bytes_at_least": MAX_COUNTED_BYTES + 1}
    except (UnknownCoding, UndecodableBody):
        return {}
    shown = {"body_bytes": len(data)}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return shown
    listed = body.get(field) if isinstance(body, dict) else body
    if isinstance(listed, list):
        shown["items"] = len(listed)
    return shown


def _request_user(current: Request, fields: Collection[str]) -> dict[str, str]:
    """`user`: the digest of the first string field of `fields` in a JSON object body (the
    Sinatra login's `email`), as `credential_id` makes Basic's (`user:` + 12 hex digits), so a
    login and its user's Basic calls read alike (D150); never the password."""
    if (current.content_length or 0) > MAX_KEYS_BODY_BYTES:
        return {}
    read = _small_json_body(current)
    body = read[1] if read is not None else None
    if not isinstance(body, dict):
        return {}
    for name in fields:
        value = body.get(name)
        if isinstance(value, str):
            digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
            return {"user": "user:" + digest[:CREDENTIAL_DIGITS]}
    return {}


def answer_numbers(response: Response, names: Collection[str]) -> dict[str, int]:
    """The integer fields `names` of a JSON answer, as its first ANSWER_SCAN_BYTES write them
    (a paging envelope's `total_count`, D105): no parse of a page of thousands of rows."""
    if not names or response.is_streamed or response.mimetype != "application/json":
        return {}
    head = response.get_data()[:ANSWER_SCAN_BYTES].decode("utf-8", "replace")
    found = {}
    for name in names:
        match = re.search(rf'"{re.escape(name)}"\s*:\s*(-?\d+)', head)
        if match:
            found[name] = int(match.group(1))
    return found


def answer_texts(response: Response, names: Collection[str]) -> dict[str, str | None]:
    """The string (or null) fields `names` that close a JSON answer: the last occurrence of
    each in its last ANSWER_SCAN_BYTES (the PEP's data-fetch page ends with `next`, its keys
    sorted; an item's own `next` comes before it), cut to MAX_KEY_CHARS (D114). No parse of a
    page of thousands of items."""
    if not names or response.is_streamed or response.mimetype != "application/json":
        return {}
    tail = response.get_data()[-ANSWER_SCAN_BYTES:]
    found: dict[str, str | None] = {}
    for name in names:
        pattern = re.compile(rf'"{re.escape(name)}"\s*:\s*(null|"([^"\\]*)")'.encode())
        matches = list(pattern.finditer(tail))
        if matches:
            match = matches[-1]
            text = match.group(2)
            found[name] = None if text is None else text.decode("utf-8", "replace")[:MAX_KEY_CHARS]
    return found


def install_traffic(
    app: Flask,
    writer: TrafficWriter,
    *,
    mock: str,
    keys: Collection[str] = (),
    answer_keys: Collection[str] = (),
    answer_strings: Collection[str] = (),
    user_fields: Collection[str] = (),
    counts: Collection[tuple[str, str]] = (),
) -> None:
    """Record every exchange of `app` (a mock with its core installed) to `writer`, named
    `mock`; `keys` are the JSON body fields kept as idempotency keys (never a secret one);
    `user_fields` the JSON body fields naming a user, kept as the digest `user` (D150);
    `counts` (path, list field) the POST bodies whose size and item count are kept (D152);
    `answer_keys` the integer fields of a JSON answer kept as `answer` (D105), `answer_strings`
    its string fields (a cursor, never a secret one; D114)."""
    core = core_of(app)
    secret = [name for name in (*keys, *answer_strings) if is_secret_key(name)]
    if secret:
        raise ValueError(f"a secret is never recorded: {', '.join(secret)}")
    fields = tuple(keys)
    strings = tuple(answer_strings)
    users = tuple(user_fields)
    counted = dict(counts)

    def record(response: Response) -> Response:
        try:
            gather(response)
        except Exception:  # recording must never turn an answer into a 500
            logger.exception("traffic: %s %s not recorded", request.method, request.path)
        return response

    def gather(response: Response) -> None:
        elapsed = time.perf_counter() - g.get(_STARTED, time.perf_counter())
        error = unexpected_error()
        current = request._get_current_object()  # type: ignore[attr-defined]
        headers = current.headers
        entry: dict[str, Any] = {
            "mock": mock,
            # datetimes: the writer thread formats them (`_json`), off the request's time
            "time": datetime.fromtimestamp(time.time() - elapsed, UTC),
            "clock": g.get(_ARRIVED) or core.clock.now(),
            "method": current.method,
            "path": current.path,
            "query": redact_query(current.args.items(multi=True)),
            "status": exchange_status(response),
            "duration_ms": round(elapsed * 1000, 3),
            "fault": bool(g.get(_FAULTED, False)),
            "auth": auth_kind(headers.get),
            "credential": _credential(headers),
            "issued": _issued(response),
            "request_headers": _headers(headers, REQUEST_HEADERS),
            "response_headers": _headers(response.headers, RESPONSE_HEADERS),
            "error": describe_error(error) if error is not None else None,
        }
        if entry["fault"]:  # latency, status or a transport fault's name (D153)
            entry["fault_kind"] = g.get(_FAULT_KIND)
        sandbox = current.environ.get(SANDBOX_ENVIRON)
        if sandbox is not None:  # a sandbox's exchange (D130); none in the default space
            entry["sandbox"] = sandbox
        if fields and current.mimetype == "application/json":
            entry.update(_request_keys(current, fields))
        if users and current.mimetype == "application/json":
            entry.update(_request_user(current, users))
        if current.method == "POST" and current.path in counted:
            entry.update(_request_size(current, counted[current.path]))
        answer: dict[str, Any] = dict(answer_numbers(response, answer_keys))
        answer.update(answer_texts(response, strings))
        if answer:
            entry["answer"] = answer
        writer.record(entry)

    # after_request hooks run last-registered first: at the front, after the journal's own.
    app.after_request_funcs.setdefault(None, []).insert(0, record)
    app.extensions[TRAFFIC_EXTENSION] = (writer, mock, core)


def record_connect(app: Flask, *, token: str | None, via: str | None, accepted: bool) -> int:
    """A Socket.IO connect attempt on `app` as a traffic line, when `app` records its traffic
    (else nothing; 0): path `/socket.io/`, `credential` the digest of the token it came with
    (`via`: `auth` or `x-authorization`), status 200 accepted or 401 refused, and
    `socketio: {"event": "connect", "accepted": …}` (D116). Never raises."""
    tap = app.extensions.get(TRAFFIC_EXTENSION)
    if tap is None:
        return 0
    writer: TrafficWriter = tap[0]
    mock, core = tap[1], tap[2]
    try:
        has_token = isinstance(token, str) and bool(token.strip())
        entry: dict[str, Any] = {
            "mock": mock,
            "time": datetime.now(UTC),
            "clock": core.clock.now(),
            "method": "GET",
            "path": SOCKETIO_PATH,
            "query": {},
            "status": 200 if accepted else 401,
            "duration_ms": 0.0,
            "fault": False,
            "auth": via if has_token else None,
            "credential": credential_id(token) if has_token and token is not None else None,
            "issued": None,
            "request_headers": {},
            "response_headers": {},
            "error": None,
            "socketio": {"event": "connect", "accepted": accepted},
        }
        sandbox = app.extensions.get(SANDBOX_ENVIRON)  # a sandbox's own app (D130)
        if isinstance(sandbox, str):
            entry["sandbox"] = sandbox
        return writer.record(entry)
    except Exception:  # recording must never break a connection
        logger.exception("traffic: a Socket.IO connect not recorded")
        return 0


class TrafficFileError(ValueError):
    """A line of a traffic file, other than a torn last one, is not an entry."""


def read_traffic(path: str | Path) -> Iterator[dict[str, Any]]:
    """The entries of a traffic file in the order written, one at a time (bounded memory);
    a last line without its newline that is not a whole JSON object is skipped (torn)."""
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, 1):
            complete = raw.endswith(b"\n")
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            if isinstance(entry, dict):
                yield entry
            elif complete:
                raise TrafficFileError(f"{path}:{number}: not a traffic entry")


_SEQ_PREFIX = re.compile(rb'\{"seq":([0-9]{1,18}),')
_SANDBOX_KEY = b'"sandbox":'


def _seq_of(raw: bytes) -> int | None:
    """A written line's seq from its first bytes (the writer puts it first), else parsed."""
    match = _SEQ_PREFIX.match(raw)
    if match:
        return int(match.group(1))
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    seq = entry.get("seq") if isinstance(entry, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _in_space(raw: bytes, sandbox: str | None) -> bool:
    """Whether a line belongs to `sandbox` (None: the default space, lines with no `sandbox`).
    A line without the bytes `"sandbox":` has no such key: no parse needed."""
    if _SANDBOX_KEY not in raw:
        return sandbox is None
    try:
        entry = json.loads(raw)
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("sandbox") == sandbox


def feed_lines(
    path: Path, *, since: int, upto: int, limit: int | None, sandbox: str | None
) -> Iterator[bytes]:
    """The lines of the traffic file at `path` with `since` < seq <= `upto` in `sandbox`'s
    space, as written (newline included), at most `limit`; read a line at a time, stopping at
    the first line past `upto` or not yet whole (bounded memory whatever the file's size)."""
    sent = 0
    if limit is not None and limit < 1:
        return
    with open(path, "rb") as stream:
        for raw in stream:
            if not raw.endswith(b"\n"):
                return  # a line the writer is still writing: past `upto`
            seq = _seq_of(raw)
            if seq is None or seq <= since:
                continue
            if seq > upto:
                return
            if not _in_space(raw, sandbox):
                continue
            yield raw
            sent += 1
            if limit is not None and sent >= limit:
                return


def _blocks(lines: Iterator[bytes], size: int = FEED_BLOCK_BYTES) -> Iterator[bytes]:
    """`lines` joined into blocks of about `size` bytes: one chunk per block, not per line."""
    block: list[bytes] = []
    held = 0
    for line in lines:
        block.append(line)
        held += len(line)
        if held >= size:
            yield b"".join(block)
            block, held = [], 0
    if block:
        yield b"".join(block)


def traffic_feed(app: Flask, *, since: int, limit: int | None, sandbox: str | None) -> Response:
    """`GET /__admin/traffic` of a mock of `app`'s process (D136): the traffic file's lines
    numbered after `since` and before the GET arrived, streamed as JSON Lines once the writer
    has written them (SETTLE_SECONDS at most); 404 when the process records no traffic file."""
    tap = app.extensions.get(TRAFFIC_EXTENSION)
    writer = tap[0] if tap is not None else None
    if writer is None or writer.path is None:
        raise AdminNotFound(NO_TRAFFIC)
    path = writer.path
    upto = writer.settle()
    lines = feed_lines(path, since=since, upto=upto, limit=limit, sandbox=sandbox)
    response = Response(_blocks(lines), mimetype=FEED_MEDIA_TYPE)
    response.headers[FEED_SEQ_HEADER] = str(upto)
    response.headers["Cache-Control"] = "no-store"
    return response
