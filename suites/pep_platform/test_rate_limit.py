"""The data fetch's rate limit (D65): from an empty window the first N requests are served and
request N+1 is 429 with a usable Retry-After, and the fetch serves again once it has passed.

These checks exhaust the client's budget: they run alone, after every other check."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pytest
import requests

from pepharness.suites.http import retry_after_seconds, summarize
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import ClockControl, Platform, fetch_operation
from pepharness.suites.rules import covers, fail, not_verified

OPERATION = fetch_operation("transactions")
EXTRA = 2
"""Requests sent past the limit before giving up on a 429."""
MAX_REAL_WAIT_SECONDS = 10.0
"""Without --clock-control, the longest Retry-After the recovery check waits out for real."""
QUIET_MARGIN_SECONDS = 0.5


@dataclass
class Burst:
    limit: int
    period: float
    responses: list[requests.Response]
    elapsed: float
    recovery: requests.Response | None
    waited: float
    clock: bool
    why_no_recovery: str = ""

    @property
    def refused(self) -> requests.Response | None:
        last = self.responses[-1]
        return last if last.status_code == 429 else None


def _wait_for_empty_window(platform: Platform, period: float) -> None:
    """Sleep until the suite's own data-fetch requests (the shared budget's stamps) have left
    the target's window."""
    latest = max(platform.window.stamps(), default=0.0)
    time.sleep(max(0.0, latest + period + QUIET_MARGIN_SECONDS - time.time()))


def _one(platform: Platform) -> requests.Response:
    return platform.fetch("transactions", {"limit": "1"}, raw=True)


@pytest.fixture(scope="module")
def burst(platform: Platform) -> Burst:
    expected = platform.options.expect_rate_limit
    if expected is None:
        not_verified("give --expect-rate-limit N/SECONDS (the limit the target documents, "
                     "100/60 for the PEP)")
    limit, period = expected
    platform.token()  # issued before the clock moves
    control = platform.options.clock_control
    clock = (
        ClockControl(platform.target, control, platform.window) if control is not None else None
    )
    # Start from an empty window: what the checks before sent has stopped counting. The clock
    # moves forward only, and stays there (D230).
    if clock is not None:
        clock.advance(period + 1)
    else:
        _wait_for_empty_window(platform, period)
    started = time.monotonic()
    responses: list[requests.Response] = []
    while len(responses) < limit + EXTRA:
        responses.append(_one(platform))
        if responses[-1].status_code == 429:
            break
    elapsed = time.monotonic() - started
    burst = Burst(limit, period, responses, elapsed, None, 0.0, clock is not None)
    if burst.refused is not None:
        hint = retry_after_seconds(burst.refused.headers.get("Retry-After"))
        burst.waited = hint if hint is not None else period
        if clock is not None:
            clock.advance(burst.waited)
        elif burst.waited <= MAX_REAL_WAIT_SECONDS:
            time.sleep(burst.waited)
        else:
            burst.why_no_recovery = (
                f"Retry-After asks for {burst.waited:g} s: give --clock-control URL to "
                "move the target's clock instead of waiting"
            )
            return burst
        burst.recovery = _one(platform)
    return burst


def _statuses(burst: Burst) -> str:
    shown = [r.status_code for r in burst.responses]
    served = sum(1 for s in shown if s == 200)
    rest = ", ".join(str(s) for s in shown[served:]) or "nothing else"
    return f"{served} answered 200, then {rest}"


@covers(rules.RATE_LIMITED, operation=OPERATION)
def test_rate_limit_is_429_at_request_n_plus_1(platform: Platform, burst: Burst) -> None:
    if burst.refused is None and burst.elapsed > burst.period:
        not_verified(f"the {len(burst.responses)} requests took {burst.elapsed:.1f} s, longer "
                     f"than the {burst.period:g} s window")
    documented = (
        f"200 for the first {burst.limit} requests within {burst.period:g} s, 429 "
        '{"error": "rate_limited"} for request ' f"{burst.limit + 1} (D65)"
    )
    count = len(burst.responses)
    if burst.refused is None or count != burst.limit + 1:
        title = (
            f"no 429 after {count} requests" if burst.refused is None
            else f"the first 429 comes at request {count}, not {burst.limit + 1}"
        )
        fail(
            rules.RATE_LIMITED,
            title,
            received=f"statuses: {_statuses(burst)}; last: {summarize(burst.responses[-1])}",
            documented=documented,
            curl=platform.curl(burst.responses[-1]),
        )
    wrong = [r for r in burst.responses[:-1] if r.status_code != 200]
    if wrong:
        fail(
            rules.RATE_LIMITED,
            f"request {burst.responses.index(wrong[0]) + 1} of the first {burst.limit} is "
            f"{wrong[0].status_code}",
            received=f"statuses: {_statuses(burst)}; {summarize(wrong[0])}",
            documented=documented,
            curl=platform.curl(wrong[0]),
        )


@covers(rules.RETRY_AFTER, operation=OPERATION)
def test_429_carries_retry_after(platform: Platform, burst: Burst) -> None:
    refused = burst.refused
    if refused is None:
        not_verified(f"no 429 in {len(burst.responses)} requests")
    value = refused.headers.get("Retry-After")
    seconds = retry_after_seconds(value)
    ceiling = math.ceil(burst.period) + 1
    if seconds is None or seconds > ceiling:
        fail(
            rules.RETRY_AFTER,
            "the 429 has no usable Retry-After" if seconds is None
            else "Retry-After asks for a longer wait than the window",
            received=f"Retry-After: {value if value is not None else '(absent)'}",
            documented=f"Retry-After: delay-seconds or an HTTP-date, at most {ceiling} s "
            "(RFC 9110 §10.2.3, D65)",
            curl=platform.curl(refused),
        )


@covers(rules.RATE_RECOVERS, operation=OPERATION)
def test_rate_limit_recovers_after_retry_after(platform: Platform, burst: Burst) -> None:
    if burst.refused is None:
        not_verified(f"no 429 in {len(burst.responses)} requests to recover from")
    if burst.recovery is None:
        not_verified(burst.why_no_recovery or "no request after the 429")
    if burst.recovery.status_code != 200:
        how = "moving the target's clock" if burst.clock else "waiting"
        fail(
            rules.RATE_RECOVERS,
            f"still refused after {how} {burst.waited:g} s (its Retry-After)",
            received=summarize(burst.recovery),
            documented="200 once Retry-After has passed (D65: a refused request does not "
            "count)",
            curl=platform.curl(burst.recovery),
        )
