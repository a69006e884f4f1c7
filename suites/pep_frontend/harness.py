"""The operator the PEP under test calls, played by the harness.

Two ways to play it. `own`: the harness serves an operator mock on 127.0.0.1:--operator-port
itself, and sees every call whole (headers and body). `shared`: that port is already served by
a pep-harness operator mock (`pepharness serve all`), which the harness programs through its
`/__admin` and whose `/__admin/received` shows each call with its secrets cut (the first 4
characters of `identityToken`, header names only). Either way, a branch is programmed per
identity token, each token new and unique to the check.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from flask import Flask, request

IDENTITY = "/api/auth/v1/player"
SHOWN_TOKEN_CHARS = 4
ADMIN_TIMEOUT_SECONDS = 10


class HarnessError(Exception):
    """The operator cannot be played on that port; the message is one line."""


@dataclass(frozen=True)
class Call:
    """One call the operator received: what the PEP sent and what it was answered."""

    body: Any
    keys: tuple[str, ...] | None
    header_names: tuple[str, ...]
    status: int
    headers: dict[str, str] | None = None
    """Every header with its value: only when the harness serves the operator itself."""
    raw: bytes | None = None
    """The body as sent: only when the harness serves the operator itself."""

    def text(self) -> str:
        """Everything the call carried that the harness can see, as one text."""
        shown = [json.dumps(self.body), " ".join(self.header_names)]
        if self.headers is not None:
            shown += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.raw is not None:
            shown.append(self.raw.decode("utf-8", "replace"))
        return "\n".join(shown)


@dataclass
class _Capture:
    """The calls an own operator received, whole, in order."""

    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, app: Flask) -> None:
        @app.before_request
        def capture() -> None:
            if request.path == IDENTITY:
                with self.lock:
                    self.calls.append((dict(request.headers), request.get_data(cache=True)))


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        # As the server binds: a port left in TIME_WAIT by the last operator is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serves_operator_mock(url: str) -> bool:
    try:
        answer = requests.get(f"{url}/__admin/health", timeout=ADMIN_TIMEOUT_SECONDS)
        return bool(answer.ok and answer.json().get("service") == "operator")
    except (requests.RequestException, ValueError, AttributeError):
        return False


def new_token() -> str:
    """An identity token no one has issued: 32 hex digits."""
    return secrets.token_hex(16)


class HarnessOperator:
    """The operator on 127.0.0.1:`port`: `start()` serves one or joins the one there."""

    def __init__(self, port: int, *, seed: int = 42) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.seed = seed
        self.owned = False
        self._server: Any = None
        self._capture = _Capture()
        self._session = requests.Session()
        self._session.trust_env = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> HarnessOperator:
        if port_is_free(self.port):
            self._serve()
            self.owned = True
        elif serves_operator_mock(self.url):
            self.owned = False
        else:
            raise HarnessError(
                f"port {self.port} is taken by something that is not a pep-harness operator "
                "mock: give a free --operator-port (and point the PEP at it)"
            )
        return self

    def _serve(self) -> None:
        from pepharness.mocks.core import ServeError, ThreadedServer
        from pepharness.mocks.operator import create_app

        if self._server is None:
            app = create_app({"SEED": self.seed})
            self._capture.install(app)
            self._server = ThreadedServer(app, port=self.port, threads=16)
        try:
            self._server.start()
        except ServeError as error:
            raise HarnessError(str(error)) from None

    def go_down(self) -> None:
        """Stop answering at all (connections refused): only an own operator can."""
        if not self.owned:
            raise HarnessError("the operator is another process's: it cannot be stopped")
        self._server.stop()

    def come_back(self) -> None:
        if self.owned:
            self._serve()

    def close(self) -> None:
        if self.owned and self._server is not None:
            self._server.stop()
        self._session.close()

    # -- programming -----------------------------------------------------------------------

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self._session.request(
                method, f"{self.url}/__admin{path}", timeout=ADMIN_TIMEOUT_SECONDS, **kwargs
            )
        except requests.RequestException as error:
            raise HarnessError(f"the operator at {self.url} does not answer: {error}") from None
        if not answer.ok:
            raise HarnessError(
                f"the operator's /__admin{path} answered {answer.status_code} {answer.text[:200]}"
            )
        return answer.json()

    def program(self, token: str | None = None, **rule: Any) -> str:
        """A token answered as `rule` says (`playerId`, `expiresAt`, `status`, `delay_ms`;
        D42); a new one unless `token` is given. Returns the token."""
        token = token or new_token()
        if "playerId" not in rule and rule.get("status") in (None, 200):
            rule["playerId"] = self.player_id()
        self._admin("POST", "/tokens", json={"identityToken": token, **rule})
        return token

    def answer_next(self, status: int, body: Any) -> None:
        """The next call to the identity endpoint, whatever its token, is answered so."""
        self._admin(
            "POST",
            "/faults",
            json={"path": IDENTITY, "method": "POST", "status": status, "body": body, "times": 1},
        )

    def clear_faults(self) -> None:
        self._admin("DELETE", "/faults")

    def now(self) -> datetime:
        """The operator's "now": its service clock, which `/__admin/clock` may have moved."""
        text = str(self._admin("GET", "/clock")["now"])
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    def player_id(self) -> str:
        """A seeded player of the operator (the reference PEP holds the same players)."""
        tokens = self._admin("GET", "/tokens")["tokens"]
        seeded = [t["playerId"] for t in tokens if t.get("seeded") and t.get("playerId")]
        return str(seeded[0]) if seeded else "131918"

    def seeded_player_ids(self) -> list[str]:
        """Every seeded player of the operator, in its order (the reference PEP holds the same
        players, with their seeded standing)."""
        tokens = self._admin("GET", "/tokens")["tokens"]
        return [str(t["playerId"]) for t in tokens if t.get("seeded") and t.get("playerId")]

    # -- what was received -----------------------------------------------------------------

    def mark(self) -> int:
        """A bookmark: `calls(token, since=mark)` counts only what arrives after it."""
        if self.owned:
            with self._capture.lock:
                return len(self._capture.calls)
        received = self._admin("GET", "/received", params={"limit": 1})["received"]
        return int(received[-1]["id"]) if received else 0

    def calls(self, token: str, since: int = 0) -> list[Call]:
        """The calls that carried `token` since the bookmark `since`."""
        if self.owned:
            with self._capture.lock:
                captured = self._capture.calls[since:]
            return [call for headers, raw in captured if (call := _own_call(headers, raw, token))]
        shown = token[:SHOWN_TOKEN_CHARS] + "***"
        received = self._admin("GET", "/received")["received"]
        return [
            Call(
                body=entry["body"],
                keys=tuple(entry["keys"]) if entry.get("keys") is not None else None,
                header_names=tuple(entry["headers"]),
                status=int(entry["status"]),
            )
            for entry in received
            if int(entry["id"]) > since
            and isinstance(entry.get("body"), dict)
            and entry["body"].get("identityToken") == shown
        ]


def _own_call(headers: dict[str, str], raw: bytes, token: str) -> Call | None:
    if token.encode() not in raw:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    return Call(
        body=body,
        keys=tuple(body) if isinstance(body, dict) else None,
        header_names=tuple(sorted(name.lower() for name in headers)),
        status=0,
        headers=headers,
        raw=raw,
    )
