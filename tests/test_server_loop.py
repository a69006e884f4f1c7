"""The serving loop leaves a connection alone while its task writes (D224), and every answer
still arrives whole: past waitress's high watermark, to a slow reader, pipelined."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response
from waitress.adjustments import Adjustments

from pepharness.mocks.core.server import ThreadedServer, _UpgradeChannel


class _Server:
    """What a channel asks of its server."""

    def __init__(self) -> None:
        self.active_channels: dict[int, Any] = {}
        self.triggered = 0

    def pull_trigger(self) -> None:
        self.triggered += 1

    def add_task(self, channel: Any) -> None:
        raise AssertionError("no task is queued here")


Pair = tuple[_UpgradeChannel, socket.socket, threading.Event, threading.Event]


@pytest.fixture
def channel_pair() -> Iterator[Pair]:
    """A channel on one end of a socket pair whose `send` blocks until `release` is set,
    telling `sending` when it is inside the send (as a task thread is, the GIL let go)."""
    ours, theirs = socket.socketpair()
    sending, release = threading.Event(), threading.Event()
    channel = _UpgradeChannel(_Server(), ours, ("127.0.0.1", 0), Adjustments(), map={})
    plain_send = channel.send

    def send(data: bytes, do_close: bool = True) -> int:
        sending.set()
        assert release.wait(10)
        return int(plain_send(data, do_close=do_close))

    channel.send = send  # type: ignore[method-assign]
    channel.requests = ["a task runs"]  # type: ignore[list-item]
    yield channel, theirs, sending, release
    release.set()
    ours.close()
    theirs.close()


def test_a_connection_is_not_writable_while_its_task_sends(
    channel_pair: Pair,
) -> None:
    channel, theirs, sending, release = channel_pair
    writer = threading.Thread(target=channel.write_soon, args=(b"x" * 100,))
    writer.start()
    assert sending.wait(10)
    # waitress's own channel says writable here (100 bytes buffered) and its loop spins
    assert channel.total_outbufs_len == 100
    assert not channel.writable()
    release.set()
    writer.join(10)
    assert channel.total_outbufs_len == 0 and not channel.writable()
    assert theirs.recv(200) == b"x" * 100


def test_what_the_task_left_unsent_is_the_loops_again(
    channel_pair: Pair,
) -> None:
    channel, _, _, release = channel_pair
    release.set()
    channel.send = lambda data, do_close=True: 0  # type: ignore[method-assign]  # buffer full
    channel.write_soon(b"y" * 100)
    assert channel.total_outbufs_len == 100
    assert channel.writable()  # the task is out of write_soon: the loop flushes when it can


def test_a_closing_connection_stays_writable_during_a_send(
    channel_pair: Pair,
) -> None:
    channel, _, sending, release = channel_pair
    writer = threading.Thread(target=channel.write_soon, args=(b"z" * 10,))
    writer.start()
    assert sending.wait(10)
    channel.close_when_flushed = True
    assert channel.writable()
    release.set()
    writer.join(10)


BIG = 24 * 1024 * 1024  # past waitress's 16 MiB high watermark: the task waits for the loop


def _app() -> Flask:
    app = Flask("loop")
    block = hashlib.sha256(b"pep").digest() * 2048  # 64 KiB

    @app.get("/big")
    def big() -> Response:
        return Response(block * (BIG // len(block)), mimetype="application/octet-stream")

    @app.get("/stream")
    def stream() -> Response:
        def parts() -> Iterator[bytes]:
            for _ in range(BIG // len(block)):  # the task waits for the loop past 16 MiB
                yield block
        return Response(parts(), mimetype="application/octet-stream")

    @app.get("/n/<int:n>")
    def numbered(n: int) -> str:
        return f"answer {n}"

    return app


class _Reader:
    """HTTP/1.1 answers off one connection, in order (Content-Length or chunked bodies);
    `slow` reads in small sips at first, so the server's socket buffer fills."""

    def __init__(self, sock: socket.socket, *, slow: bool = False) -> None:
        self.sock, self.slow, self.buffer = sock, slow, b""
        self.taken = 0

    def _more(self) -> None:
        if self.slow and self.taken < 4 * 1024 * 1024:
            time.sleep(0.002)
        chunk = self.sock.recv(65536)
        assert chunk, "the connection closed mid-answer"
        self.taken += len(chunk)
        self.buffer += chunk

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._more()
        line, _, self.buffer = self.buffer.partition(marker)
        return line

    def _exactly(self, size: int) -> bytes:
        parts, got = [], 0
        while got < size:
            if not self.buffer:
                self._more()
            part = self.buffer[: size - got]
            self.buffer = self.buffer[len(part) :]
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def answer(self) -> tuple[bytes, bytes]:
        head = self._until(b"\r\n\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
        }
        if b"content-length" in headers:
            return head, self._exactly(int(headers[b"content-length"]))
        body = b""
        while size := int(self._until(b"\r\n"), 16):
            body += self._exactly(size)
            self._until(b"\r\n")
        self._until(b"\r\n")
        return head, body


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedServer]:
    with ThreadedServer(_app(), threads=4) as server:
        yield server


def _connect(server: ThreadedServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    return sock


def test_an_answer_past_the_high_watermark_arrives_whole_to_a_slow_reader(
    served: ThreadedServer,
) -> None:
    expected = hashlib.sha256(b"pep").digest() * 2048 * (BIG // (32 * 2048))
    with _connect(served) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = _Reader(sock, slow=True).answer()
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == BIG and body == expected


def test_a_streamed_answer_arrives_whole_to_a_slow_reader(served: ThreadedServer) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = _Reader(sock, slow=True).answer()
    assert head.startswith(b"HTTP/1.1 200")
    assert body == hashlib.sha256(b"pep").digest() * 2048 * (BIG // (32 * 2048))


def test_pipelined_requests_are_answered_in_order(served: ThreadedServer) -> None:
    with _connect(served) as sock:
        asked = (f"GET /n/{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for n in range(40))
        sock.sendall(b"".join(asked))
        reader = _Reader(sock)
        bodies = [reader.answer()[1] for _ in range(40)]
    assert bodies == [f"answer {n}".encode() for n in range(40)]


def test_many_connections_at_once_each_get_their_own_answers(served: ThreadedServer) -> None:
    failures: list[str] = []

    def client(index: int) -> None:
        with _connect(served) as sock:
            reader = _Reader(sock)
            for n in range(25):
                sock.sendall(f"GET /n/{index * 100 + n} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                body = reader.answer()[1]
                if body != f"answer {index * 100 + n}".encode():
                    failures.append(f"{index}/{n}: {body!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures


def test_a_small_answer_goes_out_with_its_head_in_one_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """D232: head and a whole small body in one write (one `send`); a body past
    JOINED_BODY_BYTES, a streamed one and a HEAD's are written as waitress writes them."""
    from pepharness.mocks.core import server as server_module

    writes: list[bytes] = []
    plain = _UpgradeChannel.write_soon

    def recording(self: _UpgradeChannel, data: Any) -> int:
        writes.append(bytes(data))
        return plain(self, data)

    monkeypatch.setattr(_UpgradeChannel, "write_soon", recording)
    app = Flask("joined")
    small, large = b"s" * 1000, b"L" * (server_module.JOINED_BODY_BYTES + 1)

    @app.get("/small")
    def small_answer() -> Response:
        return Response(small, mimetype="text/plain")

    @app.get("/large")
    def large_answer() -> Response:
        return Response(large, mimetype="text/plain")

    with ThreadedServer(app, threads=2) as server, _connect(server) as sock:
        reader = _Reader(sock)
        for path, method in (("/small", "GET"), ("/large", "GET"), ("/small", "HEAD")):
            writes.clear()
            sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            if method == "HEAD":
                head = reader._until(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200") and len(writes) == 1
                continue
            head, body = reader.answer()
            assert head.startswith(b"HTTP/1.1 200")
            if path == "/small":
                assert body == small and len(writes) == 1 and writes[0].endswith(small)
            else:
                assert body == large and len(writes) == 2 and writes[1] == large
