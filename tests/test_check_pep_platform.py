"""`pepharness check pep-platform` passes the reference PEP, names the rule each of three quick
planted faults breaks (a SHOULD one failing the verdict only with --strict), and refuses to run
(exit 2, one line) when the target is unreachable or refuses the client's credentials."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask, Response, request

from pepharness.check_platform import check_pep_platform
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.pep import create_app

TOKEN = "/api/oauth/v1/token"


def reference(tmp_path: Path) -> Flask:
    return create_app({"DATABASE": str(tmp_path / "pep.sqlite3")})


def run_check(app: Flask, report_dir: Path, *extra: str, clock: bool = True) -> Result:
    """`pepharness check pep-platform` in this process against `app` served on loopback."""
    unset = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    with ThreadedServer(app, threads=8) as server:
        options = ["--clock-control", f"{server.url}/__admin"] if clock else []
        arguments = [
            "--base-url", server.url,
            "--report-dir", str(report_dir),
            "--seed", "3",
            "--expect-rate-limit", "100/60",
            *options,
            *extra,
        ]
        return CliRunner().invoke(check_pep_platform, arguments, env=unset)


def summary_of(report_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    return found


def test_reference_pep_passes_every_rule(tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = run_check(reference(tmp_path), report)
    output = result.output
    assert result.exit_code == 0, output
    summary = summary_of(report)
    assert summary["verdict"] == "pass"
    assert summary["failures"] == [], output
    # The clock control and the expected rate limit leave nothing unverified.
    assert summary["not_verified"] == [], output
    verified = {r["rule"]: r["outcomes"] for r in summary["rules"]}
    for rule in ("check_token_expires", "check_rate_limit_is_429_at_request_n_plus_1",
                 "check_rate_limit_recovers_after_retry_after"):
        assert verified[rule].get("passed", 0) >= 1, (rule, verified[rule])
    # The one 429 of the run is the one the rate-limit check provoked: the other checks kept
    # within the budget.
    observed = {c["operation"]: c["observed"] for c in summary["coverage"]}
    assert observed["GET /api/data-fetch/v1/transactions"].get("429") == 1, observed
    assert "429" not in observed["GET /api/data-fetch/v1/players"], observed


def _rewrite(app: Flask, change: Callable[[Response], None]) -> Flask:
    @app.after_request
    def rewrite(response: Response) -> Response:
        change(response)
        return response

    return app


def _events_answer_200(response: Response) -> None:
    if request.path.startswith("/rx-api/") and response.status_code == 202:
        response.status_code = 200


def _token_may_be_cached(response: Response) -> None:
    if request.path == TOKEN:
        response.headers.pop("Cache-Control", None)


def _no_challenge(response: Response) -> None:
    if response.status_code == 401:
        response.headers.pop("WWW-Authenticate", None)


CHALLENGES = "check_invalid_client_carries_www_authenticate,check_bearer_401_carries_challenge"


@pytest.mark.parametrize(
    ("change", "rules", "expected", "strict", "exit_code"),
    [
        (_events_answer_200, "check_valid_event_is_202", {"check_valid_event_is_202"}, False, 1),
        (_token_may_be_cached, "check_token_*", {"check_token_answer_is_not_stored"}, False, 1),
        (_no_challenge, CHALLENGES, set(CHALLENGES.split(",")), False, 0),
        (_no_challenge, CHALLENGES, set(CHALLENGES.split(",")), True, 1),
    ],
    ids=["events-200", "token-cacheable", "no-challenge", "no-challenge-strict"],
)
def test_planted_fault_is_named(
    tmp_path: Path,
    change: Callable[[Response], None],
    rules: str,
    expected: set[str],
    strict: bool,
    exit_code: int,
) -> None:
    report = tmp_path / "report"
    app = _rewrite(reference(tmp_path), change)
    result = run_check(app, report, "--rules", rules, *(["--strict"] if strict else []))
    output = result.output
    failed = {f["rule"] for f in summary_of(report)["failures"]}
    assert failed == expected, output
    assert result.exit_code == exit_code, output
    for rule in expected:
        assert rule in output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _aborted(arguments: list[str]) -> str:
    unset = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    result = CliRunner().invoke(check_pep_platform, arguments, env=unset)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_unreachable_target_is_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert _aborted(["--base-url", url]) == f"error: cannot reach {url}: connection refused"


def test_refused_credentials_are_exit_2(tmp_path: Path) -> None:
    with ThreadedServer(reference(tmp_path), threads=4) as server:
        line = _aborted(["--base-url", server.url, "--client-secret", "not-the-secret"])
    assert line.startswith("error: the target refused the credentials of pep-demo-client"), line
    assert "not-the-secret" not in line
