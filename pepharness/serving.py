"""The mocks `pepharness serve` can start: each one's default port, app factory and banner."""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

from flask import Flask

from pepharness.fixtures import (
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    RESTRICTED_EMAIL,
    RESTRICTED_PASSWORD,
    SEEDED_OPERATOR_ID,
    generate,
)
from pepharness.mocks.core.admin import SANDBOX_ENVIRON
from pepharness.mocks.core.sandbox import Cleanup, Sandbox, SandboxRegistry, install_sandboxes
from pepharness.mocks.core.server import WORKER_HOOKS, WorkerApp, WorkerHook
from pepharness.mocks.core.state import SharedState, state_folder
from pepharness.mocks.core.state_sandbox import SharedSandboxRegistry
from pepharness.mocks.core.traffic import TrafficWriter, install_traffic


@dataclass(frozen=True)
class ServeOptions:
    """The `serve` options every mock understands."""

    seed: int = 42
    rounds: int = 4000
    rate_limit: tuple[int, float] = (5, 1.0)
    admin: bool = True
    operator_url: str | None = None
    """The operator API the PEP calls; None: the operator mock's default address."""
    database: str | None = None
    """The PEP's SQLite file or SQLAlchemy URL; None: a new temporary file."""
    engine_config: str | None = None
    """The PEP's reactive-engine YAML (segments, missions, levels…); None: the shipped one."""
    secret: str | None = None
    """The key signing Sinatra's and the PEP's tokens; None: derived from the seed (a sandbox
    has a key of its own, D129)."""
    workers: int = 1
    """The processes serving each mock (D201); more than one share the mock's state (D197)."""
    state_dir: str | None = None
    """Where the workers' shared state lives (set by `served` when workers > 1)."""
    state_attach: bool = False
    """The state in `state_dir` is opened by path in a worker after the fork (a sandbox's
    copy, D218)."""
    anchor: datetime | None = None
    """The time the generated data ends at; None: the clock's now when the app is built (a
    sandbox's copies in several workers all take its creation time, D222)."""


WORKER_MOCKS = ("sinatra", "operator", "pep")
"""The mocks whose whole state is shared by several workers (D212); `serve` without --workers
serves another by one process (D220)."""


SINGLE_PROCESS_THREADS = 8
"""`serve --threads` with one process: what the process has for requests that wait (a latency
fault, a Socket.IO long-poll)."""
WORKER_THREADS = 4
"""`serve --threads` per worker with several (D225): the filtered catalog at --workers 2 answered
~1.45x the requests with 4 than with 8 (fewer threads passing one GIL between them), and the
workers together still hold 4N >= 8 threads for requests that wait."""


def default_workers(chosen: Sequence[Mock]) -> int:
    """`serve`'s --workers when not given (D220): the cores this process may use (its CPU
    affinity, at most 64), or 1 when a mock chosen is not in WORKER_MOCKS."""
    if any(spec.name not in WORKER_MOCKS for spec in chosen):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        cores = os.cpu_count() or 1
    return max(1, min(cores, 64))


@dataclass(frozen=True)
class Mock:
    """A servable mock: how to build it from the options, and what to tell the user about it."""

    name: str
    default_port: int
    build: Callable[[ServeOptions], Flask]
    banner: Callable[[ServeOptions], list[str]]
    traffic_keys: tuple[str, ...] = ()
    """The JSON request-body fields `--traffic` keeps (idempotency keys, D104)."""
    traffic_answer_keys: tuple[str, ...] = ()
    """The integer fields of a JSON answer `--traffic` keeps (a page's `total_count`, D105)."""
    traffic_answer_strings: tuple[str, ...] = ()
    """The string fields of a JSON answer `--traffic` keeps (the data fetch's `next`, D114)."""
    traffic_user_fields: tuple[str, ...] = ()
    """The JSON request-body fields naming a user, kept as a digest (the login's email, D150)."""
    traffic_counts: tuple[tuple[str, str], ...] = ()
    """(path, list field) of the POST bodies whose size and item count `--traffic` keeps
    (the bulk sync's players, D152)."""


def _state(options: ServeOptions, name: str) -> SharedState | None:
    """The state `name`'s workers share, when there are several (D197)."""
    if options.state_dir is None:
        return None
    return SharedState(f"{options.state_dir}/{name}.sqlite3", attach=options.state_attach)


def _sinatra_app(options: ServeOptions) -> Flask:
    from pepharness.mocks import sinatra  # D187: a mock's modules when it is served

    config: dict[str, Any] = {
        "SEED": options.seed,
        "ROUNDS": options.rounds,
        "RATE_LIMIT": options.rate_limit,
        "ADMIN": options.admin,
        "SECRET": options.secret,
        "STATE": _state(options, "sinatra"),
        "ANCHOR": options.anchor,
    }
    return sinatra.create_app(config)


def _sinatra_banner(options: ServeOptions) -> list[str]:
    limit, period = options.rate_limit
    return [
        f"login {OPERATOR_EMAIL} / {OPERATOR_PASSWORD}"
        f" (every permission, operator {SEEDED_OPERATOR_ID})",
        f"login {RESTRICTED_EMAIL} / {RESTRICTED_PASSWORD} (no permission)",
        f"paginated history: HTTP Basic with the same credentials, {limit} per {period:g}s",
    ]


def _operator_app(options: ServeOptions) -> Flask:
    from pepharness.mocks import operator  # D187

    return operator.create_app({
        "SEED": options.seed, "ADMIN": options.admin, "STATE": _state(options, "operator"),
        "ANCHOR": options.anchor,
    })


def _operator_banner(options: ServeOptions) -> list[str]:
    player = generate(options.seed, anchor=datetime.now(UTC), rounds=0).players[0]
    return [
        "POST /api/auth/v1/player {identityToken}: every seeded player's token answers 200"
        " (GET /__admin/tokens lists them)",
        f"e.g. identityToken {player.identity_token} → playerId {player.player_id}",
    ]


def _operator_url(options: ServeOptions) -> str:
    from pepharness.mocks import pep

    return options.operator_url or pep.DEFAULT_OPERATOR_URL


def _database(options: ServeOptions) -> str | None:
    return options.database or None


def _pep_app(options: ServeOptions, state: SharedState | None = None, worker: int = 0) -> Flask:
    from pepharness.mocks import pep

    config: dict[str, Any] = {
        "SEED": options.seed,
        "ADMIN": options.admin,
        "OPERATOR_URL": _operator_url(options),
        "DATABASE": _database(options),
        "ENGINE_CONFIG": options.engine_config,
        "SECRET": options.secret,
        "ANCHOR": options.anchor,
        "STATE": state,
        "WORKER": worker,
    }
    return pep.create_app(config)


def _pep_in_workers(
    options: ServeOptions,
    writer: TrafficWriter | None,
    cleanups: ExitStack,
    registry: SandboxRegistry | None = None,
) -> WorkerApp:
    """The PEP as each worker builds it after the fork (its engine's and Socket.IO's threads
    are the worker's own), on one database made ready here: the user's, or a temporary SQLite
    file removed on exit; its shared state made here too, with the journal's ring (D207)."""
    from pepharness.mocks import pep
    from pepharness.mocks.core import CORE_DEFAULTS
    from pepharness.mocks.pep.engine import EngineConfig

    # Refused here, before the fork, as one process refuses it: one line, exit 2 (not
    # "N of N workers failed to start").
    EngineConfig.load(options.engine_config)
    if options.database is None:
        folder = tempfile.mkdtemp(prefix="pepharness-pep-")
        cleanups.callback(shutil.rmtree, folder, ignore_errors=True)
        options = replace(options, database=f"{folder}/pep.sqlite3")
    assert options.database is not None
    pep.prepare_database(options.database)
    state = _state(options, "pep")
    assert state is not None
    state.ring("journal", CORE_DEFAULTS["JOURNAL_SIZE"])
    spec = MOCKS["pep"]

    def build(index: int) -> Flask:
        app = _pep_app(options, state, index)
        if writer is not None:
            record_traffic(app, spec, writer)
        if registry is not None:
            install_sandboxes(app, registry, "pep")
        return app

    return WorkerApp("pep", build)


def _pep_banner(options: ServeOptions) -> list[str]:
    from pepharness.mocks import pep

    database = _database(options)
    return [
        f"API client {pep.DEMO_CLIENT_ID} / {pep.DEMO_CLIENT_SECRET} (frontend and platform)",
        "Platform token: POST /api/oauth/v1/token (client credentials); Socket.IO on "
        "/socket.io",
        "engine: " + (options.engine_config or "the shipped missions, segments and levels"),
        f"checks identity tokens with the operator at {_operator_url(options)}",
        "state: " + (database or "a new temporary SQLite file (GET /__admin/sessions names it)"),
    ]


MOCKS: dict[str, Mock] = {
    mock.name: mock
    for mock in (
        Mock("sinatra", 8101, _sinatra_app, _sinatra_banner, (), ("total_count",),
             traffic_user_fields=("email",)),
        Mock("operator", 8102, _operator_app, _operator_banner),
        Mock("pep", 8103, _pep_app, _pep_banner, ("transactionId", "playerId"), (), ("next",),
             traffic_counts=(("/api/players-data/v1/migrate/batch", "players"),)),
    )
}
"""Every mock that exists, in the order `serve all` starts them."""


def record_traffic(app: Flask, mock: Mock, writer: TrafficWriter) -> Flask:
    """`app` (built by `mock`) with every exchange appended to `writer` (`serve --traffic`)."""
    install_traffic(
        app, writer, mock=mock.name, keys=mock.traffic_keys, answer_keys=mock.traffic_answer_keys,
        answer_strings=mock.traffic_answer_strings, user_fields=mock.traffic_user_fields,
        counts=mock.traffic_counts,
    )
    return app


def _nothing() -> None:
    """The end of a sandbox's app that holds nothing outside the process."""


def _end_pep(app: Flask, folder: str | None) -> Cleanup:
    from pepharness.mocks import pep
    from pepharness.mocks.pep.engine import ENGINE_EXTENSION
    from pepharness.mocks.pep.realtime import realtime_of

    def end() -> None:
        realtime = realtime_of(app)
        if realtime is not None:
            realtime.server.shutdown()  # its Engine.IO service thread
        engine = app.extensions.get(ENGINE_EXTENSION)
        if engine is not None:
            engine.stop()
        pep.backend_of(app).store.close()
        if folder is not None:  # else the registry removes the sandbox's folder (D218)
            shutil.rmtree(folder, ignore_errors=True)

    return end


def _key(secret: str, mock: str) -> str:
    """Mock `mock`'s signing key in the sandbox whose registry drew `secret` (several workers:
    every worker's copy signs alike, each mock with a key of its own, D217)."""
    return hashlib.sha256(f"{secret}:{mock}".encode()).hexdigest()


def _sandbox_pep_in_worker(options: ServeOptions) -> Flask:
    """A sandbox's PEP as a worker builds its copy with several workers (D223): on the
    sandbox's one database (its tables made once, by the first copy), its state attached by
    path, and this worker's index, so the copy's Socket.IO sessions and emits cross workers as
    the default space's do (D209, D210)."""
    from pepharness.mocks import pep
    from pepharness.mocks.core import server

    state = _state(options, "pep")
    assert state is not None and options.database is not None
    with state.lock:
        pep.prepare_database(options.database)
    return _pep_app(options, state, server.WORKER_INDEX)


def _sandbox_builder(
    options: ServeOptions, writer: TrafficWriter | None
) -> Callable[[str, Sandbox], tuple[Flask, Cleanup]]:
    """How a sandbox's app of a mock is built: as the default one (D124), but the PEP on a new
    temporary SQLite file, calling the sandbox's operator when this process serves it and no
    --operator-url was given (D129)."""

    def build(name: str, sandbox: Sandbox) -> tuple[Flask, Cleanup]:
        spec = MOCKS[name]
        # A key of its own: a token one sandbox issued opens nothing in another (D129); with
        # several workers, the one the registry drew, so every worker's copy signs alike.
        key = secrets.token_hex(32) if sandbox.secret is None else _key(sandbox.secret, name)
        own, folder = replace(options, secret=key), None
        if sandbox.folder is not None:  # several workers: the copy's state in its folder (D218),
            # its data the same in every worker's copy, whenever each was built (D222)
            own = replace(
                own, state_dir=sandbox.folder, state_attach=True, anchor=sandbox.created
            )
        if name == "pep":
            # One process: a temporary folder of its own; several: the sandbox's (one file).
            folder = sandbox.folder or tempfile.mkdtemp(prefix=f"pepharness-sandbox-{sandbox.id}-")
            operator_url = options.operator_url
            if operator_url is None and "operator" in sandbox.urls:
                operator_url = sandbox.urls["operator"]
            own = replace(own, operator_url=operator_url, database=f"{folder}/pep.sqlite3")
        try:
            if name == "pep" and sandbox.folder is not None:
                app = _sandbox_pep_in_worker(own)
            else:
                app = spec.build(own)
        except BaseException:
            if folder is not None and sandbox.folder is None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        # Read by the Socket.IO connect record, which no request environ reaches (D130).
        app.extensions[SANDBOX_ENVIRON] = sandbox.id
        if writer is not None:
            record_traffic(app, spec, writer)
        if folder is not None:
            return app, _end_pep(app, None if sandbox.folder else folder)
        state = app.config.get("STATE")
        return app, (_nothing if state is None else state.close)

    return build


@dataclass
class Served:
    """What `serve` serves: each mock's (app, host, port), and the process's sandboxes
    (None with --no-admin). Give `ready` the base URLs once the ports are bound."""

    names: list[str]
    apps: list[tuple[Flask | WorkerApp, str, int]]
    sandboxes: SandboxRegistry | None = field(default=None)

    def ready(self, urls: Sequence[str]) -> None:
        if self.sandboxes is not None:
            self.sandboxes.bind(dict(zip(self.names, urls, strict=True)))


@contextmanager
def served(
    chosen: Sequence[Mock],
    options: ServeOptions,
    host: str,
    port: int | None,
    writer: TrafficWriter | None = None,
) -> Iterator[Served]:
    """The apps `serve` serves: each mock built from `options` (its traffic to `writer`), on
    `host` and `port` (None: each mock's default port), with the admin API the sandboxes'
    routes and dispatch (D124); every sandbox ends on exit. With several workers, their shared
    state is made here (its folder removed on exit), the sandboxes' registry in it (D217)."""
    folder = None
    if options.workers > 1:
        folder = tempfile.mkdtemp(prefix="pepharness-state-", dir=state_folder() or None)
        options = replace(options, state_dir=folder)
    registry = None
    if options.admin:
        build = _sandbox_builder(options, writer)
        # Several workers: one registry in their shared state, made before the fork (D217).
        registry = (
            SandboxRegistry(build) if folder is None else SharedSandboxRegistry(build, folder)
        )
    apps: list[tuple[Flask | WorkerApp, str, int]] = []
    cleanups = ExitStack()
    for spec in chosen:
        where = spec.default_port if port is None else port
        if options.workers > 1 and spec.name == "pep":
            apps.append((_pep_in_workers(options, writer, cleanups, registry), host, where))
            continue
        app = spec.build(options)
        if writer is not None:
            record_traffic(app, spec, writer)
        if registry is not None:
            install_sandboxes(app, registry, spec.name)
        apps.append((app, host, where))
    try:
        yield Served([spec.name for spec in chosen], apps, registry)
    finally:
        cleanups.close()
        if registry is not None:
            registry.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def access_log(stream: TextIO, *, quiet: bool = False) -> Iterator[None]:
    """INFO logging (one line per request) to `stream`, written by a thread of its own; with
    `quiet`, warnings and errors only (under load, the lines cost ~15 % of the throughput).

    The request threads only enqueue their records: a `StreamHandler` in those threads makes
    them queue on its lock around a write, and the serving loop starves — measured, a plain
    handler drops the filtered catalog from ~1,800 to ~240 req/s.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(records, handler)
    root = logging.getLogger()
    previous_level = root.level
    enqueue = QueueHandler(records)
    root.addHandler(enqueue)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    # Waitress warns "Task queue depth is N" whenever its threads are all busy: under load,
    # a line per request that says nothing about the requests.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    listener.start()

    @contextmanager
    def in_worker() -> Iterator[None]:
        listener.start()  # a fork copies no thread: each worker writes its own lines
        try:
            yield
        finally:
            listener.stop()

    hook = WorkerHook(listener.stop, listener.start, in_worker)
    WORKER_HOOKS.append(hook)
    try:
        yield
    finally:
        WORKER_HOOKS.remove(hook)
        root.removeHandler(enqueue)
        root.setLevel(previous_level)
        listener.stop()
