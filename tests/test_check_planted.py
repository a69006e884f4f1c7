"""`pepharness check sinatra` names the rule each planted fault breaks, and passes the real mock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from planted.variants import VARIANTS, Variant, base_app

from pepharness.checks.group import check
from pepharness.mocks.core import ThreadedServer


def run_check(url: str, report_dir: Path, *extra: str) -> Result:
    """`pepharness check sinatra` in this process (its pytest runs are subprocesses still)."""
    arguments = [
        "--base-url", url,
        "--report-dir", str(report_dir),
        "--workers", "1",
        "--seed", "1",
        "--max-examples", "5",
        "--clock-control", f"{url}/__admin",
        "--expect-rate-limit", "50/1",
        *extra,
    ]
    unset = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    return CliRunner().invoke(check, ["sinatra", *arguments], env=unset)


def summary_of(report_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    return found


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_planted_fault_is_named(variant: Variant, tmp_path: Path) -> None:
    with ThreadedServer(variant.build(), threads=8) as server:
        selection = ["--rules", variant.rules]
        if variant.operations:
            selection += ["--operations", variant.operations]
        result = run_check(server.url, tmp_path, *selection, *variant.options)
    output = result.output
    assert (tmp_path / "summary.json").is_file(), output
    summary = summary_of(tmp_path)
    failed = {(f["rule"], f["level"]) for f in summary["failures"]}
    assert (variant.expected, variant.level) in failed, output
    assert result.exit_code == variant.exit_code, output
    assert variant.expected in output
    assert (tmp_path / "junit.xml").is_file() and (tmp_path / "report.html").is_file()


def test_real_mock_passes_every_rule(tmp_path: Path) -> None:
    with ThreadedServer(base_app(), threads=8) as server:
        result = run_check(server.url, tmp_path)  # every rule, on every operation
    output = result.output
    assert result.exit_code == 0, output
    summary = summary_of(tmp_path)
    assert summary["verdict"] == "pass"
    assert summary["failures"] == [], output
    assert summary["counts"]["MUST"]["passed"] > 100
    # With --clock-control and --expect-rate-limit nothing is left unverified.
    assert summary["not_verified"] == []
    assert "wall time" in output
