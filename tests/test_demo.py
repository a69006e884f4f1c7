"""`pepharness demo`, README's first command, as a newcomer runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_serves_checks_and_reports(tmp_path: Path) -> None:
    result = subprocess.run(
        # Fewer generated examples than the default: the checks themselves are tested apart.
        [sys.executable, "-m", "pepharness", "demo", "--report-dir", str(tmp_path),
         "--max-examples", "5"],
        capture_output=True, text=True, timeout=420, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
    summary = json.loads((tmp_path / "demo-summary.json").read_text())
    assert summary["verdict"] == "pass"
    assert len(summary["sinatra"]) >= 20
    assert {step["status"] for step in summary["sinatra"]} >= {200, 400, 401, 403, 422, 429}
    assert summary["check_exit_codes"] == {
        "sinatra": 0, "operator": 0, "pep-frontend": 0, "pep-platform": 0
    }
    for api in ("sinatra", "operator", "pep-frontend", "pep-platform"):
        checked = json.loads((tmp_path / api / "summary.json").read_text())
        assert checked["verdict"] == "pass", api
        assert (tmp_path / api / "report.html").is_file()
