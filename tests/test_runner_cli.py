"""The shared runner's promises for `check`, `run`, `verify-client` and `demo` (issue 14's one
runner, issue 15 items 2-4): every output place checked before any work, one `error:` line and
exit 2; a host that does not resolve said so; `check API` reporting to reports/API/ by default;
`check API --list-rules` in run's format; the NOT VERIFIED rules named on the console; xdist's
status line once. Nothing here runs a suite: each command stops before one would start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pepharness.checks.common import catalog
from pepharness.suites import report

NOWHERE = "/proc/pepharness-nope"


def pepharness(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    return subprocess.run(
        [sys.executable, "-m", "pepharness", *arguments],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    return line


@pytest.mark.parametrize(
    "arguments",
    [
        ("check", "sinatra", "--report-dir", NOWHERE),
        ("demo", "--report-dir", NOWHERE),
        ("run", "--mocks", "sinatra", "--report-dir", NOWHERE, "--", "true"),
        ("verify-client", "--traffic", __file__, "--report-dir", NOWHERE),
    ],
    ids=["check", "demo", "run", "verify-client"],
)
def test_an_unwritable_report_dir_is_one_line_before_any_work(arguments: tuple[str, ...]) -> None:
    line = one_line_error(pepharness(*arguments))
    assert line == f"error: cannot write to {NOWHERE}: No such file or directory"


def test_a_host_that_does_not_resolve_says_so_and_reports_go_to_reports_api(
    tmp_path: Path,
) -> None:
    result = pepharness("check", "operator", "--base-url", "http://nope.invalid:8102",
                        cwd=tmp_path)
    line = one_line_error(result)
    assert line == "error: cannot resolve nope.invalid (the host of http://nope.invalid:8102)"
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == [
        "reports", "reports/operator"
    ]


def test_a_parse_error_is_one_error_line_too() -> None:
    line = one_line_error(pepharness("check", "sinatra", "--no-such-option"))
    assert line.startswith("error: No such option '--no-such-option' (see `"), line
    assert line.endswith(" check sinatra --help`)"), line


def test_check_list_rules_needs_no_target_and_matches_runs_format() -> None:
    result = pepharness("check", "pep-platform", "--list-rules",
                        "--base-url", "http://127.0.0.1:1")
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    rules = catalog("pep-platform")
    assert [fields[0] for fields in lines] == [rule.name for rule in rules]
    for fields, rule in zip(lines, rules, strict=True):
        assert fields == [rule.name, str(rule.level), "pep-platform", rule.source, rule.summary]


def test_the_console_names_each_not_verified_rule_and_why() -> None:
    results = [
        {"rule": "check_a", "level": "MUST", "source": "s", "summary": "a", "outcome": "passed"},
        *({"rule": "check_b", "level": "MUST", "source": "s", "summary": "b",
           "outcome": "not_verified", "operation": op,
           "reason": "NOT VERIFIED: give --expect-rate-limit N/SECONDS"} for op in ("x", "y")),
        {"rule": "check_c", "level": "SHOULD", "source": "s", "summary": "c",
         "outcome": "not_verified", "reason": "the client sent nothing this rule looks at"},
    ]
    summary = report.summarize_results(results, apis=["x"], seed=1, strict=False, wall_time=1)
    lines = report.summary_lines(summary)
    assert "MUST   1 passed, 2 not verified" in lines
    assert [line for line in lines if line.startswith("NOT VERIFIED")] == [
        "NOT VERIFIED MUST   check_b: give --expect-rate-limit N/SECONDS "
        "(and 1 more operation(s))",
        "NOT VERIFIED SHOULD check_c: the client sent nothing this rule looks at",
    ]
    assert summary["verdict"] == "pass" and lines[-1].startswith("verdict: PASS")


def test_xdist_says_bringing_up_nodes_once(tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "xdist.plugin", "-p",
         "pepharness.checks.xdist_status", "-n", "2", "-p", "no:cacheprovider",
         "-c", os.devnull, "--rootdir", str(tmp_path), "test_one.py"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("bringing up nodes...") == 1, done.stdout
