"""One way to build a mock's app: the wiring every `create_app` shares.

A mock's factory reads its config, builds its backend (the seeded state, no Flask in it) and
hands both to the core:

    def create_app(config: Mapping[str, Any] | None = None) -> Flask:
        app, clock = new_app(__name__, DEFAULTS, config)
        backend = OperatorBackend(clock=clock, seed=app.config["SEED"], ...)
        install_mock(app, SERVICE, backend, ERRORS, clock, [api], [token_routes])
        return app

`install_mock` builds the `MockCore` (faults seeded with SEED, a journal of JOURNAL_SIZE, the
backend's reset), installs it (with `/__admin` when ADMIN), installs the API's `ErrorFamily`,
keeps the backend in `app.extensions` (`backend_in` reads it back) and registers the API's
blueprints, in that order, so every mock's hooks and error shapes stack the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from flask import Blueprint, Flask, current_app

from pepharness.mocks.core.admin import MockCore, install_core
from pepharness.mocks.core.clock import Clock
from pepharness.mocks.core.errors import ErrorFamily
from pepharness.mocks.core.faults import FaultRegistry
from pepharness.mocks.core.journal import Journal
from pepharness.mocks.core.ratelimit import RateLimiter
from pepharness.mocks.core.state import (
    SharedClock,
    SharedFaults,
    SharedJournal,
    SharedRateLimiter,
    SharedState,
)

MAX_BODY_BYTES = 1024 * 1024

CORE_DEFAULTS: dict[str, Any] = {
    "SEED": 42,
    "ANCHOR": None,
    "ADMIN": True,
    "JOURNAL_SIZE": 1000,
    "CLOCK": None,
    "STATE": None,
    "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
}
"""The config keys every mock takes: its own DEFAULTS start from these."""


class Backend(Protocol):
    """A mock's state, rebuilt from its seed by `reset` (`POST /__admin/reset`)."""

    def reset(self) -> None: ...


B = TypeVar("B")


def backend_extension(service: str) -> str:
    """The `app.extensions` key a mock's backend is kept under."""
    return f"pepharness.{service}"


class MockFlask(Flask):
    """Flask, deciding once per function whether a hook or view is a coroutine: Flask asks
    `inspect` for every hook and view of every request (D182)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synced: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._synced[func]
        except KeyError:
            synced = self._synced[func] = super().ensure_sync(func)
            return synced
        except TypeError:  # an unhashable callable: asked every time, as Flask does
            return super().ensure_sync(func)


def new_app(
    import_name: str, defaults: Mapping[str, Any], config: Mapping[str, Any] | None
) -> tuple[Flask, Clock]:
    """A Flask app configured with `defaults` overridden by `config`, and the clock it reads
    (CLOCK, else real time; shared by the workers of STATE, a `SharedState`, when given)."""
    app = MockFlask(import_name)
    app.config.from_mapping(defaults)
    if config is not None:
        app.config.from_mapping(config)
    state = app.config["STATE"]
    clock: Clock = app.config["CLOCK"] or (Clock() if state is None else SharedClock(state))
    return app, clock


def install_mock(
    app: Flask,
    service: str,
    backend: Backend,
    errors: ErrorFamily,
    clock: Clock,
    blueprints: Iterable[Blueprint],
    admin_routes: Iterable[Callable[[Blueprint], None]] = (),
    *,
    rate_limiter: RateLimiter | None = None,
) -> MockCore:
    """Wire `backend` into `app` as `service`: the core (journal, faults, `/__admin` when ADMIN,
    with `admin_routes`), the API's errors, the backend (see `backend_in`), then `blueprints`."""
    state: SharedState | None = app.config["STATE"]
    faults, journal = FaultRegistry(app.config["SEED"]), Journal(app.config["JOURNAL_SIZE"])
    if state is not None:  # served by several processes (D198)
        faults = SharedFaults(state, app.config["SEED"])
        journal = SharedJournal(state, app.config["JOURNAL_SIZE"])
        if rate_limiter is not None:
            rate_limiter = SharedRateLimiter(
                state, clock, rate_limiter.limit, rate_limiter.period_seconds
            )
    core = MockCore(
        service,
        clock=clock,
        faults=faults,
        journal=journal,
        rate_limiter=rate_limiter,
        reset=backend.reset,
    )
    install_core(app, core, admin=bool(app.config["ADMIN"]), admin_routes=admin_routes)
    errors.install(app, logger=core.logger)
    app.extensions[backend_extension(service)] = backend
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return core


def backend_in(app: Flask | None, service: str, kind: type[B], what: str) -> B:
    """The `kind` backend `install_mock` kept in `app` (the current app by default); `what`
    names the mock in the error ("a Sinatra app")."""
    backend = (app or current_app).extensions.get(backend_extension(service))
    if not isinstance(backend, kind):
        raise LookupError(f"not {what}: build it with create_app()")
    return backend
