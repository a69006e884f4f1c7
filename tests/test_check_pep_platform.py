"""`pepharness check pep-platform` passes the reference PEP (across a restart too), names the rule
each planted fault of tests/planted/platform_variants.py breaks (a SHOULD one failing the verdict
only with --strict), and refuses to run (exit 2, one line) when the target is unreachable or
refuses the client's credentials."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from flask import Flask
from planted.platform_variants import PLATFORM_VARIANTS, PlatformVariant

from pepharness.checks.pep_platform import check_pep_platform
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.pep import create_app

PLANTED = Path(__file__).parent / "planted"
DURABILITY = "check_accepted_event*"
RESTART_RULE = "check_accepted_events_survive_a_restart"
START_SECONDS = 30


def reference(tmp_path: Path) -> Flask:
    return create_app({"DATABASE": str(tmp_path / "pep.sqlite3")})


def check_target(url: str, report_dir: Path, *extra: str, clock: bool = True) -> Result:
    """`pepharness check pep-platform` in this process against the PEP at `url`."""
    unset = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    options = ["--clock-control", f"{url}/__admin"] if clock else []
    arguments = [
        "--base-url", url,
        "--report-dir", str(report_dir),
        "--seed", "3",
        "--expect-rate-limit", "100/60",
        *options,
        *extra,
    ]
    return CliRunner().invoke(check_pep_platform, arguments, env=unset)


def run_check(app: Flask, report_dir: Path, *extra: str, clock: bool = True) -> Result:
    """`pepharness check pep-platform` in this process against `app` served on loopback."""
    with ThreadedServer(app, threads=8) as server:
        return check_target(server.url, report_dir, *extra, clock=clock)


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
    # The clock control and the expected rate limit leave only the restart unverified.
    unverified = {entry["rule"]: entry["reason"] for entry in summary["not_verified"]}
    assert list(unverified) == [RESTART_RULE], output
    assert "--restart-command" in unverified[RESTART_RULE]
    verified = {r["rule"]: r["outcomes"] for r in summary["rules"]}
    for rule in ("check_token_expires", "check_rate_limit_is_429_at_request_n_plus_1",
                 "check_rate_limit_recovers_after_retry_after"):
        assert verified[rule].get("passed", 0) >= 1, (rule, verified[rule])
    # The one 429 of the run is the one the rate-limit check provoked: the other checks kept
    # within the budget.
    observed = {c["operation"]: c["observed"] for c in summary["coverage"]}
    assert observed["GET /api/data-fetch/v1/transactions"].get("429") == 1, observed
    assert "429" not in observed["GET /api/data-fetch/v1/players"], observed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(variant: str, folder: Path) -> Iterator[tuple[str, str]]:
    """`variant` (or `reference`) served by serve_platform.py in a process of its own, from
    `folder`: its URL, and the restart command to run from `folder` (paths relative to it, as
    `check pep-platform` runs the command from its own directory)."""
    port = free_port()
    arguments = [variant, str(port), "pep.sqlite3", "pep.pid"]
    url = f"http://127.0.0.1:{port}"
    with (folder / "pep.log").open("ab") as log:
        first = subprocess.Popen(
            [sys.executable, str(PLANTED / "serve_platform.py"), *arguments],
            cwd=folder, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        try:
            _wait_until_listening(url, first, folder)
            restart = shlex.join(["sh", str(PLANTED / "restart.sh"), *arguments])
            yield url, f"PYTHON={shlex.quote(sys.executable)} {restart}"
        finally:
            # The first process, and the one the restart command started in its place.
            first.kill()
            first.wait()
            pidfile = folder / "pep.pid"
            if pidfile.is_file():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pidfile.read_text(encoding="utf-8")), signal.SIGKILL)


def _wait_until_listening(url: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        # The pid is written once the port is bound, before the first request is served.
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/__admin/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    log = (folder / "pep.log").read_text(encoding="utf-8", errors="replace")
    raise AssertionError(f"serve_platform.py did not listen on {url}:\n{log[-2000:]}")


def run_variant(variant: PlatformVariant, folder: Path, report: Path) -> Result:
    """The check of `variant`'s rules (max examples 5), a restart variant served by a process
    of its own with the restart command given."""
    extra = ["--rules", variant.rules, "--max-examples", "5", *variant.options]
    if not variant.restart:
        app = variant.build({"DATABASE": str(folder / "pep.sqlite3")})
        return run_check(app, report, *extra)
    with served(variant.name, folder) as (url, restart):
        return check_target(url, report, *extra, "--restart-command", restart)


@pytest.mark.parametrize("variant", PLATFORM_VARIANTS, ids=[v.name for v in PLATFORM_VARIANTS])
def test_planted_fault_is_named(
    variant: PlatformVariant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the restart command runs from
    report = tmp_path / "report"
    result = run_variant(variant, tmp_path, report)
    output = result.output
    assert (report / "summary.json").is_file(), output
    # Failed (the check ran and named the rule), not an error of the check itself.
    failed = {(f["rule"], f["level"], f["outcome"]) for f in summary_of(report)["failures"]}
    assert failed == {(rule, variant.level, "failed") for rule in variant.expected}, output
    assert result.exit_code == variant.exit_code, output
    for rule in variant.expected:
        assert rule in output


def test_reference_pep_survives_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "report"
    pidfile = tmp_path / "pep.pid"
    with served("reference", tmp_path) as (url, restart):
        first = pidfile.read_text(encoding="utf-8")
        result = check_target(url, report, "--rules", DURABILITY, "--restart-command", restart)
        # The restart command ran: another process serves now.
        assert pidfile.read_text(encoding="utf-8") != first
    output = result.output
    assert result.exit_code == 0, output
    summary = summary_of(report)
    assert summary["failures"] == [] and summary["not_verified"] == [], output
    verified = {r["rule"]: r["outcomes"] for r in summary["rules"]}
    assert verified[RESTART_RULE]["passed"] == 1, verified
    assert verified["check_accepted_event_is_readable_at_once"]["passed"] == 2, verified
    assert "restart by command" in output


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
