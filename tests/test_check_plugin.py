"""The suites' pytest plugin on a small suite of its own: options and their environment
variables, one result per rule and operation, NOT VERIFIED, --rules, and the reports (also
gathered from xdist workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

SUITE = '''
import pytest

from pepharness.suites.rules import Level, RuleCatalog, covers, fail, not_verified

RULES = RuleCatalog("sinatra")
PASSES = RULES.add("check_it_passes", Level.MUST, "seed §1", "Passes.")
BREAKS = RULES.add("check_it_breaks", Level.SHOULD, "D1", "Breaks.")
UNSURE = RULES.add("check_it_cannot_tell", Level.MUST, "D2", "Cannot tell.")
CRASHES = RULES.add("check_it_crashes", Level.INFO, "D3", "Crashes.")


OPERATIONS = ["GET /vendors/{version}/view/available", "POST /{version}/login/"]


@pytest.mark.parametrize("operation", OPERATIONS)
@covers(PASSES)
def test_passes(suite_options, operation):
    assert suite_options.base_url == "http://target.invalid"
    assert suite_options.max_examples == 7


@covers(BREAKS, operation="GET /games/{version}/view/detailed")
def test_breaks(suite_options):
    fail(BREAKS, "it broke", received="400", documented="200", curl="curl http://target.invalid")


@covers(UNSURE, operation="POST /{version}/login/")
def test_cannot_tell(suite_options):
    not_verified("needs --clock-control")


@covers(CRASHES)
def test_crashes(suite_options):
    raise KeyError("boom")


def test_not_a_rule():
    pass
'''


def run_suite(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_small_suite.py").write_text(SUITE, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    env.update(PEPHARNESS_BASE_URL="http://target.invalid", PEPHARNESS_MAX_EXAMPLES="7")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path),
         "--rootdir", str(tmp_path), "-c", str(tmp_path / "pytest.ini"),
         "--report-dir", str(tmp_path / "reports"), *arguments],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )


def summary(tmp_path: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (tmp_path / "reports" / "summary.json").read_text(encoding="utf-8")
    )
    return found


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_results_per_rule_and_operation(tmp_path: Path, workers: list[str]) -> None:
    result = run_suite(tmp_path, *workers)
    assert result.returncode == 1, result.stdout + result.stderr
    found = summary(tmp_path)
    outcomes = {(r["rule"], r["operation"]): r["outcome"] for r in found["results"]}
    assert outcomes == {
        ("check_it_passes", "GET /vendors/{version}/view/available"): "passed",
        ("check_it_passes", "POST /{version}/login/"): "passed",
        ("check_it_breaks", "GET /games/{version}/view/detailed"): "failed",
        ("check_it_cannot_tell", "POST /{version}/login/"): "not_verified",
        ("check_it_crashes", None): "error",
    }
    # A MUST that is not verified, a SHOULD that failed, an INFO error: the verdict passes.
    assert found["verdict"] == "pass"
    assert found["counts"]["SHOULD"]["failed"] == 1
    (failure,) = [f for f in found["failures"] if f["rule"] == "check_it_breaks"]
    assert failure["received"] == "400" and failure["documented"] == "200"
    assert failure["curl"] == "curl http://target.invalid" and failure["source"] == "D1"
    assert "wall time" in result.stdout and "verdict: PASS" in result.stdout
    suite = ET.parse(tmp_path / "reports" / "junit.xml").getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 5
    assert {c.get("name") for c in cases} >= {"check_it_breaks[GET /games/{version}/view/detailed]"}
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert skipped[0].find("skipped").get("message", "").startswith("NOT VERIFIED")  # type: ignore[union-attr]
    page = (tmp_path / "reports" / "report.html").read_text(encoding="utf-8")
    assert "check_it_breaks" in page and "<link" not in page and "<script" not in page
    coverage = {row["operation"]: row for row in found["coverage"]}
    assert coverage["POST /{version}/login/"]["never_exercised"] == ["200", "400", "500"]


def test_fail_on_should_fails_the_verdict(tmp_path: Path) -> None:
    run_suite(tmp_path, "--fail-on-should")
    assert summary(tmp_path)["verdict"] == "fail"


def test_rules_select_checks(tmp_path: Path) -> None:
    result = run_suite(tmp_path, "--rules", "check_it_p*,check_it_cannot*")
    assert result.returncode == 0, result.stdout
    assert {r["rule"] for r in summary(tmp_path)["results"]} == {
        "check_it_passes", "check_it_cannot_tell",
    }


def test_operations_select_checks(tmp_path: Path) -> None:
    run_suite(tmp_path, "--operations", "POST /*")
    assert {r["operation"] for r in summary(tmp_path)["results"]} == {
        "POST /{version}/login/", None,
    }


def test_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_suite(tmp_path, "--expect-rate-limit", "lots")
    assert result.returncode == 4
    assert "is not N/SECONDS" in result.stderr
