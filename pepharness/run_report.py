"""report.html of `pepharness run` and `verify-client` (issue 14 item 1, D122, D123).

One self-contained page on check's skeleton (suites/report.py: the banner, the per-rule table,
the failure cards, what was NOT VERIFIED), the banner naming the command and its exit code, the
mocks and the scenarios; then run's own sections: for each breach the exchanges it names
(`seq`) and a timeline of the WINDOW traffic lines before and after each, with the scenario
steps applied in that span. The traffic file is read a second time, streamed, keeping only the
lines of those windows: memory bounded by the breaches shown, not the run.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pepharness.mocks.core.clock import to_rfc3339
from pepharness.mocks.core.traffic import read_traffic
from pepharness.suites.report import (
    escape,
    failure_cards,
    not_verified_table,
    page,
    rules_table,
)

WINDOW = 5
"""Traffic lines shown before and after each line a breach names."""
SHOWN_BREACHES = 20
"""Breaches drawn per rule; summary.json holds them all."""
SHOWN_SEQS = 10
"""Lines drawn per breach (a breach naming more is cut, the note says so)."""

EXTRA_CSS = """
tr.named td{background:#fde2e1;font-weight:600}tr.step td{background:#e3ecfb}
td.gap{text-align:center;color:#6a737d}
"""
COLUMNS = ("seq", "time", "mock", "method", "path", "query", "status", "credential", "issued",
           "Retry-After", "ms", "note")


def _stamp(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _shown(summary: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each failed rule with the breaches drawn for it."""
    return [
        (rule, rule["breaches"][:SHOWN_BREACHES])
        for rule in summary["rules"]
        if rule["outcome"] == "failed"
    ]


def _wanted(shown: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> set[int]:
    wanted: set[int] = set()
    for _, breaches in shown:
        for breach in breaches:
            for seq in breach["seqs"][:SHOWN_SEQS]:
                wanted.update(range(max(1, seq - WINDOW), seq + WINDOW + 1))
    return wanted


def _gather(
    traffic: Path, wanted: set[int], sandbox: str | None = None
) -> tuple[dict[int, dict[str, Any]], int, int]:
    """The lines of `wanted`, the file's first seq and its last one (or the first past every
    window: the file is in seq order, D103, so the read stops there); only the lines of
    `sandbox` (None: those outside every sandbox) count."""
    kept: dict[int, dict[str, Any]] = {}
    first = last = 0
    if not wanted:
        return kept, first, last
    end = max(wanted)
    try:
        for entry in read_traffic(traffic):
            seq = entry.get("seq")
            if not isinstance(seq, int) or entry.get("sandbox") != sandbox:
                continue  # another sandbox's line is never drawn (D131)
            first = first or seq
            last = seq
            if seq > end:
                break
            if seq in wanted:
                kept[seq] = entry
    except (OSError, ValueError):
        pass  # the verdict is already written; a page with fewer lines beats none
    return kept, first, last


def _steps(summary: dict[str, Any]) -> list[tuple[datetime, dict[str, Any]]]:
    """The scenario steps on the wall clock: the command's start plus when each was applied."""
    started = _stamp((summary.get("command") or {}).get("started_at"))
    if started is None:
        return []
    steps = []
    for step in summary.get("scenario") or []:
        after = step.get("applied_after_seconds")
        if after is None:
            after = step.get("at")
        if isinstance(after, int | float):
            steps.append((started + timedelta(seconds=after), step))
    return sorted(steps, key=lambda item: item[0])


def _cell(entry: dict[str, Any], column: str) -> str:
    if column == "query":
        query = entry.get("query") or {}
        text = "&".join(f"{k}={v}" for k, v in query.items()) if isinstance(query, dict) else query
        return escape(text)
    if column == "Retry-After":
        return escape((entry.get("response_headers") or {}).get("Retry-After"))
    if column == "ms":
        return escape(entry.get("duration_ms"))
    if column == "note":
        notes = []
        if entry.get("auth"):
            notes.append(f"auth {entry['auth']}")
        if entry.get("fault"):
            notes.append("fault injected")
        if entry.get("error"):
            notes.append(f"error {entry['error']}")
        if entry.get("keys"):
            notes.append(f"keys {entry['keys']}")
        if entry.get("answer"):
            notes.append(f"answer {entry['answer']}")
        if entry.get("clock"):
            notes.append(f"mock clock {entry['clock']}")
        return escape("; ".join(notes))
    return escape(entry.get(column))


def _row(entry: dict[str, Any], named: bool) -> str:
    cells = "".join(f"<td>{_cell(entry, c)}</td>" for c in COLUMNS)
    return f"<tr class='{'named' if named else ''}'>{cells}</tr>"


def _step_row(when: datetime, step: dict[str, Any]) -> str:
    text = (
        f"scenario {step.get('scenario')} at {step.get('at')}s: {step.get('action')} on "
        f"{step.get('mock')}: {step.get('outcome')} ({step.get('status') or '-'})"
        + (f" — {step['note']}" if step.get("note") else "")
    )
    return (
        f"<tr class='step'><td>step</td><td>{escape(to_rfc3339(when))}"
        f"</td><td colspan='{len(COLUMNS) - 2}'>{escape(text)}</td></tr>"
    )


def _header_row() -> str:
    return "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in COLUMNS) + "</tr>"


def _timeline(
    seqs: Sequence[int],
    kept: dict[int, dict[str, Any]],
    bounds: tuple[int, int],
    steps: Sequence[tuple[datetime, dict[str, Any]]],
) -> str:
    """The windows around `seqs`, merged, a gap row between; in each, the scenario steps that
    fell between its first and last line (unbounded at the file's first or last line)."""
    first, last = bounds
    lines = sorted({s for seq in seqs for s in range(max(1, seq - WINDOW), seq + WINDOW + 1)})
    present = [s for s in lines if s in kept]
    if not present:
        return "<p class='muted'>These lines are not in the traffic file.</p>"
    segments: list[list[int]] = []
    for seq in present:
        if segments and seq == segments[-1][-1] + 1:
            segments[-1].append(seq)
        else:
            segments.append([seq])
    out = ["<table>", _header_row()]
    for number, segment in enumerate(segments):
        if number:
            out.append(f"<tr><td class='gap' colspan='{len(COLUMNS)}'>…</td></tr>")
        low = None if segment[0] <= first else _stamp(kept[segment[0]].get("time"))
        high = None if segment[-1] >= last else _stamp(kept[segment[-1]].get("time"))
        pending = [
            (when, step) for when, step in steps
            if (low is None or when >= low) and (high is None or when <= high)
        ]
        for seq in segment:
            when = _stamp(kept[seq].get("time"))
            while pending and when is not None and pending[0][0] <= when:
                out.append(_step_row(*pending.pop(0)))
            out.append(_row(kept[seq], seq in seqs))
        out += [_step_row(*item) for item in pending]
    out.append("</table>")
    return "".join(out)


def render_html(summary: dict[str, Any], traffic: Path, mocks: Sequence[str]) -> str:
    """The page of one `run` or `verify-client`; `summary` is the one summary.json holds."""
    verdict = summary["verdict"]
    command = summary.get("command")
    title = "pepharness run" if command is not None else "pepharness verify-client"
    shown = _shown(summary)
    kept, first, last = _gather(traffic, _wanted(shown), summary.get("sandbox"))
    steps = _steps(summary)
    scenarios = list(dict.fromkeys(str(s.get("scenario")) for s in summary.get("scenario") or []))
    facts = []
    if command is not None:
        facts.append(f"command <code>{escape(shlex.join(command['argv']))}</code> exited "
                     f"{escape(command['exit_code'])}")
    facts += [
        f"mocks {escape(', '.join(mocks) or 'none')}",
        f"judged as {escape(', '.join(summary['apis']) or 'nothing')}",
        f"wall time {summary['wall_time_seconds']:.1f} s",
        f"finished {escape(summary['finished_at'])}",
    ]
    if scenarios:
        facts.append(f"scenarios {escape(', '.join(scenarios))}")
    totals = summary["totals"]
    facts_html = [
        " · ".join(facts),
        f"traffic {escape(summary['traffic'])} · "
        + " · ".join(f"{n} {escape(o.replace('_', ' '))}" for o, n in sorted(totals.items())),
    ]
    out = [
        rules_table(summary["rules"], "Client rules", ("breaches", "breaches")),
        failure_cards(summary.get("failures", [])),
        not_verified_table(summary.get("not_verified", [])),
    ]
    breaches = sum(len(rule["breaches"]) for rule, _ in shown)
    out.append(f"<h2>Breaches ({breaches})</h2>")
    if not shown:
        out.append("<p class='muted'>None.</p>")
    for rule, drawn in shown:
        level = escape(rule["level"])
        out.append(
            f"<div class='card {level}' id='{escape(rule['rule'])}'><h3><span class='badge "
            f"{level}'>{level}</span> {escape(rule['rule'])}</h3>"
            f"<p class='muted'>{escape(rule['summary'])} Source: {escape(rule['source'])}</p>"
        )
        for breach in drawn:
            seqs = list(breach["seqs"][:SHOWN_SEQS])
            more = len(breach["seqs"]) - len(seqs)
            named = ", ".join(f"#{s}" for s in seqs) + (f" (and {more} more)" if more else "")
            out.append(
                f"<h4>{escape(named)} {escape(breach['title'])}</h4>"
                f"<p>{escape(breach['detail'])}</p><p><b>Exchange</b></p><table>{_header_row()}"
            )
            out += [_row(kept[s], True) for s in seqs if s in kept]
            out.append(
                f"</table><p><b>Timeline</b> <span class='muted'>({WINDOW} lines before and "
                "after; scenario steps where they fell)</span></p>"
            )
            out.append(_timeline(seqs, kept, (first, last), steps))
        hidden = len(rule["breaches"]) - len(drawn)
        if hidden > 0:
            out.append(f"<p class='muted'>… {hidden} more breach(es) in summary.json</p>")
        out.append("</div>")
    if summary.get("scenario"):
        out.append("<h2>Scenario timeline</h2><table><tr><th>at (s)</th><th>applied after (s)"
                   "</th><th>scenario</th><th>mock</th><th>action</th><th>status</th>"
                   "<th>outcome</th><th>note</th></tr>")
        for step in summary["scenario"]:
            out.append("<tr>" + "".join(
                f"<td>{escape(step.get(key))}</td>"
                for key in ("at", "applied_after_seconds", "scenario", "mock", "action",
                            "status", "outcome", "note")
            ) + "</tr>")
        out.append("</table>")
    return page(title, verdict, title, facts_html, out, EXTRA_CSS)

