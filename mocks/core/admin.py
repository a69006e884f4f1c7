"""The shared core of every mock: request journal, faults and log hooks, and the `/__admin` API.

A mock's app factory builds a `MockCore` (its clock, faults, journal, optional rate limiter and
the callback that rebuilds its state from the seed) and calls `install_core(app, core)` right
after creating the app. The core then lives in `app.extensions["pepharness.core"]`
(`core_of(app)`), so two apps in one process never share state.

A mock adds its own admin routes (sinatra `POST /__admin/users`, operator `/__admin/tokens`)
by passing `admin_routes`: callables that receive the admin blueprint before it is registered.
They read bodies with `read_json_object()` and raise `AdminBadRequest` / `AdminNotFound`,
which answer `{"error": "<what is wrong>"}` like every admin error:

    def token_routes(admin: Blueprint) -> None:
        @admin.post("/tokens")
        def add_token() -> ResponseReturnValue:
            body = read_json_object(allowed=TOKEN_KEYS, required=("identityToken", "playerId"))
            ...

    install_core(app, core, admin=not no_admin, admin_routes=[token_routes])
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from pepharness.mocks.core import errors
from pepharness.mocks.core.clock import (
    FIRST_YEAR,
    LAST_YEAR,
    SETTABLE,
    Clock,
    parse_rfc3339,
    to_rfc3339,
)
from pepharness.mocks.core.errors import ApiError, ErrorFamily, unexpected_error
from pepharness.mocks.core.faults import (
    CONNECTION_FAULTS,
    CONNECTION_RESET,
    EMPTY_REPLY,
    MALFORMED_BODY,
    TRANSPORT_FAULT,
    TRUNCATED_BODY,
    Fault,
    FaultRegistry,
    FaultRuleError,
    json_integer,
    json_text,
)
from pepharness.mocks.core.journal import (
    Journal,
    Query,
    auth_kind,
    environ_header,
    redact_query_string,
)
from pepharness.mocks.core.ratelimit import RateLimiter
from pepharness.mocks.core.text import install_text_guard

EXTENSION = "pepharness.core"
ADMIN_PREFIX = "/__admin"
SANDBOX_ENVIRON = "pepharness.sandbox"  # a sandboxed request's sandbox id (D124)
_STARTED = "pepharness_started"
_ARRIVED = "pepharness_arrived"
_FAULTED = "pepharness_faulted"
_TRANSPORT = "pepharness_transport_fault"
_FAULT_KIND = "pepharness_fault_kind"
# What a matched rule did (D153): a transport fault's name, `status`, or `latency` (a delayed
# real answer).
# The journal's status of an exchange a transport fault left with no HTTP answer (D102).
NO_ANSWER_STATUS = 0
MAX_JOURNAL_LIMIT = 999_999_999_999_999_999
_JOURNAL_LIMIT = re.compile(r"0*[0-9]{1,18}", re.ASCII)


def exchange_status(response: Response) -> int:
    """The status an exchange is recorded with (journal and traffic file): NO_ANSWER_STATUS when
    a transport fault sent no HTTP answer at all (D102), else the answer's."""
    if g.get(_TRANSPORT) in (CONNECTION_RESET, EMPTY_REPLY):
        return NO_ANSWER_STATUS
    return response.status_code


def _nothing_to_rebuild() -> None:
    """The reset of a mock whose only state is the core's."""


@dataclass
class MockCore:
    """Everything a mock shares with the core; `reset` rebuilds the mock's state from its seed."""

    service: str
    clock: Clock = field(default_factory=Clock)
    faults: FaultRegistry = field(default_factory=FaultRegistry)
    journal: Journal = field(default_factory=Journal)
    rate_limiter: RateLimiter | None = None
    reset: Callable[[], None] = _nothing_to_rebuild

    def __post_init__(self) -> None:
        if self.rate_limiter is not None and self.rate_limiter.clock is not self.clock:
            raise ValueError("the rate limiter must read the core's clock")

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger(f"pepharness.{self.service}")

    def reset_all(self) -> None:
        """Real time, no faults, an empty journal, fresh rate windows, then the mock's reset."""
        self.clock.reset()
        self.faults.reset()
        self.journal.reset()
        if self.rate_limiter is not None:
            self.rate_limiter.reset()
        self.reset()


def core_of(app: Flask | None = None) -> MockCore:
    """The core installed on `app` (the current app by default)."""
    core = (app or current_app).extensions.get(EXTENSION)
    if not isinstance(core, MockCore):
        raise LookupError("no MockCore installed on this app: call install_core(app, core)")
    return core


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class AdminError(ApiError):
    """Base of the admin API's errors, answered as `{"error": message}`."""


class AdminBadRequest(AdminError):
    status = 400
    message = "bad request"


class AdminNotFound(errors.NotFound, AdminError):
    message = "no such admin route"


class AdminMethodNotAllowed(errors.MethodNotAllowed, AdminError):
    message = "method not allowed on this admin route"


class AdminInternalError(errors.InternalError, AdminError):
    message = "internal error in the admin API"


class AdminConflict(AdminError):
    """What the request would add exists already (a user, an API client)."""

    status = 409
    message = "conflict"


# werkzeug's 400 and 413 keep their status and name ({"error": "Request Entity Too Large"}).
ADMIN_ERRORS = ErrorFamily(AdminError, AdminNotFound, AdminMethodNotAllowed, AdminInternalError)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def read_json() -> Any:
    """The request body as JSON, or `AdminBadRequest` saying why it is not."""
    raw = request.get_data(cache=True)
    if not raw.strip(b" \t\r\n"):  # JSON's whitespace: a form feed is a body, and not JSON
        raise AdminBadRequest("a JSON body is required")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise AdminBadRequest(f"the body is not valid JSON: {error}") from None


def read_json_object(
    *, allowed: Collection[str], required: Collection[str] = ()
) -> dict[str, Any]:
    """The request body as a JSON object with only `allowed` keys and every `required` one."""
    body = read_json()
    if not isinstance(body, dict):
        raise AdminBadRequest(f"the body must be a JSON object, not {_json_type(body)}")
    unknown = sorted(key for key in body if key not in allowed)
    if unknown:
        raise AdminBadRequest(
            f"unknown key(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = [key for key in required if key not in body]
    if missing:
        raise AdminBadRequest(f"missing key(s): {', '.join(missing)}")
    return body


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _number(body: dict[str, Any], key: str) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AdminBadRequest(f"{key} must be a number, not {_json_type(value)}")
    return value


def _query_integer(name: str, low: int) -> int | None:
    """The query parameter `name` as an integer from `low` to MAX_JOURNAL_LIMIT (ASCII digits,
    at most 18 significant, D73), None when absent; AdminBadRequest otherwise."""
    text = request.args.get(name)
    if text is None:
        return None
    # Leading zeros are stripped first: int() refuses strings of more than 4300 digits.
    value = int(text.lstrip("0") or "0") if _JOURNAL_LIMIT.fullmatch(text) else None
    if value is None or not low <= value <= MAX_JOURNAL_LIMIT:
        raise AdminBadRequest(
            f"{name} must be an integer from {low} to {MAX_JOURNAL_LIMIT}, not {text[:40]!r}"
        )
    return value


def _limiter(core: MockCore) -> RateLimiter:
    if core.rate_limiter is None:
        raise AdminNotFound(f"{core.service} has no rate limit")
    return core.rate_limiter


def _admin_blueprint(core: MockCore) -> Blueprint:
    admin = Blueprint("pepharness_admin", __name__, url_prefix=ADMIN_PREFIX)

    @admin.get("/health")
    def health() -> ResponseReturnValue:
        return jsonify(status="ok", service=core.service)

    @admin.post("/reset")
    def reset() -> ResponseReturnValue:
        core.reset_all()
        return jsonify(status="reset")

    @admin.get("/clock")
    def clock() -> ResponseReturnValue:
        return jsonify(now=to_rfc3339(core.clock.now()))

    @admin.post("/clock")
    def move_clock() -> ResponseReturnValue:
        body = read_json_object(allowed=("advance_seconds", "set"))
        if len(body) != 1:
            raise AdminBadRequest('give exactly one of "advance_seconds" or "set"')
        try:
            if "advance_seconds" in body:
                now = core.clock.advance(_number(body, "advance_seconds"))
            elif isinstance(body["set"], str):
                if not SETTABLE.match(body["set"]):
                    raise AdminBadRequest(
                        f"set must be an RFC 3339 date-time of the years {FIRST_YEAR} to "
                        f"{LAST_YEAR}, not {json_text(body['set'])}"
                    )
                now = core.clock.set(parse_rfc3339(body["set"]))
            else:
                raise AdminBadRequest(f"set must be a string, not {_json_type(body['set'])}")
        except ValueError as error:
            raise AdminBadRequest(str(error)) from None
        return jsonify(now=to_rfc3339(now))

    @admin.get("/requests")
    def requests() -> ResponseReturnValue:
        text = request.args.get("limit")
        # Leading zeros are stripped first: int() refuses strings of more than 4300 digits.
        limit = int(text.lstrip("0") or "0") if text and _JOURNAL_LIMIT.fullmatch(text) else None
        if text is not None and (limit is None or not 1 <= limit <= MAX_JOURNAL_LIMIT):
            raise AdminBadRequest(
                f"limit must be an integer from 1 to {MAX_JOURNAL_LIMIT}, not {text[:40]!r}"
            )
        entries = core.journal.entries(limit)
        return jsonify(requests=[entry.to_json() for entry in entries])

    @admin.get("/traffic")
    def traffic() -> ResponseReturnValue:
        # traffic.py imports this module: imported here, when a traffic feed is asked for.
        from pepharness.mocks.core.traffic import traffic_feed

        since = _query_integer("since", 0) or 0
        limit = _query_integer("limit", 1)
        sandbox = request.environ.get(SANDBOX_ENVIRON)
        return traffic_feed(current_app, since=since, limit=limit, sandbox=sandbox)

    @admin.delete("/requests")
    def forget_requests() -> ResponseReturnValue:
        core.journal.clear()
        return jsonify(requests=[])

    @admin.get("/faults")
    def faults() -> ResponseReturnValue:
        return jsonify(faults=core.faults.list())

    @admin.post("/faults")
    def add_faults() -> ResponseReturnValue:
        body = read_json()
        rules = body if isinstance(body, list) else [body]
        if not rules:
            raise AdminBadRequest("an empty list adds no fault")
        try:
            added = core.faults.add_all(rules)
        except FaultRuleError as error:
            raise AdminBadRequest(str(error)) from None
        return jsonify(faults=[rule.to_json() for rule in added]), 201

    @admin.delete("/faults")
    def clear_faults() -> ResponseReturnValue:
        core.faults.clear()
        return jsonify(faults=[])

    @admin.get("/rate-limit")
    def rate_limit() -> ResponseReturnValue:
        limiter = _limiter(core)
        return jsonify(limit=limiter.limit, period_seconds=limiter.period_seconds)

    @admin.post("/rate-limit")
    def set_rate_limit() -> ResponseReturnValue:
        limiter = _limiter(core)
        body = read_json_object(allowed=("limit", "period_seconds"))
        if not body:
            raise AdminBadRequest('give "limit", "period_seconds" or both')
        limit = json_integer(body["limit"]) if "limit" in body else limiter.limit
        if limit is None:
            raise AdminBadRequest(f"limit must be an integer, not {json_text(body['limit'])}")
        period = _number(body, "period_seconds") if "period_seconds" in body else None
        try:
            limiter.configure(limit, limiter.period_seconds if period is None else period)
        except ValueError as error:
            raise AdminBadRequest(str(error)) from None
        return jsonify(limit=limiter.limit, period_seconds=limiter.period_seconds)

    return admin


def _fault_response(fault: Fault) -> Response:
    if fault.body is None or isinstance(fault.body, str):
        response = Response(fault.body or "", mimetype="text/plain")
    else:
        response = jsonify(fault.body)
    response.status_code = fault.status or 500
    for name, value in fault.headers:  # validated: no hop-by-hop, no Content-Length
        response.headers[name] = value
    return response


def _transport_fault(fault: str) -> Response | None:
    """Break this request's answer as `fault` says: a placeholder answer (the server sends
    none of it) for a connection reset or an empty reply, None to let the mock answer."""
    setattr(g, _TRANSPORT, fault)
    if fault not in CONNECTION_FAULTS:
        return None  # malformed_body: the mock's answer, cut when it leaves (_malform)
    break_answer = request.environ.get(TRANSPORT_FAULT)
    if break_answer is None:
        # Served by another WSGI server (a test client): no connection to break.
        setattr(g, _TRANSPORT, None)
        return Response(f"{fault} needs pepharness serving", status=502, mimetype="text/plain")
    break_answer(fault)
    return None if fault == TRUNCATED_BODY else Response(status=200)


def _malform(response: Response) -> None:
    """The answer's status and headers with the first half of its body, still parsing as JSON
    ended by `{`, and a Content-Length that says so (D101)."""
    if request.method == "HEAD" or response.status_code in (204, 304):
        return
    response.direct_passthrough = False
    body = response.get_data()
    cut = body[: len(body) // 2]
    if cut.strip():
        try:
            json.loads(cut)
        except ValueError:
            pass
        else:
            cut += b"{"
    response.set_data(cut)


def _target(path: str, query: Query) -> str:
    return f"{path}?{urlencode(query, doseq=True, safe='*')}" if query else path


def install_core(
    app: Flask,
    core: MockCore,
    *,
    admin: bool = True,
    admin_routes: Iterable[Callable[[Blueprint], None]] = (),
) -> None:
    """Journal, log and fault every request of `app`, and (with `admin`) serve `/__admin`.

    Faults apply to every path outside `/__admin`; admin requests are journaled too but never
    faulted. Call it right after creating the app: its hooks run before (and, for the
    journal, after) every hook the mock registers.
    """
    if EXTENSION in app.extensions:
        raise RuntimeError(f"a MockCore is already installed on {app.name}")
    app.extensions[EXTENSION] = core

    log = core.logger  # one logger per service: looked up once, not per request

    def arrive() -> ResponseReturnValue | None:
        here = g._get_current_object()
        setattr(here, _STARTED, time.perf_counter())
        setattr(here, _ARRIVED, core.clock.now())
        path = request.path
        if is_admin_path(path):
            return None
        fault = core.faults.match(request.method, path)
        if fault is None:
            return None
        setattr(g, _FAULTED, True)
        kind = fault.fault or ("status" if fault.status is not None else "latency")
        setattr(g, _FAULT_KIND, kind)
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.fault is not None:
            return _transport_fault(fault.fault)
        return _fault_response(fault) if fault.status is not None else None

    def journal(response: Response) -> Response:
        here = g._get_current_object()
        current = request._get_current_object()  # type: ignore[attr-defined]
        transport = here.get(_TRANSPORT)
        if transport == MALFORMED_BODY:
            _malform(response)
        started = here.get(_STARTED, time.perf_counter())
        duration_ms = (time.perf_counter() - started) * 1000
        entry = core.journal.record(
            when=here.get(_ARRIVED) or core.clock.now(),
            method=current.method,
            path=current.path,
            # A query string seen before is not decoded again (nor is an empty one).
            query=redact_query_string(
                current.query_string, lambda: current.args.items(multi=True)
            ),
            status=exchange_status(response),
            duration_ms=duration_ms,
            fault=bool(here.get(_FAULTED, False)),
            auth=auth_kind(environ_header(current.environ)),
            error=unexpected_error(),
        )
        if log.isEnabledFor(logging.INFO):  # --quiet: the line is not even formatted
            log.info(
                "%s %s %d %.1fms",
                entry.method,
                _target(entry.path, entry.query),
                entry.status,
                duration_ms,
            )
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, arrive)
    # after_request hooks run last-registered first: at the front, the journal sees the final
    # response whatever the mock's own hooks do to it.
    app.after_request_funcs.setdefault(None, []).insert(0, journal)
    install_text_guard(app)
    if not admin:
        return
    ADMIN_ERRORS.install(app, prefix=ADMIN_PREFIX, logger=core.logger)
    blueprint = _admin_blueprint(core)
    for add_routes in admin_routes:
        add_routes(blueprint)
    app.register_blueprint(blueprint)
