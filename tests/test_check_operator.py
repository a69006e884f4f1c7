"""`pepharness check operator` names the rule each planted fault breaks, passes the real mock, and
refuses to run without a valid token or a reachable target."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from planted.operator_variants import OPERATOR_VARIANTS, operator_app
from planted.variants import Variant

from pepharness.checks.group import check
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.operator import backend_of

EXPIRED_TOKEN = "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e"


def tokens_of(app: Flask) -> tuple[str, str]:
    """A seeded token of `app`, and a token programmed to have expired in 2020."""
    backend = backend_of(app)
    valid = next(rule for rule in backend.rules() if rule.seeded)
    backend.program(
        {"identityToken": EXPIRED_TOKEN, "playerId": valid.player_id,
         "expiresAt": "2020-01-01T00:00:00Z"}
    )
    return valid.identity_token, EXPIRED_TOKEN


def run_check(url: str, report_dir: Path, *extra: str) -> Result:
    """`pepharness check operator` in this process, with no PEPHARNESS_* of the environment."""
    arguments = [
        "--base-url", url,
        "--report-dir", str(report_dir),
        "--seed", "1",
        "--max-examples", "5",
        "--burst", "40",
        *extra,
    ]
    unset = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    return CliRunner().invoke(check, ["operator", *arguments], env=unset)


def run_on(app: Flask, report_dir: Path, *extra: str, expired: bool = True) -> Result:
    """The check against `app` served on loopback, with its valid (and expired) token."""
    valid, expired_token = tokens_of(app)
    tokens = ["--valid-token", valid]
    if expired:
        tokens += ["--expired-token", expired_token]
    with ThreadedServer(app, threads=8) as server:
        return run_check(server.url, report_dir, *tokens, *extra)


def summary_of(report_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("variant", OPERATOR_VARIANTS, ids=[v.name for v in OPERATOR_VARIANTS])
def test_planted_fault_is_named(variant: Variant, tmp_path: Path) -> None:
    result = run_on(variant.build(), tmp_path, "--rules", variant.rules, *variant.options)
    output = result.output
    assert (tmp_path / "summary.json").is_file(), output
    failed = {(f["rule"], f["level"]) for f in summary_of(tmp_path)["failures"]}
    assert (variant.expected, variant.level) in failed, output
    assert result.exit_code == variant.exit_code, output
    assert variant.expected in output
    assert (tmp_path / "junit.xml").is_file() and (tmp_path / "report.html").is_file()


def test_real_mock_passes_every_rule(tmp_path: Path) -> None:
    result = run_on(operator_app(), tmp_path)
    output = result.output
    assert result.exit_code == 0, output
    summary = summary_of(tmp_path)
    assert summary["verdict"] == "pass"
    assert summary["failures"] == [], output
    assert summary["counts"]["MUST"]["passed"] > 10
    assert summary["not_verified"] == []


def test_without_expired_token_expiry_is_not_verified(tmp_path: Path) -> None:
    # The token rules only: the full run is test_real_mock_passes_every_rule's.
    result = run_on(operator_app(), tmp_path, "--rules", "check_*_token_*", expired=False)
    assert result.exit_code == 0, result.output
    summary = summary_of(tmp_path)
    assert summary["failures"] == []
    unverified = {entry["rule"] for entry in summary["not_verified"]}
    assert unverified == {"check_expired_token_is_401"}
    reasons = [entry["reason"] for entry in summary["not_verified"]]
    assert any("--expired-token" in reason for reason in reasons)


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_without_valid_token_is_exit_2(tmp_path: Path) -> None:
    # Without /__admin the check cannot take a seeded token of its own, as for a real operator.
    with ThreadedServer(operator_app(ADMIN=False), threads=2) as server:
        result = run_check(server.url, tmp_path)
    assert "--valid-token" in _one_line_error(result)
    assert not (tmp_path / "summary.json").exists()


def test_unreachable_target_is_exit_2(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_check(url, tmp_path, "--valid-token", "3f2a9c1e5b7d4e8f9a0b1c2d3e4f5a6b")
    assert "cannot reach" in _one_line_error(result)
    assert not (tmp_path / "summary.json").exists()


def test_help_lists_the_operator_options() -> None:
    result = CliRunner().invoke(check, ["operator", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--valid-token", "--expired-token", "--burst"):
        assert option in result.output
