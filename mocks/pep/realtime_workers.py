"""Socket.IO when several worker processes serve the PEP (`serve pep --workers N`, D209-D211).

A Socket.IO session lives in the process that opened it. Two things make N processes answer
as one:

- **Every session has an owner.** The Engine.IO session id a worker makes starts with its
  index (`1.` + python-engineio's own id). A `/socket.io/` request naming another worker's
  session (the kernel spreads new connections over the workers, so a long-polling client's
  next request, or its WebSocket upgrade, may land anywhere) is forwarded to its owner, on the
  owner's private loopback port: a plain request as an HTTP request whose answer is handed
  back; a WebSocket upgrade as a byte relay between the connection the server handed over and
  one opened to the owner. Each worker lists its private port in the shared state.
- **Every emit reaches every worker.** The Socket.IO server's client manager is a
  `socketio.PubSubManager` over Unix datagram sockets in the shared state's folder, one per
  worker: an emit is delivered to this worker's connections and sent to every other worker,
  whose listening thread delivers it to theirs. The engine's push for a player thus reaches
  their connection whatever worker applied the event.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote

import engineio
import socketio

from pepharness.mocks.core.server import UPGRADE_SOCKET, UPGRADED_IDLE_SECONDS, ThreadedServer
from pepharness.mocks.core.state import SharedState

logger = logging.getLogger("pepharness.pep.realtime")

SID_SEPARATOR = "."
PORT_RECORD = "pep-worker-port"
PRIVATE_PORT_EXTENSION = "pepharness.pep.private_port"
# A long-polling GET waits up to Engine.IO's ping interval (25 s) for something to send.
FORWARD_TIMEOUT_SECONDS = 60.0
PRIVATE_THREADS = 16
_DATAGRAM_BYTES = 4 * 1024 * 1024
_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade",
}


def owner_of(sid: str) -> int | None:
    """The index of the worker that made Engine.IO session `sid` (None: not a worker's)."""
    head, separator, _ = sid.partition(SID_SEPARATOR)
    return int(head) if separator and head.isdigit() else None


class WorkerBus(socketio.PubSubManager):  # type: ignore[misc]
    """python-socketio's pub/sub client manager over one Unix datagram socket per worker in
    `folder`: `_publish` sends a message (JSON) to every other worker, `_listen` yields what
    the others sent (D210)."""

    name = "pepharness-workers"

    def __init__(self, folder: str, index: int) -> None:
        super().__init__(channel="pep")
        self._folder = folder
        self._own = self._path(index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._own)
        self._inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._inbox.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _DATAGRAM_BYTES)
        self._inbox.bind(self._own)
        self._outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._outbox.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _DATAGRAM_BYTES)
        # A full inbox (10 datagrams by default) makes the sender wait: back-pressure, not loss.
        self._outbox.settimeout(60.0)
        self._send_lock = threading.Lock()

    def _path(self, index: int) -> str:
        return os.path.join(self._folder, f"pep-bus-{index}.sock")

    def _publish(self, data: Any) -> None:
        raw = json.dumps(data).encode()
        with self._send_lock:
            for path in sorted(glob.glob(os.path.join(self._folder, "pep-bus-*.sock"))):
                if path == self._own:
                    continue
                try:
                    self._outbox.sendto(raw, path)
                except OSError as error:  # a worker gone (the others are stopping too)
                    logger.warning("a Socket.IO message to %s was lost: %s", path, error)

    def _listen(self) -> Iterator[str]:
        while True:
            yield self._inbox.recv(_DATAGRAM_BYTES).decode()


def worker_server(index: int, folder: str, **options: Any) -> socketio.Server:
    """A threading-mode `socketio.Server` whose Engine.IO session ids start with `index.` and
    whose emits reach every worker's connections (its bus listening at once)."""

    class OwnedIds(engineio.Server):  # type: ignore[misc]
        def generate_id(self) -> str:
            return f"{index}{SID_SEPARATOR}{super().generate_id()}"

    class WorkerServer(socketio.Server):  # type: ignore[misc]
        def _engineio_server_class(self) -> type[engineio.Server]:
            return OwnedIds

    bus = WorkerBus(folder, index)
    server = WorkerServer(client_manager=bus, **options)
    # Listening before the first connection: another worker's emits never wait on this one.
    server.manager_initialized = True
    bus.initialize()
    return server


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SidRouter:
    """WSGI middleware in front of Socket.IO: a `/socket.io/` request naming another worker's
    session is answered by that worker (D209); anything else passes through."""

    def __init__(self, app: WsgiApp, state: SharedState, index: int, path: str) -> None:
        self.app = app
        self.state = state
        self.index = index
        self.prefix = "/" + path.strip("/") + "/"
        self._ports: dict[int, int] = {}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        owner = self._owner(environ)
        if owner is None or owner == self.index:
            return self.app(environ, start_response)
        port = self._port(owner)
        if port is None:  # not a worker of this server: Engine.IO's own answer
            return self.app(environ, start_response)
        handed = environ.get(UPGRADE_SOCKET)
        if handed is not None and environ.get("HTTP_UPGRADE"):
            return self._relay(environ, start_response, handed, port)
        return self._forward(environ, start_response, port)

    def _owner(self, environ: dict[str, Any]) -> int | None:
        if not str(environ.get("PATH_INFO", "")).startswith(self.prefix):
            return None
        sids = parse_qs(str(environ.get("QUERY_STRING", ""))).get("sid")
        return owner_of(sids[0]) if sids else None

    def _port(self, owner: int) -> int | None:
        if owner not in self._ports:
            with self.state.lock:
                records = self.state.records(PORT_RECORD)
            self._ports.update({int(r["index"]): int(r["port"]) for r in records})
        return self._ports.get(owner)

    def _forward(
        self, environ: dict[str, Any], start_response: Callable[..., Any], port: int
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else None
        headers = {
            name: value for name, value in _headers(environ) if name.lower() not in _HOP_BY_HOP
        }
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=FORWARD_TIMEOUT_SECONDS)
        try:
            connection.request(environ["REQUEST_METHOD"], _target(environ), body, headers)
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as error:
            logger.warning("forwarding a Socket.IO request to its worker failed: %s", error)
            start_response("400 BAD REQUEST", [("Content-Type", "text/plain")])
            return [json.dumps("Invalid session").encode()]
        finally:
            connection.close()
        kept = [
            (name, value) for name, value in answer.getheaders()
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
        ]
        start_response(f"{answer.status} {answer.reason}", kept)
        return [data]

    def _relay(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        handed: socket.socket,
        port: int,
    ) -> list[bytes]:
        """The upgrade request sent to the owner as it came, then bytes both ways until either
        side ends (the owner's `101` is the first thing the client gets)."""
        lines = [f"{environ['REQUEST_METHOD']} {_target(environ)} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in _headers(environ)]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10.0)
        except OSError as error:
            logger.warning("relaying a WebSocket upgrade to its worker failed: %s", error)
            start_response("400 BAD REQUEST", [("Content-Type", "text/plain")])
            return [json.dumps("Invalid session").encode()]
        upstream.settimeout(UPGRADED_IDLE_SECONDS)
        try:
            upstream.sendall(head)
            back = threading.Thread(
                target=_pipe, args=(upstream, handed), name="pepharness-relay", daemon=True
            )
            back.start()
            _pipe(handed, upstream)
            back.join()
        finally:
            upstream.close()
        return []


def _pipe(source: socket.socket, target: socket.socket) -> None:
    """Copy `source` to `target` until `source` ends, then end both ways of both."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (target, source):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            found.append((key[5:].replace("_", "-").title(), str(value)))
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            found.append((name, str(environ[key])))
    return found


def _target(environ: dict[str, Any]) -> str:
    """The request's target as the app itself sees it: the owner's private port serves that
    very app (a sandbox's own copy, whose `/__sandbox/<id>` prefix is SCRIPT_NAME here, D223)."""
    path = quote(str(environ.get("PATH_INFO", "")))
    query = str(environ.get("QUERY_STRING", ""))
    return path + ("?" + query if query else "")


def open_private_port(app: Any, state: SharedState, index: int) -> ThreadedServer:
    """Serve `app` on a loopback port of its own too, listed in the shared state: where the
    other workers forward the requests of this worker's sessions."""
    private = ThreadedServer(app, "127.0.0.1", 0, threads=PRIVATE_THREADS).start()
    port = int(private.url.rsplit(":", 1)[1])
    with state.lock:
        state.add_record(PORT_RECORD, {"index": index, "port": port})
    return private
