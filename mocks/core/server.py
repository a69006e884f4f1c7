"""Serving the mocks on waitress: blocking until SIGINT/SIGTERM, or in a thread for tests.

A request asking for a protocol upgrade (`Connection: upgrade` with an `Upgrade` header) is
offered its connection (D86): `environ[UPGRADE_SOCKET]` is a duplicate of the socket.
An app that answers over HTTP leaves it unused and waitress answers as usual; once the app
has sent on it (a `101 Switching Protocols`, e.g. the Socket.IO WebSocket transport), the
connection is the app's until it returns, on a thread of its own, and waitress only closes its
own descriptor: it writes no response and reads nothing more from that connection, and its
worker thread is free again.

Every request's `environ[TRANSPORT_FAULT]` is a callable the fault middleware calls with a
transport fault (D101) to break this request's answer at the connection: `connection_reset`
drops the answer and resets the connection (SO_LINGER 0, then close: an RST), `empty_reply`
drops the answer and closes, `truncated_body` sends the status, the headers and the first
half of the body the Content-Length promises, then closes. Nothing is logged for them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import WSGITask

from pepharness.mocks.core.admin import EXTENSION as CORE_EXTENSION
from pepharness.mocks.core.faults import (
    CONNECTION_FAULTS,
    CONNECTION_RESET,
    TRANSPORT_FAULT,
    TRUNCATED_BODY,
)

DEFAULT_THREADS = 8
GRACE_SECONDS = 5.0
JOINED_BODY_BYTES = 64 * 1024
"""The largest body sent in one piece with its head (D232): copying more costs more than the
second `send` saves."""
_POLL_SECONDS = 0.5

UPGRADE_SOCKET = "pepharness.upgrade_socket"
# A taken-over connection that neither sends nor receives for this long is closed
# (Engine.IO pings every 25 s, so only a dead peer gets there).
UPGRADED_IDLE_SECONDS = 3600.0

logger = logging.getLogger("pepharness.server")
# waitress warns "Task queue depth is N" whenever a request waits for a free thread: load, not a
# fault, and noise on the stderr of every command that serves (a one-line-error CLI included).
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class HandedSocket(socket.socket):
    """A duplicate of a connection's socket (with a timeout, so blocking calls), offered to
    the app of an upgrade request; `used` once the app sent anything on it, `decided` set
    then or when the app is done without it."""

    used = False

    @classmethod
    def of(cls, own: socket.socket) -> HandedSocket:
        handed = cls(own.family, own.type, own.proto, fileno=os.dup(own.fileno()))
        # A timeout, not blocking mode: O_NONBLOCK is shared with waitress's own descriptor.
        handed.settimeout(UPGRADED_IDLE_SECONDS)
        handed.decided = threading.Event()
        return handed

    decided: threading.Event

    def send(self, data: Any, flags: int = 0) -> int:
        self._take()
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._take()
        super().sendall(data, flags)

    def _take(self) -> None:
        if not self.used:
            self.used = True
            self.decided.set()


class _Handovers:
    """The connections a server group's apps have taken over, to end them on shutdown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[HandedSocket] = set()
        self.closing = False

    def add(self, sock: HandedSocket) -> None:
        with self._lock:
            self._live.add(sock)

    def end(self, sock: HandedSocket) -> None:
        """Shut `sock` down (waking a thread blocked reading it) and close it."""
        with self._lock:
            self._live.discard(sock)
        if sock.used:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def end_all(self) -> None:
        with self._lock:
            self.closing = True
            live = list(self._live)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _wants_upgrade(environ: dict[str, Any]) -> bool:
    tokens = {t.strip().lower() for t in str(environ.get("HTTP_CONNECTION", "")).split(",")}
    return "upgrade" in tokens and bool(str(environ.get("HTTP_UPGRADE", "")).strip())


class _UpgradeTask(WSGITask):
    """waitress's WSGI task, offering the connection to the app of an upgrade request, and
    breaking an answer at the connection when the app asks for a transport fault."""

    handovers: _Handovers
    _handed: HandedSocket | None = None
    _transport_fault: str | None = None
    _body_sent = 0

    def _break_answer(self, fault: str) -> None:
        if fault not in CONNECTION_FAULTS:
            raise ValueError(f"not a connection fault: {fault!r}")
        self._transport_fault = fault
        # A file the app would hand to waitress's own file wrapper goes through `write`.
        self.get_environment().pop("wsgi.file_wrapper", None)

    def execute(self) -> None:
        environ = self.get_environment()  # cached: the parent's execute() reuses it
        environ[TRANSPORT_FAULT] = self._break_answer
        own = self.channel.socket
        if own is None or not _wants_upgrade(environ) or self.handovers.closing:
            super().execute()
            return
        handed = HandedSocket.of(own)
        self._handed = handed
        self.handovers.add(handed)
        environ[UPGRADE_SOCKET] = handed
        outcome: list[BaseException | None] = []

        def run() -> None:
            error: BaseException | None = None
            try:
                WSGITask.execute(self)
            except BaseException as caught:  # handed back below, or logged
                error = caught
            outcome.append(error)
            handed.decided.set()
            if handed.used:
                self._upgraded_ended(handed, error)

        # The app runs on a thread of its own: once it has taken the connection (its `101`),
        # this worker goes back to waitress, and the upgraded connection holds none of its
        # threads for as long as it lasts.
        threading.Thread(target=run, name="pepharness-upgrade", daemon=True).start()
        handed.decided.wait()
        if handed.used:
            self.close_on_finish = True
            return
        self.handovers.end(handed)
        if outcome[0] is not None:
            raise outcome[0]

    def _upgraded_ended(self, handed: HandedSocket, error: BaseException | None) -> None:
        # StopIteration: simple-websocket's way to say its WebSocket ended (as on gunicorn).
        if error is not None and not isinstance(error, StopIteration):
            # No HTTP answer can follow a protocol switch: the server's log is all there is.
            logger.error("the app of an upgraded connection failed", exc_info=error)
        self.handovers.end(handed)

    def write(self, data: bytes) -> None:
        if self._handed is not None and self._handed.used:
            return  # the connection spoke another protocol: no HTTP response on it
        fault = self._transport_fault
        if fault is None:
            if not self._header_with_body(data):
                super().write(data)
            return
        if not self.complete:
            raise RuntimeError("start_response was not called before body written")
        if fault == TRUNCATED_BODY:
            self._write_truncated(data)
        # Counted as written, so waitress neither warns of too few bytes nor adds its own close.
        self.content_bytes_written += len(data)

    def _header_with_body(self, data: bytes) -> bool:
        """The head and a whole small body in one `write_soon` (one `send`), where waitress's
        own `write` sends the head, then the body: each send lets the GIL go and takes it back
        (D232). Only a first write holding the whole Content-Length body, up to
        `JOINED_BODY_BYTES`; anything else is waitress's."""
        if self.wrote_header or not self.complete or not data or not self.has_body:
            return False
        # A Content-Length of the body's size: never chunked (only an answer without one is).
        if self.content_length != len(data) or len(data) > JOINED_BODY_BYTES:
            return False
        head = self.build_response_header()
        self.wrote_header = True
        self.content_bytes_written += len(data)
        self.channel.write_soon(head + data)
        return True

    def _write_truncated(self, data: bytes) -> None:
        if not self.wrote_header:
            self.channel.write_soon(self.build_response_header())
            self.wrote_header = True
        if not data or not self.has_body:
            return
        if self.chunked_response:
            # One chunk announced whole and sent by half; no other chunk, no last chunk.
            if self._body_sent == 0:
                self._body_sent = len(data)
                size = hex(len(data))[2:].upper().encode("latin-1")
                self.channel.write_soon(size + b"\r\n" + data[: len(data) // 2])
            return
        cut = (self.content_length or 0) // 2
        part = data[: max(0, cut - self._body_sent)]
        self._body_sent += len(data)
        if part:
            self.channel.write_soon(part)

    def finish(self) -> None:
        if self._handed is not None and self._handed.used:
            return
        fault = self._transport_fault
        if fault is None:
            super().finish()
            return
        if fault == TRUNCATED_BODY and not self.wrote_header:
            self._write_truncated(b"")
        if fault == CONNECTION_RESET and self.channel.socket is not None:
            # Linger on, timeout 0: closing the socket sends an RST, not a FIN.
            with contextlib.suppress(OSError):
                self.channel.socket.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
        self.close_on_finish = True


class _UpgradeChannel(HTTPChannel):
    """waitress's channel, with `_UpgradeTask`s, not polled for writing while a task thread
    is inside `write_soon` (D224).

    A task appends its answer to the out buffer and sends it itself, holding the buffer's
    lock; the `send` lets the GIL go, and waitress's loop, seeing bytes in the buffer, polled
    the connection writable, found the lock taken and polled again: about 130 turns of the
    loop per answer, each taking the GIL from the task threads. While the task writes, the
    loop now leaves the connection alone; what the task could not send is the loop's again
    once `write_soon` returns (and at once above the high watermark, where the task waits for
    the loop to flush, or when the connection is to close)."""

    task_class = _UpgradeTask
    _task_writing = False

    def write_soon(self, data: Any) -> int:
        self._task_writing = True
        try:
            return int(super().write_soon(data))
        finally:
            self._task_writing = False

    def writable(self) -> bool:
        if (
            self._task_writing
            and not (self.will_close or self.close_when_flushed)
            and self.total_outbufs_len <= self.adj.outbuf_high_watermark
        ):
            return False
        return bool(super().writable())


class ServeError(Exception):
    """A server could not start (e.g. its port is taken); the message is one line."""


def _listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except (OSError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ServeError(f"cannot listen on {where}: {reason}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ServeError(f"cannot listen on {where}: {error.strerror or error}") from None
    return sock


def _listen_all(
    apps: Sequence[tuple[ServedApp, str, int]], *, reuse_port: bool = False
) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for _, host, port in apps:
            sockets.append(_listen(host, port, reuse_port=reuse_port))
    except ServeError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


WORKER_INDEX = 0
"""This process's index among the workers serving (0 in a process serving alone): the PEP of a
sandbox, built by a worker on first sight, is that worker's (D223)."""


@dataclass(frozen=True)
class WorkerApp:
    """An app each worker builds for itself after the fork (`build(index)`, the worker's
    index from 0), for an app running threads of its own, which a fork does not copy (the
    PEP's engine and Socket.IO, D207); one process builds it with index 0."""

    name: str
    build: Callable[[int], Flask]


ServedApp = Flask | WorkerApp


def _built(apps: Sequence[tuple[ServedApp, str, int]], index: int) -> list[tuple[Flask, str, int]]:
    return [
        (app.build(index) if isinstance(app, WorkerApp) else app, host, port)
        for app, host, port in apps
    ]


def _name(app: Flask | WorkerApp) -> str:
    if isinstance(app, WorkerApp):
        return app.name
    core = app.extensions.get(CORE_EXTENSION)
    return str(getattr(core, "service", app.name))


class _ServerGroup:
    """Waitress servers sharing one socket map, run by one loop in one thread."""

    def __init__(
        self,
        apps: Sequence[tuple[Flask, str, int]],
        threads: int,
        bound: Sequence[socket.socket] | None = None,
    ) -> None:
        self.map: dict[int, Any] = {}
        self.servers: list[Any] = []
        self.urls: list[str] = []
        self._stopping = threading.Event()
        self.handovers = _Handovers()
        task = type("UpgradeTask", (_UpgradeTask,), {"handovers": self.handovers})
        channel = type("UpgradeChannel", (_UpgradeChannel,), {"task_class": task})
        sockets = list(bound) if bound is not None else _listen_all(apps)
        for (app, _, _), sock in zip(apps, sockets, strict=True):
            try:
                server = create_server(
                    app, map=self.map, sockets=[sock], threads=threads, ident="pepharness"
                )
            except BaseException:
                self._close()
                for unused in sockets[len(self.servers) :]:
                    unused.close()
                raise
            # One server per socket: a BaseWSGIServer (a MultiSocketServer only for several
            # sockets), whose channels are `channel`.
            assert isinstance(server, BaseWSGIServer), type(server)
            server.channel_class = channel
            self.servers.append(server)
            # The numeric address it listens on, as waitress' own `effective_host/_port`.
            host, numeric_port = server.getsockname()
            port = int(numeric_port)
            self.urls.append(_url(host, port))
            if bound is None:  # a worker's sockets were announced by its parent
                logger.info("%s listening on %s", _name(app), self.urls[-1])

    def run(self) -> None:
        """Serve until `stop()`, then close: stop accepting, finish and flush what is in
        flight (for at most GRACE_SECONDS), close every connection."""
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=_POLL_SECONDS, map=self.map, count=1)
        finally:
            self._close()

    def stop(self) -> None:
        """Ask `run()` to return; safe from another thread or a signal handler."""
        self._stopping.set()
        for server in self.servers:
            # The loop may have woken by itself, seen the flag and closed its trigger already.
            with contextlib.suppress(OSError):
                server.pull_trigger()

    def _close(self) -> None:
        deadline = time.monotonic() + GRACE_SECONDS
        # A taken-over connection (a WebSocket) holds its worker until it ends: end it.
        self.handovers.end_all()
        for server in self.servers:
            # Stop accepting, but keep the server's trigger open: the worker threads still
            # finishing a request pull it to hand their answer to this loop (waitress's own
            # `close()` closes it first, and a late answer then dies on a closed descriptor).
            wasyncore.dispatcher.close(server)
        for server in self.servers:
            server.task_dispatcher.shutdown(timeout=max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(c.writable() for c in self.map.values()):
            wasyncore.loop(timeout=0.05, map=self.map, count=1)
        wasyncore.close_all(self.map, ignore_all=True)


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        logger.info("%s: shutting down", signal.Signals(signum).name)
        stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class WorkerHook:
    """What `serve_many(workers=N)` does around its forks for a thread of the parent (the
    access log's writer): stop it before forking (a fork copies the locks it holds, not the
    thread), start it again after, and in each worker, `in_worker` around its serving."""

    before_fork: Callable[[], None]
    after_fork: Callable[[], None]
    in_worker: Callable[[], AbstractContextManager[object]]


WORKER_HOOKS: list[WorkerHook] = []


def _worker(
    apps: Sequence[tuple[ServedApp, str, int]],
    threads: int,
    held: Sequence[socket.socket],
    ready: int,
    index: int,
) -> None:
    """A forked worker (number `index`): build its `WorkerApp`s, serve the ports `held` holds
    until SIGTERM or SIGINT, then exit; one byte on the pipe `ready` once it listens on them
    all."""
    global WORKER_INDEX
    WORKER_INDEX = index
    code = 0
    try:
        # Ctrl-C reaches the whole process group: the parent stops the workers, in order (also
        # one still building its apps).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.ExitStack() as stack:
            for hook in list(WORKER_HOOKS):
                stack.enter_context(hook.in_worker())
            built = _built(apps, index)
            sockets = [_reuse(sock) for sock in held]
            group = _ServerGroup(built, threads, sockets)  # listening
            os.write(ready, b".")
            os.close(ready)
            with _stop_on_signals(group.stop):
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # _stop_on_signals set it
                group.run()
    except BaseException:
        logger.exception("a worker failed")
        code = 1
    finally:
        os._exit(code)  # none of the parent's exit handlers: they are the parent's


def _serve_workers(
    apps: Sequence[tuple[ServedApp, str, int]],
    threads: int,
    on_ready: Callable[[list[str]], None] | None,
    workers: int,
) -> None:
    """Bind every port, fork `workers` processes that each listen on every port with
    SO_REUSEPORT (the kernel spreads the connections over them by their addresses), call
    `on_ready`, then wait for a signal (or a worker's end) and stop them."""
    # First without SO_REUSEPORT, so that a port another server holds (even one with workers,
    # whose sockets all allow sharing) is a ServeError, as with one worker; port 0 picks here.
    probes = _listen_all(apps)
    picked = [
        (app, host, int(probe.getsockname()[1]))
        for (app, host, _), probe in zip(apps, probes, strict=True)
    ]
    for probe in probes:
        probe.close()
    # Bound, never listening: the parent holds each port for its workers.
    sockets = _listen_all(picked, reuse_port=True)
    try:
        urls = []
        for sock in sockets:
            host, port = sock.getsockname()[:2]
            urls.append(_url(host, int(port)))
        pids: list[int] = []
        hooks = list(WORKER_HOOKS)
        for hook in hooks:
            hook.before_fork()
        readable, ready = os.pipe()
        try:
            for index in range(workers):
                pid = os.fork()
                if pid == 0:
                    os.close(readable)
                    _worker(apps, threads, sockets, ready, index)
                pids.append(pid)
        finally:
            os.close(ready)
            for hook in hooks:
                hook.after_fork()
        try:
            _wait_listening(readable, workers)
        except BaseException:
            _stop_workers(pids)
            raise
        for (app, _, _), url in zip(apps, urls, strict=True):
            logger.info("%s listening on %s (%d workers)", _name(app), url, workers)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    stopping = threading.Event()
    try:
        with _stop_on_signals(stopping.set):
            if on_ready is not None:
                on_ready(urls)
            while not stopping.wait(_POLL_SECONDS):
                if any(os.waitpid(pid, os.WNOHANG)[0] for pid in pids):
                    logger.error("a worker ended: stopping the others")
                    break
    finally:
        _stop_workers(pids)
        for sock in sockets:
            sock.close()


def _wait_listening(readable: int, workers: int) -> None:
    """Until every worker said it listens (a connection before would be refused); ServeError
    when one ended first."""
    with os.fdopen(readable, "rb") as pipe:
        said = b""
        while len(said) < workers:
            chunk = pipe.read(workers - len(said))
            if not chunk:  # every writer closed: a worker ended before it listened
                raise ServeError(f"{workers - len(said)} of {workers} workers failed to start")
            said += chunk


def _reuse(held: socket.socket) -> socket.socket:
    """A worker's own listening socket on the port `held` holds."""
    sock = socket.socket(held.family, held.type, held.proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(held.getsockname())
    held.close()
    return sock


def _stop_workers(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS + 1
    for pid in pids:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)


def serve_many(
    apps: Sequence[tuple[ServedApp, str, int]],
    *,
    threads: int = DEFAULT_THREADS,
    on_ready: Callable[[list[str]], None] | None = None,
    workers: int = 1,
) -> None:
    """Serve each (app, host, port) until SIGINT or SIGTERM, then shut down cleanly.

    Every port is bound before any request is served: if one is taken, none is served and
    `ServeError` says which. Once all are bound, `on_ready` gets their base URLs (in the order
    of `apps`; port 0 shows the port picked). Signals are only caught when called from the
    main thread. With `workers` > 1, that many forked processes serve every port (D201); the
    apps must keep their state in a `SharedState` to behave as one.
    """
    if not apps:
        raise ValueError("nothing to serve")
    if workers > 1:
        _serve_workers(apps, threads, on_ready, workers)
        return
    group = _ServerGroup(_built(apps, 0), threads)
    with _stop_on_signals(group.stop):
        if on_ready is not None:
            try:
                on_ready(list(group.urls))
            except BaseException:
                group.stop()
                group.run()  # stopped: returns at once, closing every socket
                raise
        group.run()


def serve(
    app: Flask,
    host: str,
    port: int,
    *,
    threads: int = DEFAULT_THREADS,
    on_ready: Callable[[list[str]], None] | None = None,
) -> None:
    """Serve `app` on host:port until SIGINT or SIGTERM, then shut down cleanly."""
    serve_many([(app, host, port)], threads=threads, on_ready=on_ready)


class ThreadedServer:
    """`app` served in a background thread, for tests: port 0 picks a free port.

        with ThreadedServer(create_app(config)) as server:
            requests.get(f"{server.url}/__admin/health")
    """

    def __init__(
        self, app: Flask, host: str = "127.0.0.1", port: int = 0, *, threads: int = 4
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.threads = threads
        self._group: _ServerGroup | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        if self._group is None:
            raise RuntimeError("the server is not started")
        return self._group.urls[0]

    def _served(self) -> Sequence[tuple[Flask, str, int]]:
        return [(self.app, self.host, self.port)]

    @property
    def urls(self) -> list[str]:
        """Every app's base URL, in order."""
        if self._group is None:
            raise RuntimeError("the server is not started")
        return list(self._group.urls)

    def start(self) -> ThreadedServer:
        """Bind (raising `ServeError` when the port is taken) and start serving."""
        if self._group is not None:
            raise RuntimeError("the server is already started")
        group = _ServerGroup(self._served(), self.threads)
        self._group = group
        self._thread = threading.Thread(
            target=group.run, name=f"pepharness-{_name(self.app)}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end; a no-op when not started."""
        group, thread = self._group, self._thread
        self._group = self._thread = None
        if group is not None:
            group.stop()
        if thread is not None:
            thread.join(GRACE_SECONDS + 1)

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadedServers(ThreadedServer):
    """Several (app, host, port) served by one loop in a background thread, as `serve all`
    serves them, for tests: `urls` in the order given."""

    def __init__(self, apps: Sequence[tuple[Flask, str, int]], *, threads: int = 4) -> None:
        if not apps:
            raise ValueError("nothing to serve")
        app, host, port = apps[0]
        super().__init__(app, host, port, threads=threads)
        self.apps = list(apps)

    def _served(self) -> Sequence[tuple[Flask, str, int]]:
        return self.apps
