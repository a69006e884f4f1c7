"""Sandboxes: isolation sessions of one `serve` process, for CI jobs sharing one `serve all`.

The PEP's `/__admin/sessions` are its players' sessions, so the unit of isolation is called a
*sandbox* (D124). A `SandboxRegistry` is process-wide: `POST /__admin/sandboxes` on any mock
served creates a sandbox across every mock the process serves, each with a fresh app built as
the default one is (same seed and options), hence its own state, clock, faults, rate windows,
journal and `/__admin`. The apps are built on a sandbox's first request to each mock (D126).

`SandboxDispatch` is the WSGI middleware in front of each served mock that routes a request to
a sandbox: by the path prefix `/__sandbox/<id>` (moved from PATH_INFO to SCRIPT_NAME, so the
sandbox URL is a client's base URL) or by the header `X-Pepharness-Sandbox: <id>` on the mock's
own paths (D125). It sets `environ[SANDBOX_ENVIRON]` to the id; an unknown or ended id is a 404
in the admin error shape. A sandbox unused for its `idle_seconds` is ended on the next access
to the registry (D127); at most MAX_SANDBOXES are live (D128). With several workers
(`serve --workers N`), state_sandbox.SharedSandboxRegistry keeps one registry for all (D217).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from flask.typing import ResponseReturnValue

from pepharness.mocks.core.admin import (
    ADMIN_PREFIX,
    SANDBOX_ENVIRON,
    AdminBadRequest,
    AdminError,
    AdminNotFound,
    read_json_object,
)
from pepharness.mocks.core.clock import to_rfc3339

SANDBOX_HEADER = "X-Pepharness-Sandbox"
SANDBOX_PREFIX = "/__sandbox"
SANDBOXES_PATH = ADMIN_PREFIX + "/sandboxes"
DEFAULT_IDLE_SECONDS = 3600
MAX_IDLE_SECONDS = 7 * 24 * 3600
MIN_IDLE_SECONDS = 1
"""Shorter, a sandbox could end between its creation and its first use (D127)."""
MAX_SANDBOXES = 32
_HEADER_KEY = "HTTP_" + SANDBOX_HEADER.upper().replace("-", "_")
_SHOWN_ID_CHARS = 40

logger = logging.getLogger("pepharness.sandbox")

Cleanup = Callable[[], None]
Build = Callable[[str, "Sandbox"], tuple[Flask, Cleanup]]
"""How a registry builds mock `name`'s app for a sandbox: the app, and what ends it."""
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class AdminTooManySandboxes(AdminError):
    status = 429
    message = "too many sandboxes"


class Sandbox:
    """One isolation session: an id, its mocks' apps (built on first use) and their ends."""

    def __init__(
        self,
        sandbox_id: str,
        idle_seconds: float,
        base_urls: Mapping[str, str],
        *,
        secret: str | None = None,
        folder: str | None = None,
    ) -> None:
        self.id = sandbox_id
        self.secret = secret
        """The key its apps sign with; None: each app draws its own (one process, D129)."""
        self.folder = folder
        """Where its apps keep what the workers share (several workers, D218); None: one
        process, nothing shared."""
        self.idle_seconds = idle_seconds
        self.urls = {name: f"{url}{SANDBOX_PREFIX}/{sandbox_id}" for name, url in base_urls.items()}
        self.created = datetime.now(UTC)
        self.last_used = self.created
        self.used_at = time.monotonic()
        self.ended = False
        self._lock = threading.Lock()
        self._apps: dict[str, Flask] = {}
        self._cleanups: list[Cleanup] = []

    def touch(self) -> None:
        self.used_at = time.monotonic()
        self.last_used = datetime.now(UTC)

    def idle(self, now: float) -> bool:
        return now - self.used_at >= self.idle_seconds

    def app(self, mock: str, build: Build) -> Flask | None:
        """Mock `mock`'s app of this sandbox, built on first use; None once ended."""
        with self._lock:
            if self.ended:
                return None
            app = self._apps.get(mock)
            if app is None:
                app, cleanup = build(mock, self)
                self._apps[mock] = app
                self._cleanups.append(cleanup)
            return app

    def end(self) -> None:
        """Drop the apps and run their cleanups (the PEP's engine stopped, its database
        removed); idempotent."""
        with self._lock:
            self.ended = True
            cleanups, self._cleanups = self._cleanups, []
            self._apps.clear()
        for cleanup in cleanups:
            try:
                cleanup()
            except Exception:  # one mock's cleanup must not keep the others'
                logger.exception("sandbox %s: a cleanup failed", self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "urls": dict(self.urls),
            "header": SANDBOX_HEADER,
            "idle_seconds": self.idle_seconds,
            "created": to_rfc3339(self.created),
            "last_used": to_rfc3339(self.last_used),
        }


class SandboxRegistry:
    """The sandboxes of one process; thread-safe. `bind` gives it the served mocks' base URLs
    (known once their ports are bound); `close` ends every sandbox (the server stopped)."""

    def __init__(self, build: Build, *, limit: int = MAX_SANDBOXES) -> None:
        self._build = build
        self.limit = limit
        self._lock = threading.Lock()
        self._live: dict[str, Sandbox] = {}
        self.base_urls: dict[str, str] = {}

    def bind(self, base_urls: Mapping[str, str]) -> None:
        self.base_urls = dict(base_urls)

    def _sweep(self) -> list[Sandbox]:
        """Take the idle sandboxes out (under the lock); the caller ends them after it."""
        now = time.monotonic()
        idle = [sandbox for sandbox in self._live.values() if sandbox.idle(now)]
        for sandbox in idle:
            del self._live[sandbox.id]
        return idle

    @staticmethod
    def _end(sandboxes: Iterable[Sandbox]) -> None:
        for sandbox in sandboxes:
            sandbox.end()

    def create(self, idle_seconds: float = DEFAULT_IDLE_SECONDS) -> Sandbox:
        """A new sandbox; `AdminTooManySandboxes` when `limit` are live."""
        with self._lock:
            idle = self._sweep()
            sandbox = None
            if len(self._live) < self.limit:
                sandbox_id = secrets.token_urlsafe(9)
                while sandbox_id in self._live:
                    sandbox_id = secrets.token_urlsafe(9)
                sandbox = Sandbox(sandbox_id, idle_seconds, self.base_urls)
                self._live[sandbox_id] = sandbox
        self._end(idle)
        if sandbox is None:
            raise too_many(self.limit)
        logger.info("sandbox %s created", sandbox.id)
        return sandbox

    def sandboxes(self) -> list[Sandbox]:
        with self._lock:
            idle = self._sweep()
            live = sorted(self._live.values(), key=lambda sandbox: sandbox.created)
        self._end(idle)
        return live

    def get(self, sandbox_id: str) -> Sandbox | None:
        with self._lock:
            idle = self._sweep()
            sandbox = self._live.get(sandbox_id)
        self._end(idle)
        return sandbox

    def use(self, sandbox_id: str, mock: str) -> Flask | None:
        """Mock `mock`'s app of the live sandbox `sandbox_id` (now used), or None."""
        with self._lock:
            idle = self._sweep()
            sandbox = self._live.get(sandbox_id)
            if sandbox is not None:
                sandbox.touch()
        self._end(idle)
        return None if sandbox is None else sandbox.app(mock, self._build)

    def end(self, sandbox_id: str) -> Sandbox | None:
        """End the live sandbox `sandbox_id`; None when there is none."""
        with self._lock:
            idle = self._sweep()
            sandbox = self._live.pop(sandbox_id, None)
        self._end(idle)
        if sandbox is not None:
            sandbox.end()
            logger.info("sandbox %s ended", sandbox.id)
        return sandbox

    def close(self) -> None:
        """End every sandbox (the process stops serving)."""
        with self._lock:
            live = list(self._live.values())
            self._live.clear()
        self._end(live)


def too_many(limit: int) -> AdminTooManySandboxes:
    """The 429 of a creation when `limit` sandboxes are live (D128)."""
    return AdminTooManySandboxes(
        f"{limit} sandboxes are live, the most one serve holds: DELETE "
        f"{SANDBOXES_PATH}/<id> one that is done (an unused one ends after its idle_seconds)"
    )


def _shown(sandbox_id: str) -> str:
    return repr(sandbox_id[:_SHOWN_ID_CHARS])


def _unknown(sandbox_id: str) -> str:
    return (
        f"no sandbox {_shown(sandbox_id)}: it ended, was idle too long or never existed "
        f"(POST {SANDBOXES_PATH} creates one)"
    )


def _idle_seconds(body: Mapping[str, Any]) -> float:
    value = body.get("idle_seconds", DEFAULT_IDLE_SECONDS)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not MIN_IDLE_SECONDS <= value <= MAX_IDLE_SECONDS
    ):
        raise AdminBadRequest(
            f"idle_seconds must be a number from {MIN_IDLE_SECONDS} to {MAX_IDLE_SECONDS}, "
            f"not {value!r}"[:200]
        )
    return int(value) if float(value).is_integer() else float(value)


def sandbox_blueprint(registry: SandboxRegistry) -> Blueprint:
    """`POST/GET /__admin/sandboxes`, `GET/DELETE /__admin/sandboxes/<id>` (D125)."""
    admin = Blueprint("pepharness_sandboxes", __name__, url_prefix=SANDBOXES_PATH)

    @admin.post("")
    def create() -> ResponseReturnValue:
        raw = request.get_data(cache=True)
        # No body, or JSON's whitespace only: the defaults; anything else must be the object.
        body = read_json_object(allowed=("idle_seconds",)) if raw.strip(b" \t\r\n") else {}
        sandbox = registry.create(_idle_seconds(body))
        response = jsonify(sandbox.to_json())
        response.status_code = 201
        response.headers["Location"] = f"{SANDBOXES_PATH}/{sandbox.id}"
        return response

    @admin.get("")
    def listing() -> ResponseReturnValue:
        return jsonify(sandboxes=[sandbox.to_json() for sandbox in registry.sandboxes()])

    @admin.get("/<sandbox_id>")
    def one(sandbox_id: str) -> ResponseReturnValue:
        sandbox = registry.get(sandbox_id)
        if sandbox is None:
            raise AdminNotFound(_unknown(sandbox_id))
        return jsonify(sandbox.to_json())

    @admin.delete("/<sandbox_id>")
    def end(sandbox_id: str) -> ResponseReturnValue:
        sandbox = registry.end(sandbox_id)
        if sandbox is None:
            raise AdminNotFound(_unknown(sandbox_id))
        return jsonify(sandbox.to_json())

    return admin


def _error(start_response: Callable[..., Any], status: str, message: str) -> list[bytes]:
    body = json.dumps({"error": message}).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def route(environ: dict[str, Any]) -> str | None:
    """The sandbox id a request names, its path prefix moved to SCRIPT_NAME; None: the
    default space. The prefix wins over the header."""
    path = str(environ.get("PATH_INFO", ""))
    if path == SANDBOX_PREFIX or path.startswith(SANDBOX_PREFIX + "/"):
        rest = path[len(SANDBOX_PREFIX) + 1 :]
        sandbox_id, slash, tail = rest.partition("/")
        environ["SCRIPT_NAME"] = f"{environ.get('SCRIPT_NAME', '')}{SANDBOX_PREFIX}/{sandbox_id}"
        environ["PATH_INFO"] = "/" + tail if slash else "/"
        return sandbox_id
    header = environ.get(_HEADER_KEY)
    return None if header is None else str(header).strip()


class SandboxDispatch:
    """WSGI middleware in front of mock `mock`'s default app: a sandboxed request goes to its
    sandbox's app of that mock (D125)."""

    def __init__(self, app: WSGIApp, registry: SandboxRegistry, mock: str) -> None:
        self.app = app
        self.registry = registry
        self.mock = mock

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        sandbox_id = route(environ)
        if sandbox_id is None:
            return self.app(environ, start_response)
        if not sandbox_id:
            return _error(start_response, "404 NOT FOUND", _unknown(sandbox_id))
        try:
            target = self.registry.use(sandbox_id, self.mock)
        except Exception as error:  # a build failing: the machine's fault, not the client's
            if self.registry.get(sandbox_id) is None:  # ended meanwhile (by another worker)
                return _error(start_response, "404 NOT FOUND", _unknown(sandbox_id))
            logger.exception("sandbox %s: %s could not be built", sandbox_id, self.mock)
            return _error(
                start_response,
                "503 SERVICE UNAVAILABLE",
                f"sandbox {_shown(sandbox_id)}: {self.mock} could not be built: {error}"[:300],
            )
        if target is None:
            return _error(start_response, "404 NOT FOUND", _unknown(sandbox_id))
        environ[SANDBOX_ENVIRON] = sandbox_id
        return target(environ, start_response)


def install_sandboxes(app: Flask, registry: SandboxRegistry, mock: str) -> Flask:
    """Serve `registry`'s admin routes on `app` (mock `mock`'s default app, its admin API
    installed) and route its sandboxed requests; `app` itself."""
    app.register_blueprint(sandbox_blueprint(registry))
    app.wsgi_app = SandboxDispatch(app.wsgi_app, registry, mock)  # type: ignore[method-assign]
    return app

