"""`pepharness check pep-frontend` names the rule each planted fault breaks, passes the reference
PEP with the operator played by the check or by an operator mock already there, and refuses to
run (exit 2, one line) when the PEP or the operator's port is not usable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from planted.pep_variants import PEP_VARIANTS, PepVariant, pep_app

from pepharness.checks.group import check
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.operator import create_app as operator_app

OPERATOR_TIMEOUT = "5"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_of(server: ThreadedServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def config(operator_port: int, folder: Path) -> dict[str, Any]:
    """A PEP calling the operator on `operator_port`, its database in `folder`."""
    return {
        "OPERATOR_URL": f"http://127.0.0.1:{operator_port}",
        "DATABASE": str(folder / "pep.sqlite3"),
    }


def arguments(url: str, operator_port: int, report_dir: Path, *extra: str) -> list[str]:
    return [
        "pep-frontend",
        "--base-url", url,
        "--operator-port", str(operator_port),
        "--operator-timeout", OPERATOR_TIMEOUT,
        "--client-secret", "pep-demo-secret",
        "--report-dir", str(report_dir),
        "--seed", "1",
        "--max-examples", "5",
        *extra,
    ]


def run_check(app: Flask, operator_port: int, report_dir: Path, *extra: str) -> Result:
    """`pepharness check pep-frontend` in this process against `app` served on loopback."""
    unset = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    with ThreadedServer(app, threads=8) as server:
        return CliRunner().invoke(
            check, arguments(server.url, operator_port, report_dir, *extra), env=unset
        )


def pepharness(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    return subprocess.run(
        [sys.executable, "-m", "pepharness", "check", *argv],
        capture_output=True, text=True, env=env, timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def summary_of(report_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    return found


def test_reference_pep_passes_every_rule(tmp_path: Path) -> None:
    port = free_port()
    report = tmp_path / "report"
    result = run_check(pep_app(config(port, tmp_path)), port, report)
    output = result.output
    assert result.exit_code == 0, output
    summary = summary_of(report)
    assert summary["verdict"] == "pass"
    assert summary["failures"] == [], output
    # The check serves the operator itself, so it can also stop it.
    assert summary["not_verified"] == [], output
    verified = {r["rule"]: r["outcomes"] for r in summary["rules"]}
    assert verified["check_dead_operator_is_bounded"]["passed"] == 1
    assert "served by the check" in output


@pytest.fixture
def operator_mock() -> Iterator[int]:
    """An operator mock on a loopback port, as `pepharness serve all` runs it; its port."""
    with ThreadedServer(operator_app({"SEED": 42}), threads=8) as server:
        yield port_of(server)


# The rules whose checks play the operator (what differs when the check programs a mock already
# there); the others, the same either way, are run by test_reference_pep_passes_every_rule.
OPERATOR_RULES = "*operator*,*login*,*token*,*client*,*expires_at*"


def test_operator_mock_already_there(operator_mock: int, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = run_check(pep_app(config(operator_mock, tmp_path)), operator_mock, report,
                       "--rules", OPERATOR_RULES)
    output = result.output
    assert result.exit_code == 0, output
    summary = summary_of(report)
    assert summary["failures"] == [], output
    unverified = {entry["rule"] for entry in summary["not_verified"]}
    assert unverified == {"check_dead_operator_is_bounded"}, output
    passed = {r["rule"] for r in summary["rules"] if r["outcomes"].get("passed")}
    assert len(passed) >= 15 and "check_login_issues_token" in passed, output
    assert "the operator mock already there" in output


@pytest.mark.parametrize("variant", PEP_VARIANTS, ids=[v.name for v in PEP_VARIANTS])
def test_planted_fault_is_named(variant: PepVariant, tmp_path: Path) -> None:
    port = free_port()
    app = variant.build(config(port, tmp_path))
    report = tmp_path / "report"
    result = run_check(app, port, report, "--rules", variant.rules, *variant.options)
    output = result.output
    assert (report / "summary.json").is_file(), output
    failed = {(f["rule"], f["level"]) for f in summary_of(report)["failures"]}
    assert (variant.expected, variant.level) in failed, output
    assert result.exit_code == variant.exit_code, output
    assert variant.expected in output
    assert (report / "junit.xml").is_file() and (report / "report.html").is_file()


def test_unreachable_pep_is_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(pepharness("pep-frontend", "--base-url", url,
                                     "--operator-port", str(free_port())))
    assert line == f"error: cannot reach {url}: connection refused"


def test_pep_calling_another_operator_is_exit_2(tmp_path: Path) -> None:
    wired, given = free_port(), free_port()
    with ThreadedServer(pep_app(config(wired, tmp_path)), threads=8) as server:
        line = one_line_error(pepharness("pep-frontend", "--base-url", server.url,
                                         "--operator-port", str(given)))
    assert f"the PEP did not call the operator at http://127.0.0.1:{given}" in line


def test_operator_port_taken_is_exit_2(tmp_path: Path) -> None:
    # Another web service on the port: GET /__admin/health is its 404, not an operator's.
    with ThreadedServer(Flask("not-an-operator")) as other:
        port = port_of(other)
        with ThreadedServer(pep_app(config(port, tmp_path)), threads=8) as server:
            line = one_line_error(pepharness("pep-frontend", "--base-url", server.url,
                                             "--operator-port", str(port)))
    assert f"port {port} is taken by something that is not a pep-harness operator mock" in line


def test_help_lists_the_options() -> None:
    result = pepharness("pep-frontend", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--base-url", "--client-id", "--client-secret", "--operator-port",
                   "--operator-timeout", "--rules", "--strict", "Exit 2"):
        assert option in result.stdout
