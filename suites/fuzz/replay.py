"""Replay recorded fuzz traffic (a HAR file or a findings.json) against a base URL and diff the
answers with the recording."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from pepharness.suites.fuzz.diff import (
    DEFAULT_IGNORED,
    Answer,
    CompareMode,
    Difference,
    compare,
    media_type,
    recorded_answer,
)
from pepharness.suites.fuzz.har import connection_reason
from pepharness.suites.fuzz.recording import Exchange, rebase, request_body, request_headers
from pepharness.suites.http import retry_after_seconds

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Outcome:
    """One replayed exchange: what was sent, what came back, how it differs."""

    exchange: Exchange
    url: str
    header_names: tuple[str, ...]
    recorded: Answer
    new: Answer
    elapsed_ms: float
    differences: tuple[Difference, ...] = field(default=())

    @property
    def same(self) -> bool:
        return not self.differences

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def to_json(self) -> dict[str, Any]:
        """The report's record; header values are left out, as they may hold credentials."""
        exchange = self.exchange
        return {
            "position": exchange.position,
            "index": exchange.index,
            "step": exchange.step,
            "finding": exchange.finding,
            "same": self.same,
            "request": {
                "method": exchange.method,
                "url": self.url,
                "recorded_url": exchange.url,
                "headers": list(self.header_names),
            },
            "recorded": _answer_json(self.recorded),
            "new": _answer_json(self.new),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "differences": [difference.to_json() for difference in self.differences],
        }


def _answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "status": answer.status,
        "content_type": answer.media_type,
        "error": answer.error,
        "detail": answer.detail or None,
    }


# -- sending ---------------------------------------------------------------------------------


MAX_429_RETRIES = 5
MAX_429_WAIT_SECONDS = 10.0


def send(
    session: requests.Session,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
) -> tuple[Answer, float]:
    """The answer to one request (never following redirects) and its time in ms."""
    started = time.perf_counter()
    try:
        response = session.request(
            method, url, headers=dict(headers), data=body, timeout=timeout,
            allow_redirects=False,
        )
        answer = Answer(
            response.status_code, media_type(response.headers.get("Content-Type")),
            response.content,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    except requests.Timeout:
        answer = Answer(0, error="timeout", detail=f"timeout: no answer within {timeout:g} s")
    except requests.ConnectionError as error:
        reason = connection_reason(error)
        answer = Answer(0, error="connection_error", detail=f"connection_error: {reason}")
    except requests.RequestException as error:
        answer = Answer(0, error="error", detail=f"error: {type(error).__name__}")
    return answer, (time.perf_counter() - started) * 1000



# -- replaying -------------------------------------------------------------------------------


def replay(
    exchanges: Iterable[Exchange],
    base_url: str,
    *,
    recorded_base_url: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    timeout: float = DEFAULT_TIMEOUT,
    mode: CompareMode = "body",
    ignore: Collection[str] = DEFAULT_IGNORED,
    session: requests.Session | None = None,
) -> Iterator[Outcome]:
    """Send each exchange's request again to `base_url`, one at a time, and yield how its
    answer compares with the recorded one."""
    own = session is None
    if session is None:
        session = requests.Session()
        # The recorded request, as recorded: no default headers, no .netrc, no proxy variables.
        session.headers.clear()
        session.trust_env = False
    try:
        for exchange in exchanges:
            url = rebase(exchange.url, base_url, recorded_base_url)
            sent = request_headers(exchange.entry, headers)
            recorded = recorded_answer(exchange.entry)
            body = request_body(exchange.entry)
            answer, elapsed_ms = send(session, exchange.method, url, sent, body, timeout)
            for _ in range(MAX_429_RETRIES):
                # A 429 the recording did not get is the replay's own pace, not a difference:
                # wait as the target asks (as the fuzzer did) and send again.
                if answer.status != 429 or recorded.status == 429:
                    break
                time.sleep(min(answer.retry_after or 1.0, MAX_429_WAIT_SECONDS))
                answer, elapsed_ms = send(session, exchange.method, url, sent, body, timeout)
            differences = tuple(compare(recorded, answer, mode, ignore))
            yield Outcome(exchange, url, tuple(sent), recorded, answer, elapsed_ms, differences)
    finally:
        if own:
            session.close()


def report(
    outcomes: Sequence[Outcome],
    verdicts: Sequence[Mapping[str, str]] = (),
    **settings: Any,
) -> dict[str, Any]:
    """The JSON report of a replay: `settings` (base URL, mode, …), totals and every exchange
    (with its verdict, when given: `verdict` and `reason`)."""
    differing = sum(not outcome.same for outcome in outcomes)
    exchanges = [outcome.to_json() for outcome in outcomes]
    for exchange, verdict in zip(exchanges, verdicts, strict=False):
        exchange.update(verdict)
    return {
        **settings,
        "replayed": len(outcomes),
        "same": len(outcomes) - differing,
        "differs": differing,
        "exchanges": exchanges,
    }

