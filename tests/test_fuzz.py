"""`pepharness fuzz` against the Sinatra mock over real HTTP: it finds injected faults once each
and nothing on the clean mock, plans the same traffic for the same seed, waits out 429s, and
reports timeouts, connection errors and contract breaks."""

from __future__ import annotations

import html
import json
import math
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pepharness.mocks.core import ThreadedServer
from pepharness.suites.fuzz import output
from pepharness.suites.fuzz.apis import APIS
from pepharness.suites.fuzz.findings import SERVER_ERROR, SLOW
from pepharness.suites.fuzz.model import Result, Settings
from pepharness.suites.fuzz.plan import parse_profile
from pepharness.suites.fuzz.runner import Runner, pacer
from pepharness.suites.options import SuiteOptions

CATALOG = "GET /games/{version}/view/detailed"
HISTORY = "GET /transactions/{version}/games/history"
PAGINATED = "GET /transactions/{version}/games/history/api"


@pytest.fixture
def mock(sinatra_server: ThreadedServer) -> Iterator[str]:
    """The module's Sinatra mock, reset, with a rate limit no fuzz run reaches unless a test
    sets one."""
    url = sinatra_server.url
    requests.post(f"{url}/__admin/reset", timeout=10).raise_for_status()
    limit = {"limit": 100_000, "period_seconds": 1}
    requests.post(f"{url}/__admin/rate-limit", json=limit, timeout=10).raise_for_status()
    yield url
    requests.post(f"{url}/__admin/reset", timeout=10).raise_for_status()


def fuzz(url: str, **overrides: Any) -> Result:
    suite = SuiteOptions(base_url=url, seed=overrides.get("seed", 42))
    settings = Settings(**{
        "api": "sinatra", "base_url": url, "requests": 300, "concurrency": 4, "variety": 12,
        # Only the latency spike test measures latency: a loaded CI machine is slow now and then.
        "latency_budget_ms": 10_000, "suite": suite, **overrides,
    })
    api = APIS["sinatra"](suite)
    try:
        return Runner(settings, api).run()
    finally:
        api.close()


def result_latencies(result: Result) -> dict[str, list[float]]:
    return {row["operation"]: [row["p50_ms"]] * row["count"] for row in result.operations}


def faults(url: str, *rules: dict[str, Any]) -> None:
    requests.post(f"{url}/__admin/faults", json=list(rules), timeout=10).raise_for_status()


def test_injected_faults_are_found_once_each(mock: str) -> None:
    faults(
        mock,
        {"path": "/games/*/view/detailed", "method": "GET", "status": 500,
         "body": {"errMsg": "injected"}, "probability": 0.05},
        {"path": "/transactions/*/games/history", "method": "GET", "latency_ms": 2500,
         "probability": 0.1},
    )
    result = fuzz(mock, requests=400, concurrency=8, latency_budget_ms=2000)
    keys = sorted((f.kind, f.operation, f.status) for f in result.findings.sorted())
    assert keys == [(SERVER_ERROR, CATALOG, 500), (SLOW, HISTORY, None)], keys
    server_error = result.findings.sorted()[0]
    assert server_error.count >= 1
    assert "injected" in server_error.message
    assert server_error.answer_status == 500 and '"injected"' in server_error.excerpt
    slow = result.findings.sorted()[1]
    assert slow.status is None and slow.answer_status == 200
    assert slow.message.startswith("200 answered in ")
    assert server_error.curl.startswith("curl ") and "/view/detailed" in server_error.curl
    assert server_error.entry["response"]["status"] == 500
    # The kept request is the smallest of the run's 500s.
    sizes = [len(e["request"]["url"]) + len(e["request"].get("postData", {}).get("text", ""))
             for e in result.entries if e["response"]["status"] == 500]
    kept = server_error.entry["request"]
    assert len(kept["url"]) + len(kept.get("postData", {}).get("text", "")) == min(sizes)


def test_the_clean_mock_has_no_findings(mock: str) -> None:
    result = fuzz(mock, requests=400, mode="all")
    assert result.requests >= 400
    assert [f.key for f in result.findings.sorted()] == []
    assert set(result.statuses) <= {"200", "400", "401", "403", "422"}
    # Every answer is counted once in the status coverage and once in the flow/mode split,
    # and a cluster's merge adds them up.
    summary = result.summary()
    answers = sum(result.statuses.values())
    assert sum(sum(row["statuses"].values()) for row in summary["coverage"]) == answers
    assert sum(row["requests"] for row in summary["split"]) == answers
    split = {(row["flow"], row["mode"]) for row in summary["split"]}
    assert {("generated", "positive"), ("generated", "negative"), ("catalog", None)} <= split
    assert {row["operation"] for row in summary["coverage"]} >= {CATALOG, HISTORY}
    part = output.partial(result, result_latencies(result))
    merged, _, _ = output.merge([part, part], {"api": "sinatra"}, 1000)
    assert sum(row["requests"] for row in merged["split"]) == 2 * answers
    assert merged["coverage"][0]["statuses"] == {
        status: 2 * count for status, count in summary["coverage"][0]["statuses"].items()}


def test_a_contract_break_is_a_finding_of_its_check(mock: str) -> None:
    faults(mock, {"path": "/vendors/*/view/available", "method": "GET", "status": 200,
                  "body": {"providers": "not a list"}, "probability": 1.0})
    result = fuzz(mock, requests=120, profile={"catalog": 1})
    kinds = {(f.kind, f.operation) for f in result.findings.sorted()}
    assert ("response_schema_conformance", "GET /vendors/{version}/view/available") in kinds


def _requests_of(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What was sent, without what differs by nature between runs (tokens, the test-case id
    schemathesis stamps on each request; the fuzzer leaves the latter out)."""
    volatile = {"jwt-auth", "x-schemathesis-testcaseid"}
    return [
        (e["_pepharness"]["index"], e["_pepharness"]["step"], e["request"]["method"],
         e["request"]["url"], e["request"].get("postData", {}).get("text"),
         sorted((h["name"].lower(), h["value"]) for h in e["request"]["headers"]
                if h["name"].lower() not in volatile))
        for e in entries
    ]


def test_the_same_seed_sends_the_same_traffic(mock: str, tmp_path: Path) -> None:
    first = fuzz(mock, seed=7, requests=120, concurrency=4)
    second = fuzz(mock, seed=7, requests=120, concurrency=1)
    other = fuzz(mock, seed=8, requests=60, concurrency=4)
    for number, result in enumerate((first, second)):
        output.write_result(tmp_path / str(number), result)
    hars = [json.loads((tmp_path / str(n) / "traffic.har").read_text()) for n in (0, 1)]
    sent = [_requests_of(har["log"]["entries"]) for har in hars]
    # Where a run ends is a matter of timing: with 4 threads, a flow in progress when the
    # 120th request is planned stops there, and 4 items may be in flight. Every item before
    # those is the same, request for request.
    last = min(max(request[0] for request in run) for run in sent) - 4
    common = [[request for request in run if request[0] < last] for run in sent]
    assert len(common[0]) >= 100
    differing = [(a, b) for a, b in zip(*common, strict=False) if a != b]
    assert not differing, differing[:1]
    assert len(common[0]) == len(common[1])
    mine = _requests_of(sorted(other.entries, key=lambda e: (
        e["_pepharness"]["index"], e["_pepharness"]["step"])))
    assert len(mine) >= 40 and mine[:40] != common[0][:40]


def test_a_429_pauses_its_operation_for_its_retry_after(mock: str) -> None:
    requests.post(f"{mock}/__admin/rate-limit", json={"limit": 5, "period_seconds": 1},
                  timeout=10).raise_for_status()
    result = fuzz(mock, requests=25, concurrency=4, profile={"history": 1})
    answered = sum(n for status, n in result.statuses.items() if status != "429")
    assert answered >= 25
    # Each 429 paused the paginated history for its Retry-After (1 s): at most the requests
    # in flight meet a 429 in each window. A fuzzer that retried at once would collect
    # hundreds a second.
    windows = math.ceil(result.duration) + 1
    assert result.statuses["429"] <= 4 * windows, (result.statuses, result.duration)
    assert result.findings.sorted() == []


def test_timeouts_are_findings_without_a_status(mock: str) -> None:
    faults(mock, {"path": "/vendors/*", "method": "GET", "latency_ms": 2500,
                  "probability": 1.0})
    result = fuzz(mock, requests=12, timeout=1.0, profile={"catalog": 1})
    timeouts = [f for f in result.findings.sorted() if f.kind == "timeout"]
    assert len(timeouts) == 1 and timeouts[0].status is None
    assert timeouts[0].entry["response"]["_error"].startswith("timeout")


def test_a_closed_port_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = fuzz(url, requests=5, profile={"generated": 1}, mode="positive")
    kinds = {f.kind for f in result.findings.sorted()}
    assert kinds == {"connection_error"}


def test_profiles_are_parsed_and_checked() -> None:
    assert parse_profile("catalog=3, generated=1", ["catalog", "generated"]) == {
        "catalog": 3.0, "generated": 1.0}
    for bad in ("nope=1", "catalog=x", "catalog=-1", "catalog=0"):
        with pytest.raises(ValueError):
            parse_profile(bad, ["catalog", "generated"])


def test_the_pacer_holds_the_rate() -> None:
    assert pacer(None) is None
    limiter = pacer(20)
    assert limiter is not None
    started = time.monotonic()
    for _ in range(30):
        limiter.try_acquire("fuzz")
    # 30 at 20 a second: at least the second's worth beyond the first window.
    assert time.monotonic() - started >= 0.9


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pepharness", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_the_command_writes_its_reports_and_exits_1_on_findings(
    mock: str, tmp_path: Path
) -> None:
    faults(mock, {"path": "/games/*/view/detailed", "method": "GET", "status": 503,
                  "body": {"errMsg": "down\nfor <maintenance>"}, "probability": 1.0})
    done = run_cli("fuzz", "sinatra", "--base-url", mock, "--requests", "60", "--variety", "8",
                   "--profile", "catalog=1", "--out", str(tmp_path), "--seed", "3")
    assert done.returncode == 1, done.stderr
    assert "fuzzing sinatra at" in done.stderr
    assert "server_error" in done.stdout and "curl " in done.stdout
    # The server error's body, on one line.
    assert '\n      body: {"errMsg": "down\\nfor <maintenance>"}' in done.stdout.replace(
        '{"errMsg":"', '{"errMsg": "')
    for name in ("findings.json", "summary.json", "traffic.har", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["requests"] >= 60
    page = (tmp_path / "report.html").read_text()
    for heading in ("Status codes per operation", "Requests by flow and mode"):
        assert f"<h2>{heading}</h2>" in page
    assert "<td>catalog</td><td>—</td>" in page
    for note in summary["notes"]:  # summary.json's notes are on the page too
        assert f"<li>{html.escape(note)}</li>" in page
    # The jwt-auth token is masked in the console, findings.json's curl and report.html.
    finding = json.loads((tmp_path / "findings.json").read_text())["findings"][0]
    sent = {h["name"]: h["value"] for h in finding["entry"]["request"]["headers"]}
    assert '"jwt-auth: $JWT_AUTH"' in finding["curl"]
    for text in (done.stdout, finding["curl"], (tmp_path / "report.html").read_text()):
        assert sent["jwt-auth"] not in text
    assert summary["statuses"].get("503", 0) >= 1
    assert "Traceback" not in done.stderr


def test_the_command_refuses_bad_options_in_one_line(mock: str, tmp_path: Path) -> None:
    done = run_cli("fuzz", "sinatra", "--duration", "soon")
    assert done.returncode == 2 and "--duration" in done.stderr
    assert "Traceback" not in done.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_cli("fuzz", "sinatra", "--base-url", f"http://127.0.0.1:{port}",
                   "--requests", "5", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: cannot reach")
    done = run_cli("fuzz", "sinatra", "--profile", "lottery=1", "--requests", "1",
                   "--base-url", mock, "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown flow 'lottery'" in done.stderr and "catalog" in done.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    done = run_cli("fuzz", "sinatra", "--base-url", mock, "--requests", "1",
                   "--out", str(blocked / "reports"))
    assert done.returncode == 2 and "cannot write to" in done.stderr
    assert "fuzzing sinatra" not in done.stderr


def test_ctrl_c_stops_cleanly_and_still_reports(mock: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pepharness", "fuzz", "sinatra", "--base-url", mock,
         "--duration", "120s", "--variety", "4", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # Interrupted once it is sending: the first progress line says so.
        assert process.stderr is not None
        for line in process.stderr:
            if " req/s " in line or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "stopped by interrupt" in stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stopped_by"] == "interrupt" and summary["requests"] > 0
    assert summary["duration_seconds"] < 60


def test_a_run_replays_the_same_against_the_same_mock(mock: str, tmp_path: Path) -> None:
    result = fuzz(mock, requests=60, profile={"history": 1, "catalog": 1, "generated": 1})
    output.write_result(tmp_path, result)
    # The replay goes faster than the paginated history's rate limit: it waits out the 429s
    # the recording never got, rather than reporting them as differences.
    requests.post(f"{mock}/__admin/rate-limit", json={"limit": 5, "period_seconds": 1},
                  timeout=10).raise_for_status()
    done = run_cli("replay", str(tmp_path / "traffic.har"), "--base-url", mock)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert f"{len(result.entries)} replayed" in done.stdout.splitlines()[-1]
    assert "0 differ" in done.stdout.splitlines()[-1]
