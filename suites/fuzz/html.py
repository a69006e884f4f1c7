"""report.html of a fuzz run: one offline page that shows a person what the traffic found
(its charts in suites/fuzz/charts.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pepharness.suites.fuzz.charts import (
    COLORS,
    LABELS,
    MAX_BARS,
    PERCENTILE_COLORS,
    STATUS_CLASSES,
    bucket_seconds,
    latency_svg,
    status_class,
    timeline_svg,
)
from pepharness.suites.fuzz.charts import escape as _e
from pepharness.suites.fuzz.charts import is_over as _is_over
from pepharness.suites.fuzz.charts import milliseconds as _ms
from pepharness.suites.fuzz.charts import to_number as _number

MESSAGE_LIMIT = 4000
"""A message may quote a fuzzed response body; findings.json keeps the whole of it."""
EXCERPT_LIMIT = 1000
"""A server error's body excerpt, as findings.json keeps it (findings.EXCERPT_LIMIT)."""

KIND_RANK = {"server_error": 0, "timeout": 1, "connection_error": 1, "slow": 2}
KIND_STYLE = {"server_error": "server", "timeout": "network", "connection_error": "network",
              "slow": "slow"}
STOPPED_BY = {"duration": "duration reached", "requests": "request limit reached",
              "interrupt": "interrupted"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2329;
background:#f6f7f9}
header{padding:24px 32px;color:#fff}
header.pass{background:#1f7a3f}header.fail{background:#b42318}
header h1{margin:0 0 4px;font-size:22px}
header .findings{font-size:30px;font-weight:700;margin:6px 0 10px}
header .kinds{font-size:14px;font-weight:400;opacity:.92}
dl.facts{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:2px 14px;margin:0}
dl.facts dt{opacity:.8}dl.facts dd{margin:0;font-weight:600;word-break:break-all}
main{padding:8px 32px 40px;max-width:1400px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d7dbe0;padding-bottom:4px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #e1e4e8;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.over td{background:#fde2e1}tr.over td.p99{color:#b42318;font-weight:700}
.bar{display:inline-block;height:10px;min-width:2px;border-radius:2px;vertical-align:middle}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;
background:#e3ecfb;color:#1d4690}
.badge.server{background:#fde2e1;color:#8a1c13}.badge.network{background:#e9ecef;color:#343a40}
.badge.slow{background:#fff1d6;color:#7a4b00}.badge.over{background:#b42318;color:#fff}
.card{background:#fff;border:1px solid #e1e4e8;border-left:4px solid #3b6fd1;padding:10px 14px;
margin:10px 0}
.card.server{border-left-color:#b42318}.card.network{border-left-color:#343a40}
.card.slow{border-left-color:#d18f00}
.card h3{margin:0 0 6px;font-size:15px}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0 0 8px}
.card dt{color:#6a737d}.card dd{margin:0}
.message{background:#f6f7f9;padding:6px 8px;border-radius:4px;white-space:pre-wrap;
word-break:break-word}
pre{background:#1d2329;color:#e6edf3;padding:8px 10px;border-radius:4px;white-space:pre-wrap;
word-break:break-all;margin:8px 0 0;user-select:all}
pre.excerpt{background:#f6f7f9;color:#1d2329;user-select:text;margin:2px 0 0}
svg{display:block;max-width:100%;height:auto;background:#fff;border:1px solid #e1e4e8}
svg text{font:11px system-ui,-apple-system,Segoe UI,Roboto,sans-serif;fill:#444c56}
.muted{color:#6a737d}.good{color:#1f7a3f;font-weight:600}.bad{color:#b42318;font-weight:700}
"""
__all__ = ["COLORS", "MAX_BARS", "PERCENTILE_COLORS", "bucket_seconds", "render", "write"]


def _count(value: Any) -> str:
    number = _number(value)
    return "—" if number is None else f"{round(number):,}"


def _share(part: float, whole: float) -> str:
    percent = 100 * part / whole
    return "<0.1%" if 0 < percent < 0.05 else f"{percent:.1f}%"


def _duration(seconds: Any) -> str:
    total = _number(seconds)
    if total is None:
        return "—"
    if total < 60:
        return f"{total:.1f} s"
    whole = round(total)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _statuses_table(statuses: Mapping[str, Any]) -> str:
    counts = {str(s): round(_number(n) or 0) for s, n in statuses.items()}
    counts = {s: n for s, n in counts.items() if n > 0}
    if not counts:
        return "<p class='muted'>No answers.</p>"
    total, peak = sum(counts.values()), max(counts.values())
    ordered = sorted(counts, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    rows = [
        "<table><tr><th>status</th><th class='n'>answers</th><th class='n'>share</th>"
        "<th style='width:50%'></th></tr>"
    ]
    for status in ordered:
        cls = status_class(status)
        label = "no answer (timeout / connection)" if cls == "error" else status
        rows.append(
            f"<tr><td>{_e(label)}</td><td class='n'>{counts[status]:,}</td>"
            f"<td class='n'>{_share(counts[status], total)}</td><td><span class='bar' "
            f"style='width:{100 * counts[status] / peak:.1f}%;background:{COLORS[cls]}'>"
            "</span></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _operations_section(operations: Sequence[Mapping[str, Any]], budget: float | None) -> str:
    if not operations:
        return "<p class='muted'>No requests, so no latencies.</p>"
    over = [op for op in operations if _is_over(op, budget)]
    note = (
        "<p class='muted'>No latency budget was set.</p>" if budget is None else
        f"<p>Latency budget {_ms(budget)} ms: "
        + (f"<b class='bad'>{len(over):,} operation{'' if len(over) == 1 else 's'} over it "
           "at p99</b>" if over
           else "<span class='good'>every operation within it at p99</span>")
        + ".</p>"
    )
    rows = [
        note,
        "<table><tr><th>operation</th><th class='n'>requests</th><th class='n'>failures</th>"
        + "".join(f"<th class='n'>{p} ms</th>" for p in ("p50", "p90", "p95", "p99", "max"))
        + "</tr>",
    ]
    for operation in operations:
        is_over = _is_over(operation, budget)
        count, failures = _number(operation.get("count")), _number(operation.get("failures"))
        share = f" ({_share(failures, count)})" if count and failures else ""
        flag = " <span class='badge over'>over budget</span>" if is_over else ""
        row_class = " class='over'" if is_over else ""
        rows.append(
            f"<tr{row_class}><td>{_e(operation.get('operation'))}{flag}"
            f"</td><td class='n'>{_count(count)}</td><td class='n'>{_count(failures)}{share}</td>"
            + "".join(
                f"<td class='n{' p99' if p == 'p99' else ''}'>{_ms(operation.get(p + '_ms'))}</td>"
                for p in ("p50", "p90", "p95", "p99", "max")
            )
            + "</tr>"
        )
    rows.append("</table>")
    rows.append(latency_svg(operations, budget))
    return "".join(rows)


def _coverage_section(coverage: Sequence[Mapping[str, Any]]) -> str:
    """Each operation's answers by status: which statuses the run drew from each."""
    rows = [(str(row.get("operation", "")), {str(k): round(_number(v) or 0)
                                             for k, v in (row.get("statuses") or {}).items()})
            for row in coverage if isinstance(row, Mapping)]
    if not rows:
        return "<p class='muted'>No answers, so no status coverage.</p>"
    statuses = sorted({s for _, counts in rows for s in counts},
                      key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    out = ["<table class='coverage'><tr><th>operation</th>"
           + "".join(f"<th class='n'>{_e('no answer' if status_class(s) == 'error' else s)}</th>"
                     for s in statuses)
           + "<th>classes answered</th></tr>"]
    for operation, counts in rows:
        classes = sorted({status_class(s) for s, n in counts.items() if n},
                         key=STATUS_CLASSES.index)
        cells = "".join(
            f"<td class='n'{_cell_style(s) if counts.get(s) else ''}>"
            f"{f'{counts[s]:,}' if counts.get(s) else '—'}</td>" for s in statuses)
        missing = "" if "2xx" in classes else " <span class='badge server'>no 2xx</span>"
        out.append(f"<tr><td>{_e(operation)}</td>{cells}"
                   f"<td>{_e(' · '.join(LABELS[c] for c in classes))}{missing}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _cell_style(status: str) -> str:
    cls = status_class(status)
    return f" style='box-shadow:inset 3px 0 {COLORS[cls]}'"


def _split_section(split: Sequence[Mapping[str, Any]]) -> str:
    """The requests by flow and, for generated requests, mode."""
    rows = [row for row in split if isinstance(row, Mapping)]
    total = sum(_number(row.get("requests")) or 0 for row in rows)
    if not rows or not total:
        return "<p class='muted'>No requests.</p>"
    out = ["<table><tr><th>flow</th><th>mode</th><th class='n'>requests</th>"
           "<th class='n'>share</th><th class='n'>with a finding</th></tr>"]
    for row in rows:
        requests = _number(row.get("requests")) or 0
        failures = _number(row.get("failures")) or 0
        share = f" ({_share(failures, requests)})" if requests and failures else ""
        out.append(
            f"<tr><td>{_e(row.get('flow'))}</td><td>{_e(row.get('mode') or '—')}</td>"
            f"<td class='n'>{_count(requests)}</td><td class='n'>{_share(requests, total)}</td>"
            f"<td class='n'>{_count(failures)}{share}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _notes_section(notes: Sequence[Any]) -> str:
    """What the run itself has to say (an operation with nothing to break, items a 429 kept
    from being sent, a flow stopped early): first, as it bears on reading the rest."""
    if not notes:
        return ""
    return (f"<h2>Notes on this run ({len(notes):,})</h2><ul class='notes'>"
            + "".join(f"<li>{_e(note)}</li>" for note in notes) + "</ul>")


def sorted_findings(findings: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Server errors first, then no answer, then slow, then contract checks; most frequent first."""
    return sorted(
        findings,
        key=lambda f: (
            KIND_RANK.get(str(f.get("kind")), 3),
            -(_number(f.get("count")) or 0),
            str(f.get("operation") or ""),
            str(f.get("key") or ""),
        ),
    )


def _finding_card(finding: Mapping[str, Any]) -> str:
    kind = str(finding.get("kind") or "finding")
    style = KIND_STYLE.get(kind, "contract")
    status = finding.get("status")
    message = str(finding.get("message") or "")
    if len(message) > MESSAGE_LIMIT:
        cut = len(message) - MESSAGE_LIMIT
        message = f"{message[:MESSAGE_LIMIT]}… ({cut:,} more characters in findings.json)"
    first = _number(finding.get("first_seconds"))
    first_index = finding.get("first_index")
    seen = "—" if first is None else f"{first:,.2f} s into the run"
    if first_index is not None:
        seen += f" (request #{_count(first_index)})"
    out = [
        f"<section class='card {style}'><h3><span class='badge {style}'>{_e(kind)}</span> "
        f"{_e(finding.get('title'))}</h3><dl>"
        f"<dt>operation</dt><dd>{_e(finding.get('operation'))}</dd>"
        f"<dt>status</dt><dd>{_status_shown(kind, status, finding.get('answer_status'))}</dd>"
        f"<dt>occurrences</dt><dd>{_count(finding.get('count'))}</dd>"
        f"<dt>first seen</dt><dd>{seen}</dd></dl>"
    ]
    if message:
        out.append(f"<div class='message'>{_e(message)}</div>")
    if finding.get("excerpt"):
        out.append("<div class='muted'>the answer's body (its start):</div>"
                   f"<pre class='excerpt'>{_e(str(finding['excerpt'])[:EXCERPT_LIMIT + 80])}</pre>")
    if finding.get("curl"):
        out.append(f"<pre title='reproduce: click to select'>{_e(finding['curl'])}</pre>")
    out.append("</section>")
    return "".join(out)


def _status_shown(kind: str, status: Any, answered: Any) -> str:
    """A finding's status: its key's, else the kept request's answer's (a slow finding is keyed
    without one), "no answer" only when none came."""
    if status is not None:
        return _e(status)
    if answered is not None and kind not in ("timeout", "connection_error"):
        return f"{_e(answered)} <span class='muted'>(the kept request's answer)</span>"
    return "no answer"


def _findings_count(count: int) -> str:
    return "no findings" if not count else f"{count:,} finding{'' if count == 1 else 's'}"


def _header(summary: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]) -> str:
    profile = summary.get("profile") or {}
    weights = " · ".join(f"{_e(name)} {_e(weight)}" for name, weight in profile.items()) or "—"
    stopped = summary.get("stopped_by")
    if findings:
        kinds = Counter(str(f.get("kind")) for f in findings)
        ranked = sorted(kinds, key=lambda k: (KIND_RANK.get(k, 3), k))
        headline = (
            f"{_findings_count(len(findings))} <span class='kinds'>"
            + " · ".join(f"{kinds[k]:,} {_e(k)}" for k in ranked)
            + "</span>"
        )
    else:
        headline = "no findings"
    rate = _number(summary.get("rate"))
    facts = [
        ("base URL", _e(summary.get("base_url"))),
        ("seed", _e(summary.get("seed"))),
        ("mode", _e(summary.get("mode"))),
        ("profile weights", weights),
        ("started", _e(summary.get("started"))),
        ("duration", _duration(summary.get("duration_seconds"))),
        ("requests", _count(summary.get("requests"))),
        ("sustained rate", "—" if rate is None else f"{rate:,.1f} req/s"),
        ("stopped by", _e(STOPPED_BY.get(str(stopped), stopped))),
    ]
    return (
        f"<header class='{'fail' if findings else 'pass'}'>"
        f"<h1>pepharness fuzz — {_e(summary.get('api') or 'API')}</h1>"
        f"<div class='findings'>{headline}</div><dl class='facts'>"
        + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
        + "</dl></header>"
    )


def render(summary: Mapping[str, Any]) -> str:
    """The page of one fuzz run (summary.json): header, status charts, latencies, findings."""
    findings = sorted_findings(summary.get("findings") or [])
    budget = _number(summary.get("latency_budget_ms"))
    title = _findings_count(len(findings))
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>pepharness fuzz {_e(summary.get('api'))}: {title}</title>",
        f"<style>{CSS}</style></head><body>",
        _header(summary, findings),
        "<main>",
        _notes_section([n for n in summary.get("notes") or [] if n]),
        "<h2>Status codes over time</h2>",
        timeline_svg(summary.get("timeline") or []),
        "<h2>Status codes</h2>",
        _statuses_table(summary.get("statuses") or {}),
        "<h2>Status codes per operation</h2>",
        _coverage_section(summary.get("coverage") or []),
        "<h2>Requests by flow and mode</h2>",
        _split_section(summary.get("split") or []),
        "<h2>Latency per operation</h2>",
        _operations_section(summary.get("operations") or [], budget),
        f"<h2>Findings ({len(findings):,})</h2>",
    ]
    if findings:
        out.append(
            "<p class='muted'>Most severe first. Each curl line reproduces the smallest request "
            "that showed the finding; click it to select the whole command.</p>"
        )
        out += [_finding_card(finding) for finding in findings]
    else:
        out.append("<p class='good'>No findings in this run.</p>")
    out.append("</main></body></html>\n")
    return "".join(out)


def write(summary: Mapping[str, Any], path: Path) -> None:
    """Write the page of `summary` to `path` (UTF-8), creating its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(summary), encoding="utf-8")
