"""The paginated history's rate limit: a burst above it is 429 'slow down' with a usable
Retry-After, never a 5xx, and the service serves again once the wait is over."""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from pepharness.suites.http import PacedSession, retry_after_seconds, summarize
from pepharness.suites.rules import covers, fail, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import PAGINATED, ClockControl, Sinatra, err_msg, label

OPERATION = label("GET", PAGINATED)
EXTRA = 2
"""Requests sent above the limit in one burst."""

@dataclass
class Burst:
    limit: int
    period: float
    responses: list[requests.Response]
    elapsed: float
    recovery: requests.Response | None
    waited: float
    clock: bool

    @property
    def limited(self) -> list[requests.Response]:
        return [r for r in self.responses if r.status_code == 429]


def _send(sinatra: Sinatra, count: int) -> list[requests.Response]:
    """`count` requests of the paginated history at once, unpaced, each on its own session."""
    url = sinatra.target.url(sinatra.path(PAGINATED))
    sessions = [
        PacedSession(window=None, is_limited=lambda _: False, pace=False) for _ in range(count)
    ]

    def one(session: PacedSession) -> requests.Response:
        return session.get(url, auth=sinatra.basic(), params={"page_size": "1"}, timeout=30)

    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(one, sessions))
    finally:
        for session in sessions:
            session.close()


@pytest.fixture(scope="module")
def burst(sinatra: Sinatra) -> Burst:
    expected = sinatra.options.expect_rate_limit
    if expected is None:
        not_verified("give --expect-rate-limit N/SECONDS (the limit the target documents)")
    limit, period = expected
    control = sinatra.options.clock_control
    clock = ClockControl(sinatra, control) if control is not None else None
    # Start from an empty window: whatever the checks before sent has stopped counting. The
    # clock moves forward only, and stays there (D230).
    if clock is not None:
        clock.advance(period + 0.05)
    else:
        time.sleep(period + 0.2)
    started = time.monotonic()
    responses = _send(sinatra, limit + EXTRA)
    elapsed = time.monotonic() - started
    recovery, waited = None, 0.0
    refused = [r for r in responses if r.status_code == 429]
    if refused:
        hints = [retry_after_seconds(r.headers.get("Retry-After")) for r in refused]
        waited = max((h for h in hints if h is not None), default=period)
        if clock is not None:
            clock.advance(waited + 0.05)
        else:
            time.sleep(waited + 0.05)
        recovery = sinatra.get(sinatra.path(PAGINATED), basic=sinatra.basic(),
                               params={"page_size": "1"}, raw=True)
    return Burst(limit, period, responses, elapsed, recovery, waited, clock is not None)


def _statuses(burst: Burst) -> str:
    return ", ".join(str(r.status_code) for r in burst.responses)


@covers(rules.BURST_IS_429, operation=OPERATION)
def test_burst_above_rate_limit_is_429_slow_down(sinatra: Sinatra, burst: Burst) -> None:
    if burst.elapsed > burst.period and not burst.limited:
        not_verified(f"the burst took {burst.elapsed:.2f} s, longer than the {burst.period:g} s "
                     "period")
    served = [r for r in burst.responses if r.status_code == 200]
    if not burst.limited or len(served) > burst.limit:
        fail(
            rules.BURST_IS_429,
            f"{len(burst.responses)} requests at once, {len(served)} served",
            received=f"statuses {_statuses(burst)}",
            documented=f"at most {burst.limit} per {burst.period:g} s, the rest 429 "
            "{\"errMsg\": \"slow down\"}",
            curl=sinatra.curl(burst.responses[-1]),
        )
    for response in burst.limited:
        if err_msg(response) != "slow down":
            fail(
                rules.BURST_IS_429,
                "the 429 does not say 'slow down'",
                received=summarize(response),
                documented="429 {\"errMsg\": \"slow down\"}",
                curl=sinatra.curl(response),
            )


@covers(rules.BURST_NO_SERVER_ERROR, operation=OPERATION)
def test_burst_never_answers_5xx(sinatra: Sinatra, burst: Burst) -> None:
    for response in burst.responses:
        if response.status_code >= 500:
            fail(
                rules.BURST_NO_SERVER_ERROR,
                "a burst above the limit gets a server error",
                received=f"statuses {_statuses(burst)}; {summarize(response)}",
                documented="200 up to the limit, then 429",
                curl=sinatra.curl(response),
            )


@covers(rules.RETRY_AFTER, operation=OPERATION)
def test_429_carries_valid_retry_after(sinatra: Sinatra, burst: Burst) -> None:
    if not burst.limited:
        not_verified("the burst got no 429")
    ceiling = math.ceil(burst.period) + 1
    for response in burst.limited:
        value = response.headers.get("Retry-After")
        seconds = retry_after_seconds(value)
        if seconds is None or seconds > ceiling:
            fail(
                rules.RETRY_AFTER,
                "the 429 has no usable Retry-After" if seconds is None else
                "Retry-After asks for a longer wait than the period",
                received=f"Retry-After: {value if value is not None else '(absent)'}",
                documented=f"Retry-After: delay-seconds or an HTTP-date, at most {ceiling} s",
                curl=sinatra.curl(response),
            )


@covers(rules.RATE_LIMIT_RECOVERS, operation=OPERATION)
def test_rate_limit_recovers_after_retry_after(sinatra: Sinatra, burst: Burst) -> None:
    if burst.recovery is None:
        not_verified("the burst got no 429 to recover from")
    if burst.recovery.status_code != 200:
        how = "moving the clock" if burst.clock else "waiting"
        fail(
            rules.RATE_LIMIT_RECOVERS,
            f"still refused after {how} {burst.waited:g} s (Retry-After)",
            received=summarize(burst.recovery),
            documented="200 once Retry-After has passed",
            curl=sinatra.curl(burst.recovery),
        )
