"""The suites' HTTP client: one session per target that paces rate-limited paths, waits out a
429 it did not ask for, records every status it sees, and renders requests as curl lines."""

from __future__ import annotations

import base64
import email.utils
import shlex
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from pepharness.suites.throttle import SharedWindow

TIMEOUT_SECONDS = 30
MAX_429_RETRIES = 4
MAX_RETRY_WAIT_SECONDS = 10.0
MAX_CURL_BODY = 4096
QUIET_HEADERS = {"user-agent", "accept-encoding", "accept", "connection", "content-length"}


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After value (delay-seconds or an HTTP-date, RFC 9110 §10.2.3) in seconds, None
    when absent or malformed."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Recorder:
    """Every (method, path, status) this process received, until the plugin drains it."""

    def __init__(self) -> None:
        self._seen: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def record(self, method: str, url: str, status: int) -> None:
        with self._lock:
            self._seen.append((method.upper(), urlsplit(url).path, status))

    def drain(self) -> list[tuple[str, str, int]]:
        with self._lock:
            seen, self._seen = self._seen, []
        return seen


RECORDER = Recorder()
"""This process's recorder: the plugin attaches what it holds to each test's report."""


class Secrets:
    """Values a curl line must not print, each with the shell variable it prints instead, and
    the Basic credentials it renders as `-u "$USER_VARIABLE:$PASSWORD_VARIABLE"`."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._basic: dict[str, str] = {}

    def hide(self, value: str, variable: str) -> None:
        if value:
            self._values[value] = variable

    def hide_basic(
        self, user: str, password: str, user_variable: str, password_variable: str
    ) -> None:
        header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._basic[header] = f"${user_variable}:${password_variable}"
        self.hide(password, "$" + password_variable)

    def basic(self, header_value: str) -> str | None:
        return self._basic.get(header_value)

    def items(self) -> list[tuple[str, str]]:
        """(value, variable), the longest values first so that none hides part of another."""
        return sorted(self._values.items(), key=lambda item: -len(item[0]))

    def redact(self, text: str) -> str:
        for value, variable in self.items():
            text = text.replace(value, variable)
        return text


def curl_line(request: requests.PreparedRequest, secrets: Secrets | None = None) -> str:
    """`request` as one curl command line, secrets replaced by shell variables."""
    secrets = secrets or Secrets()
    parts = ["curl", "-sS", "-i"]
    if request.method and request.method != "GET":
        parts += ["-X", request.method]
    for name, value in request.headers.items():
        if name.lower() in QUIET_HEADERS:
            continue
        credentials = secrets.basic(value) if name.lower() == "authorization" else None
        parts += ["-u", Expand(credentials)] if credentials else ["-H", f"{name}: {value}"]
    body = request.body
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if len(text) > MAX_CURL_BODY:
            # Not a line anyone pastes: the start of it, and how long it was.
            text = f"{text[:MAX_CURL_BODY // 8]}… ({len(text):,} characters in all)"
        parts += ["--data-raw", text]
    parts.append(request.url or "")
    return " ".join(_quoted(part, secrets) for part in parts)


def _escape(text: str) -> str:
    """`text` for the inside of a double-quoted shell word: nothing in it expands."""
    for char in ("\\", '"', "`", "$"):
        text = text.replace(char, "\\" + char)
    return text


def _quoted(part: str, secrets: Secrets) -> str:
    if isinstance(part, Expand):
        return f'"{part}"'
    if secrets.redact(part) == part:
        return shlex.quote(part)
    # Only the variables that replace secrets may expand: the rest is escaped.
    escaped = _escape(part)
    for value, variable in secrets.items():
        escaped = escaped.replace(_escape(value), variable)
    return f'"{escaped}"'


class Expand(str):
    """A curl argument made of shell variables, double-quoted so that they expand."""


class PacedSession(requests.Session):
    """A session that keeps rate-limited paths within a shared budget and retries a 429 after
    its Retry-After, so no other check ever sees a 429 it did not provoke."""

    def __init__(
        self,
        *,
        window: SharedWindow | None,
        is_limited: Callable[[requests.PreparedRequest], bool],
        recorder: Recorder = RECORDER,
        pace: bool = True,
    ) -> None:
        super().__init__()
        self.window = window
        self.is_limited = is_limited
        self.recorder = recorder
        self.pace = pace

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        limited = self.pace and self.is_limited(request)
        attempt = 0
        while True:
            if limited and self.window is not None:
                self.window.acquire()
            response = super().send(request, **kwargs)
            self.recorder.record(request.method or "GET", request.url or "", response.status_code)
            if not limited or response.status_code != 429 or attempt >= MAX_429_RETRIES:
                return response
            attempt += 1
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            wanted = wait if wait is not None else 1.0
            # With clock control the first Retry-After is crossed by moving the target's clock;
            # a second 429 is waited out (a limiter that does not read that clock, D173).
            if attempt > 1 or self.window is None or not self.window.cross(wanted):
                time.sleep(min(wanted, MAX_RETRY_WAIT_SECONDS))


class Target:
    """The service under test: its base URL and two sessions, `paced` for the checks and `raw`
    (neither paced nor retried, still recorded) for the checks that provoke a 429."""

    def __init__(
        self,
        base_url: str,
        *,
        window: SharedWindow | None,
        is_limited: Callable[[requests.PreparedRequest], bool],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.secrets = Secrets()
        self.paced = PacedSession(window=window, is_limited=is_limited)
        self.raw = PacedSession(window=None, is_limited=is_limited, pace=False)

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(
        self, method: str, path: str, *, raw: bool = False, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        session = self.raw if raw else self.paced
        return session.request(method, self.url(path), **kwargs)

    def curl(self, response: Answer) -> str:
        return curl_line(response.request, self.secrets)

    def close(self) -> None:
        self.paced.close()
        self.raw.close()


class Answer(Protocol):
    """A response as the checks read it: requests' or schemathesis' own."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def request(self) -> requests.PreparedRequest: ...


def summarize(response: Answer, limit: int = 160) -> str:
    """`status body…` in one line, for a failure's "Received"."""
    text = response.text.strip().replace("\n", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{response.status_code} {text}".strip()
