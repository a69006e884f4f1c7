"""What a fuzz run leaves in --out: findings.json, summary.json, traffic.har and report.html;
and the merge of several runners' partial figures (a Locust cluster's workers) into one run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pepharness import __version__
from pepharness.suites.fuzz import har, html
from pepharness.suites.fuzz.findings import Finding, Findings, dumps
from pepharness.suites.fuzz.model import Result, Tally


def write(
    out: Path,
    summary: Mapping[str, Any],
    findings: Mapping[str, Any],
    entries: Iterable[dict[str, Any]],
) -> dict[str, Path]:
    """Write the four files; their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "findings": out / "findings.json",
        "summary": out / "summary.json",
        "har": out / "traffic.har",
        "report": out / "report.html",
    }
    paths["findings"].write_text(dumps(findings), encoding="utf-8")
    paths["summary"].write_text(dumps(summary), encoding="utf-8")
    har.write(paths["har"], entries, __version__)
    html.write(summary, paths["report"])
    return paths


def write_result(out: Path, result: Result) -> dict[str, Path]:
    return write(out, result.summary(), result.findings_document(), result.entries)


def partial(result: Result, latencies: Mapping[str, list[float]]) -> dict[str, Any]:
    """One runner's figures, to be merged with others' (JSON-safe, sent over the wire)."""
    return {
        "requests": result.requests,
        "duration": result.duration,
        "statuses": dict(result.statuses),
        "timeline": result.timeline,
        "latencies": {label: list(values) for label, values in latencies.items()},
        "failures": {row["operation"]: row["failures"] for row in result.operations},
        "findings": result.findings.to_json(),
        "notes": result.notes,
        "coverage": result.coverage,
        "split": result.split,
    }


def merge(
    partials: Iterable[Mapping[str, Any]], base: Mapping[str, Any], budget_ms: float
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """(summary, findings document, HAR entries of the findings) of runners' partials;
    `base` holds the run's own fields (api, base_url, seed, mode, profile, started,
    stopped_by). Timelines are added second by second from each runner's own start."""
    tally = Tally()
    findings = Findings()
    notes: list[str] = []
    requests = 0
    duration = 0.0
    for part in partials:
        requests += int(part["requests"])
        duration = max(duration, float(part["duration"]))
        tally.add(part)
        findings.merge(Finding.from_json(f) for f in part["findings"])
        notes.extend(n for n in part["notes"] if n not in notes)
    summary = {
        **base,
        "duration_seconds": round(duration, 3),
        "requests": requests,
        "rate": round(requests / duration, 1) if duration > 0 else 0.0,
        "statuses": dict(sorted(tally.statuses.items())),
        "timeline": tally.timeline_json(duration),
        "operations": tally.operations_json(),
        "latency_budget_ms": budget_ms,
        "findings": [f.to_json(with_entry=False) for f in findings.sorted()],
        "notes": notes,
        "coverage": tally.coverage_json(),
        "split": tally.split_json(),
    }
    document = {
        **{k: base[k] for k in ("api", "base_url", "seed", "mode") if k in base},
        "generated_at": base.get("started"),
        "requests": requests,
        "latency_budget_ms": budget_ms,
        "findings": findings.to_json(),
    }
    return summary, document, [f.entry for f in findings.sorted()]


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
