"""report.html of `run` / `verify-client` (D122, D123) over a written traffic file: the windows
around each breach, merged and cut, and the scenario steps placed by time. The end-to-end pages
(a real run, hostile values) are in tests/test_run.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pepharness.run_report import SHOWN_BREACHES, WINDOW, render_html

START = datetime(2026, 1, 1, tzinfo=UTC)


def _traffic(path: Path, lines: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for seq in range(1, lines + 1):
            entry = {
                "seq": seq, "mock": "sinatra", "method": "GET", "path": f"/p{seq}/",
                "time": (START + timedelta(seconds=seq)).isoformat(), "query": {}, "status": 200,
                "response_headers": {"Retry-After": "7"} if seq == 50 else {},
            }
            out.write(json.dumps(entry) + "\n")
    return path


def _summary(breaches: list[dict]) -> dict:
    rule = {
        "rule": "check_x", "level": "MUST", "source": "D1", "summary": "x", "outcome": "failed",
        "breaches": breaches,
    }
    return {
        "verdict": "fail", "apis": ["sinatra"], "wall_time_seconds": 1.0, "totals": {"failed": 1},
        "finished_at": "2026-01-01T00:02:00+00:00", "traffic": "t.jsonl", "rules": [rule],
        "command": {"argv": ["job", "--x"], "exit_code": 0,
                    "started_at": START.isoformat(timespec="milliseconds")},
        "scenario": [
            {"at": 1, "applied_after_seconds": 52.5, "scenario": "flaky", "mock": "sinatra",
             "action": "faults", "status": 200, "outcome": "applied", "note": None},
            {"at": 2, "applied_after_seconds": 70.5, "scenario": "flaky", "mock": "sinatra",
             "action": "clear", "status": 200, "outcome": "applied", "note": None},
        ],
    }


def test_only_the_windows_around_the_named_lines_are_drawn(tmp_path: Path) -> None:
    traffic = _traffic(tmp_path / "t.jsonl", 100)
    page = render_html(_summary([{"title": "t", "seqs": [50, 90], "detail": "d"}]), traffic,
                       ["sinatra"])
    timeline = page.split("<b>Timeline</b>", 1)[1].split("</table>", 1)[0]
    drawn = [int(seq) for seq in re.findall(r"<tr class='(?:named)?'><td>(\d+)</td>", timeline)]
    assert drawn == [*range(50 - WINDOW, 50 + WINDOW + 1), *range(90 - WINDOW, 90 + WINDOW + 1)]
    assert timeline.count("class='gap'") == 1
    assert "<tr class='named'><td>50</td>" in timeline and "<td>7</td>" in timeline
    # The step at 52.5 s falls between lines 52 and 53; the one at 70.5 s in no window.
    rows = timeline.split("<tr")
    step = next(i for i, row in enumerate(rows) if "class='step'" in row)
    assert "<td>52</td>" in rows[step - 1] and "<td>53</td>" in rows[step + 1]
    assert timeline.count("class='step'") == 1
    assert "command <code>job --x</code> exited 0" in page and "scenarios flaky" in page


def test_breaches_past_the_cap_are_counted_not_drawn(tmp_path: Path) -> None:
    traffic = _traffic(tmp_path / "t.jsonl", 10)
    breaches = [{"title": f"b{n}", "seqs": [1], "detail": ""} for n in range(SHOWN_BREACHES + 3)]
    page = render_html(_summary(breaches), traffic, ["sinatra"])
    assert page.count("<b>Exchange</b>") == SHOWN_BREACHES
    assert "… 3 more breach(es) in summary.json" in page
    assert f"<h2>Breaches ({SHOWN_BREACHES + 3})</h2>" in page
    # Lines 1 to 6 span 1 s to 6 s after the start, the steps came at 52.5 s and 70.5 s.
    assert "class='step'" not in page


def test_a_window_at_the_end_of_the_file_takes_the_steps_after_it(tmp_path: Path) -> None:
    traffic = _traffic(tmp_path / "t.jsonl", 10)
    page = render_html(_summary([{"title": "t", "seqs": [9], "detail": ""}]), traffic, [])
    assert page.count("class='step'") == 2 and "mocks none" in page
