"""The checks' pacing with clock control (D173-D175): a full rate-limit window is crossed by
moving the target's clock, not waited out, and logins are renewed by the target's time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from flask import Flask

from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.sinatra import create_app
from pepharness.suites.options import SuiteOptions
from pepharness.suites.sinatra.client import TOKEN_REUSE_SECONDS, Sinatra
from pepharness.suites.throttle import SharedWindow

LIMIT, PERIOD = 3, 60.0
"""A window no test run outlasts: a request it admits past the pacing is one a move admitted."""


@pytest.fixture(scope="module")
def sinatra_app() -> Flask:
    """A small mock: these tests count requests, they read no rounds."""
    return create_app({"SEED": 42, "ROUNDS": 20, "ANCHOR": datetime.now(UTC)})


def target_now(url: str) -> float:
    answer = requests.get(f"{url}/__admin/clock", timeout=10)
    return datetime.fromisoformat(answer.json()["now"].replace("Z", "+00:00")).timestamp()


@pytest.fixture
def paced(sinatra_server: ThreadedServer, tmp_path: Path) -> Iterator[Sinatra]:
    url = sinatra_server.url
    requests.post(f"{url}/__admin/reset", timeout=10).raise_for_status()
    requests.post(
        f"{url}/__admin/rate-limit", json={"limit": LIMIT, "period_seconds": PERIOD}, timeout=10
    ).raise_for_status()
    options = SuiteOptions(
        base_url=url, clock_control=f"{url}/__admin", expect_rate_limit=(LIMIT, PERIOD)
    )
    client = Sinatra(options)
    client.window.path = tmp_path / "budget.json"
    yield client
    client.target.close()
    requests.post(f"{url}/__admin/reset", timeout=10)


def test_full_window_moves_the_clock(
    paced: Sinatra, sinatra_server: ThreadedServer
) -> None:
    before = target_now(sinatra_server.url)
    statuses = [paced.page({"page_size": "1"}).status_code for _ in range(5)]
    # Paced at LIMIT - 1 per PERIOD: requests 3 and 5 each needed the next window.
    assert statuses == [200] * 5
    assert paced.window.moves == 2
    assert target_now(sinatra_server.url) - before >= 2 * PERIOD
    budget = json.loads(paced.window.path.read_text(encoding="utf-8"))
    assert budget["moved"] >= 2 * PERIOD
    # The stamps are shifted as the target sees them: the window holds request 5 alone.
    assert len(paced.window.stamps()) == 1


def test_login_is_renewed_once_the_moves_age_it(paced: Sinatra) -> None:
    first = paced.token()
    assert paced.token() == first
    while paced.window.moved() < TOKEN_REUSE_SECONDS:
        assert paced.page({"page_size": "1"}).status_code == 200
    renewed = paced.token()
    assert renewed != first
    assert paced.get(paced.path("/vendors/{version}/view/available"), token=renewed).ok


def test_429_of_a_tighter_limit_is_crossed_by_the_clock(
    paced: Sinatra, sinatra_server: ThreadedServer
) -> None:
    requests.post(
        f"{sinatra_server.url}/__admin/rate-limit", json={"limit": 1, "period_seconds": PERIOD},
        timeout=10,
    ).raise_for_status()
    crossed: list[tuple[float, bool]] = []
    cross = paced.window.cross

    def spy(seconds: float) -> bool:
        crossed.append((seconds, cross(seconds)))
        return crossed[-1][1]

    paced.window.cross = spy  # type: ignore[method-assign]
    # The pacing admits 2 per window, the target 1: the second is a 429, its Retry-After (the
    # whole minute) is crossed by a move, not waited, and the retry is served.
    assert [paced.page({"page_size": "1"}).status_code for _ in range(2)] == [200, 200]
    assert crossed == [(PERIOD, True)]


def test_budget_of_the_former_format_is_read(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    path.write_text(json.dumps([time.time() + 3600]), encoding="utf-8")
    window = SharedWindow(path, 1, 1.0)
    assert len(window.stamps()) == 1 and window.moved() == 0.0


def test_a_check_moves_the_targets_clock_forward_only(tmp_path: Path) -> None:
    """The token-expiry and burst checks leave the target's clock where they moved it (D230):
    every move is forward, the clock ends 20 minutes ahead, and a run right after passes too
    (moved back, the first run's burst would lie in the target's future, still counted)."""
    from test_check_planted import run_check, summary_of

    app = create_app({"SEED": 42, "ROUNDS": 20, "ANCHOR": datetime.now(UTC)})
    moves: list[float] = []

    @app.before_request
    def record() -> None:
        from flask import request

        if request.path == "/__admin/clock" and request.method == "POST":
            moves.append(float((request.get_json(silent=True) or {}).get("advance_seconds", 0)))

    rules = "check_token_expires_after_20_minutes,check_burst_*"
    with ThreadedServer(app, threads=8) as server:
        started = time.time()
        for run in ("first", "second"):
            folder = tmp_path / run
            result = run_check(server.url, folder, "--rules", rules)
            assert result.exit_code == 0, result.output
            assert summary_of(folder)["not_verified"] == [], run
        ahead = target_now(server.url) - time.time()
    assert moves and all(move > 0 for move in moves), moves
    assert ahead >= 2 * 20 * 60, f"the clock was put back: {ahead:.0f} s ahead after two runs"
    assert time.time() - started < 20 * 60  # the expiry was crossed by moves, not waited out
