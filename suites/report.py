"""The reports of a suite run: summary.json, junit.xml and one self-contained report.html."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pepharness import contracts
from pepharness.suites.rules import NOT_VERIFIED

PARTS_FOLDER = ".parts"
SUMMARY = "summary.json"
JUNIT = "junit.xml"
HTML = "report.html"
LEVELS = ("MUST", "SHOULD", "INFO")
OUTCOMES = ("passed", "failed", "error", "not_verified", "skipped")
FAILING = ("failed", "error")


def load_parts(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The raw results files that exist among `paths`."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths if path.is_file()]


def verdict_of(results: Sequence[dict[str, Any]], strict: bool) -> str:
    """`fail` when a MUST rule failed (or a SHOULD one, with `strict`), else `pass`."""
    blocking = ("MUST", "SHOULD") if strict else ("MUST",)
    failed = any(r["level"] in blocking and r["outcome"] in FAILING for r in results)
    return "fail" if failed else "pass"


def _coverage(apis: Sequence[str], observed: Counter[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """For every operation of each contract: its documented statuses, those seen, never seen."""
    seen: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for (method, path, status), count in observed.items():
        for api in apis:
            matched = contracts.match_operation(api, method, path)
            if matched is not None:
                seen[(api, method, matched[0])][str(status)] += count
                break
    rows = []
    for api in apis:
        for method, template, operation in contracts.operations(api):
            documented = sorted(operation.get("responses", {}))
            statuses = seen.get((api, method, template), Counter())
            hit = {s for s in documented if _covers(s, statuses)}
            rows.append(
                {
                    "api": api,
                    "operation": f"{method} {template}",
                    "operation_id": operation.get("operationId", ""),
                    "documented": documented,
                    "observed": dict(sorted(statuses.items())),
                    "never_exercised": [s for s in documented if s not in hit],
                    "undocumented_observed": sorted(
                        s for s in statuses if not any(_matches(d, s) for d in documented)
                    ),
                }
            )
    return rows


def _matches(documented: str, status: str) -> bool:
    pattern = documented.upper()
    if pattern == "DEFAULT":
        return True
    return len(pattern) == 3 and all(p in ("X", s) for p, s in zip(pattern, status, strict=True))


def _covers(documented: str, statuses: Counter[str]) -> bool:
    return any(_matches(documented, status) for status in statuses)


_PRECEDENCE = ("error", "failed", "passed", "not_verified", "skipped")


def merge_results(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per rule and operation: a check run on several cases (two bad logins) fails
    if any case fails, passes if one passes, and is not verified only if none could say."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        key = (entry["rule"], entry.get("operation") or "")
        held = merged.get(key)
        if held is None:
            merged[key] = dict(entry)
            continue
        duration = float(held.get("duration") or 0) + float(entry.get("duration") or 0)
        if _PRECEDENCE.index(entry["outcome"]) < _PRECEDENCE.index(held["outcome"]):
            merged[key] = dict(entry)
        merged[key]["duration"] = round(duration, 3)
    return list(merged.values())


def summarize_results(
    results: Sequence[dict[str, Any]],
    *,
    apis: Sequence[str],
    seed: Any,
    strict: bool,
    wall_time: float,
    rule_fields: Sequence[str] = (),
) -> dict[str, Any]:
    """The top-level shape every summary.json shares (`check`, `run`, `verify-client`): the
    verdict, the counts per level and outcome, one entry per rule (with `rule_fields` copied
    from its first result), the failures, what was NOT VERIFIED and why, and every result."""
    results = sorted(
        results, key=lambda r: (LEVELS.index(r["level"]), r["rule"], r.get("operation") or "")
    )
    counts = {level: dict.fromkeys(OUTCOMES, 0) for level in LEVELS}
    for result in results:
        counts[result["level"]][result["outcome"]] += 1
    rules: dict[str, dict[str, Any]] = {}
    for result in results:
        rule = rules.setdefault(
            result["rule"],
            {
                "rule": result["rule"],
                "level": result["level"],
                "source": result["source"],
                "summary": result["summary"],
                "outcomes": dict.fromkeys(OUTCOMES, 0),
                **{key: result.get(key) for key in rule_fields},
            },
        )
        rule["outcomes"][result["outcome"]] += 1
    failures = [
        {
            "rule": r["rule"],
            "level": r["level"],
            "source": r["source"],
            "operation": r.get("operation"),
            "outcome": r["outcome"],
            "title": (r.get("failure") or {}).get("title") or r.get("reason", ""),
            "received": (r.get("failure") or {}).get("received") or r.get("reason", ""),
            "documented": (r.get("failure") or {}).get("documented") or r["summary"],
            "curl": (r.get("failure") or {}).get("curl", ""),
            "nodeid": r.get("nodeid"),
        }
        for r in results
        if r["outcome"] in FAILING
    ]
    return {
        "apis": list(apis),
        "seed": seed,
        "verdict": verdict_of(results, strict),
        "strict": strict,
        "wall_time_seconds": round(wall_time, 2),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "counts": counts,
        "totals": dict(Counter(r["outcome"] for r in results)),
        "rules": list(rules.values()),
        "failures": failures,
        "not_verified": [
            {"rule": r["rule"], "level": r["level"], "operation": r.get("operation"),
             "reason": r.get("reason", "")}
            for r in results
            if r["outcome"] == "not_verified"
        ],
        "results": [
            {key: r.get(key) for key in ("rule", "level", "operation", "outcome", "reason",
                                          "duration", "nodeid")}
            for r in results
        ],
    }


def summarize(
    parts: Sequence[dict[str, Any]], *, strict: bool, wall_time: float
) -> dict[str, Any]:
    """The machine-readable summary of one run made of `parts` (its pytest sessions)."""
    results = merge_results(entry for part in parts for entry in part["results"])
    apis = sorted({api for part in parts for api in part.get("apis", [])})
    observed: Counter[tuple[str, str, int]] = Counter()
    for part in parts:
        for method, path, status, count in part.get("observed", []):
            observed[(method, path, int(status))] += int(count)
    options = parts[0].get("options", {}) if parts else {}
    summary = summarize_results(
        results, apis=apis, seed=options.get("seed"), strict=strict, wall_time=wall_time
    )
    summary["base_url"] = options.get("base_url")
    summary["phases"] = [
        {"phase": p["phase"], "pytest_exit": p.get("pytest_exit"), "results": len(p["results"])}
        for p in parts
    ]
    summary["coverage"] = _coverage(apis, observed)
    return summary


def render(
    report_dir: Path, part_paths: Sequence[Path], *, strict: bool, wall_time: float
) -> dict[str, Any]:
    """Write summary.json, junit.xml and report.html from the raw parts; return the summary."""
    summary, results = from_parts(report_dir, part_paths, strict=strict, wall_time=wall_time)
    write_reports(report_dir, summary, results, render_html(summary))
    return summary


def from_parts(
    report_dir: Path, part_paths: Sequence[Path], *, strict: bool, wall_time: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary of a check's raw parts (and the fields never seen its parts folder holds),
    and its merged results."""
    parts = load_parts(part_paths)
    summary = summarize(parts, strict=strict, wall_time=wall_time)
    summary["fields_never_seen"] = [
        row for row in fields_never_seen(report_dir) if row["api"] in summary["apis"]
    ]
    return summary, merge_results(entry for part in parts for entry in part["results"])


def write_reports(
    report_dir: Path, summary: dict[str, Any], results: Sequence[dict[str, Any]], page: str
) -> tuple[Path, Path, Path]:
    """The one writer of every command's reports: summary.json, junit.xml (one testcase per
    result) and report.html (`page`) in `report_dir`; their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = (report_dir / JUNIT, report_dir / SUMMARY, report_dir / HTML)
    paths[1].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_junit(paths[0], results, summary)
    paths[2].write_text(page, encoding="utf-8")
    return paths


NEVER_SEEN_GLOB = "fields-never-seen-*.json"


def fields_never_seen(report_dir: Path) -> list[dict[str, Any]]:
    """INFO: per operation and status, the declared fields no answer of
    check_answers_declare_every_field carried (suites/answers.py leaves them in the parts
    folder). Never a failure: an optional field may simply not occur in the target's data."""
    rows: list[dict[str, Any]] = []
    for path in sorted((report_dir / PARTS_FOLDER).glob(NEVER_SEEN_GLOB)):
        try:
            rows += [row for row in json.loads(path.read_text(encoding="utf-8")) if row["fields"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(rows, key=lambda r: (r["api"], r["operation"], r["status"]))


def _testcase_name(result: dict[str, Any]) -> str:
    operation = result.get("operation")
    return f"{result['rule']}[{operation}]" if operation else result["rule"]


def write_junit(path: Path, results: Sequence[dict[str, Any]], summary: dict[str, Any]) -> None:
    """One testcase per rule and operation; SHOULD/INFO failures are failures too, typed by
    level; NOT VERIFIED is a skip whose message says so."""
    suite_name = "pepharness." + ("+".join(summary["apis"]) or "suite")
    suites = ET.Element("testsuites", name=suite_name)
    suite = ET.SubElement(suites, "testsuite", name=suite_name)
    counts = Counter[str]()
    for result in sorted(results, key=lambda r: (r["rule"], r.get("operation") or "")):
        counts["tests"] += 1
        duration = float(result.get("duration") or 0.0)
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{suite_name}.{result['level']}.{result['rule']}",
            name=_testcase_name(result),
            time=f"{duration:.3f}",
        )
        properties = ET.SubElement(case, "properties")
        ET.SubElement(properties, "property", name="level", value=result["level"])
        ET.SubElement(properties, "property", name="source", value=result["source"])
        outcome = result["outcome"]
        failure = result.get("failure") or {}
        if outcome in FAILING:
            counts["failures" if outcome == "failed" else "errors"] += 1
            element = ET.SubElement(
                case,
                "failure" if outcome == "failed" else "error",
                type=result["level"],
                message=_clean(failure.get("title") or result.get("reason", "")),
            )
            element.text = _clean(
                "\n".join(
                    line
                    for line in (
                        f"Rule:       {result['rule']} ({result['level']})",
                        f"Operation:  {failure.get('operation') or result.get('operation')}",
                        f"Received:   {failure.get('received') or result.get('reason', '')}",
                        f"Documented: {failure.get('documented') or result['summary']}",
                        f"Source:     {result['source']}",
                        f"Reproduce:  {failure['curl']}" if failure.get("curl") else "",
                    )
                    if line
                )
            )
        elif outcome in ("skipped", "not_verified"):
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=_clean(result.get("reason", "")))
    for key in ("tests", "failures", "errors", "skipped"):
        suite.set(key, str(counts[key]))
        suites.set(key, str(counts[key]))
    # The checks ran in parallel: the suite took the run's wall time, not the sum of its cases.
    suite.set("time", f"{summary['wall_time_seconds']:.3f}")
    suites.set("time", f"{summary['wall_time_seconds']:.3f}")
    suite.set("timestamp", summary["finished_at"])
    ET.indent(suites)
    path.write_bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean(text: str) -> str:
    """Text XML 1.0 can carry (a response body may hold any byte)."""
    return _CONTROL.sub("\ufffd", text)


def summary_lines(summary: dict[str, Any], *, details: bool = True) -> list[str]:
    """The terminal's closing lines: every failure (with what was received and documented, or
    one line each without `details`), counts per level, every NOT VERIFIED rule and why, the
    verdict and the wall time."""
    lines = []
    for failure in summary["failures"]:
        operation = f"  [{failure['operation']}]" if failure["operation"] else ""
        lines.append(f"FAIL {failure['level']:<6} {failure['rule']}{operation}")
        lines.append(f"       {failure['title']}")
        if not details:
            continue
        lines.append(f"       received:   {failure['received']}")
        lines.append(f"       documented: {failure['documented']}")
        if failure["curl"]:
            lines.append(f"       reproduce:  {failure['curl']}")
    for level in LEVELS:
        counts = summary["counts"][level]
        if any(counts.values()):
            shown = ", ".join(f"{counts[o]} {o.replace('_', ' ')}" for o in OUTCOMES if counts[o])
            lines.append(f"{level:<6} {shown}")
    lines += not_verified_lines(summary)
    never_seen = summary.get("fields_never_seen") or []
    if never_seen:
        count = sum(len(row["fields"]) for row in never_seen)
        lines.append(
            f"INFO   fields never seen: {count} declared field(s) of {len(never_seen)} "
            "answer(s) never carried (summary.json fields_never_seen)"
        )
    strict = " (strict: SHOULD counts)" if summary["strict"] else ""
    lines.append(
        f"verdict: {summary['verdict'].upper()}{strict} — wall time "
        f"{summary['wall_time_seconds']:.1f} s"
    )
    return lines


def not_verified_lines(summary: dict[str, Any]) -> list[str]:
    """One line per NOT VERIFIED rule: its level, name and why (the first reason; how many
    operations it stands for when the rule is checked per operation)."""
    reasons: dict[str, list[dict[str, Any]]] = {}
    for item in summary["not_verified"]:
        reasons.setdefault(item["rule"], []).append(item)
    lines = []
    for rule, items in reasons.items():
        reason = str(items[0]["reason"] or "no reason given")
        reason = reason.removeprefix(f"{NOT_VERIFIED}: ")
        more = f" (and {len(items) - 1} more operation(s))" if len(items) > 1 else ""
        lines.append(f"NOT VERIFIED {items[0]['level']:<6} {rule}: {reason}{more}")
    return lines


# -- report.html ---------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2329;
background:#f6f7f9}
header{padding:24px 32px;color:#fff}
header.pass{background:#1f7a3f}header.fail{background:#b42318}
header h1{margin:0 0 4px;font-size:22px}header p{margin:2px 0;opacity:.92}
main{padding:8px 32px 40px;max-width:1400px}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d7dbe0;padding-bottom:4px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #e1e4e8;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600}
.MUST{background:#fde2e1;color:#8a1c13}.SHOULD{background:#fff1d6;color:#7a4b00}
.INFO{background:#e3ecfb;color:#1d4690}
.passed{color:#1f7a3f}.failed,.error{color:#b42318;font-weight:600}
.not_verified{color:#7a4b00}.skipped{color:#6a737d}
.card{background:#fff;border:1px solid #e1e4e8;border-left:4px solid #b42318;padding:10px 14px;
margin:10px 0}
.card.SHOULD{border-left-color:#d18f00;background:#fff}.card.INFO{border-left-color:#3b6fd1;
background:#fff}
.card h3{margin:0 0 6px;font-size:15px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.grid div{background:#f6f7f9;padding:6px 8px;border-radius:4px;white-space:pre-wrap;
word-break:break-word}
pre{background:#1d2329;color:#e6edf3;padding:8px 10px;border-radius:4px;white-space:pre-wrap;
word-break:break-all;margin:8px 0 0}
.muted{color:#6a737d}.missing{color:#b42318}.hit{color:#1f7a3f}
"""


def escape(value: Any) -> str:
    """`value` as HTML text (None as nothing): every value a page shows goes through it."""
    return html.escape("" if value is None else str(value))


_e = escape


def page(
    title: str, verdict: str, heading: str, facts: Sequence[str], body: Sequence[str],
    css: str = "",
) -> str:
    """The one page skeleton of every report.html: a banner coloured by the verdict (its
    heading and lines of facts, already HTML), then the sections of `body`."""
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(title)}: {verdict.upper()}</title>",
        f"<style>{CSS}{css}</style></head><body>",
        f"<header class='{verdict}'><h1>{_e(heading)} — {verdict.upper()}</h1>",
        *(f"<p>{fact}</p>" for fact in facts),
        "</header><main>",
        *body,
        "</main></body></html>\n",
    ]
    return "".join(out)


def rules_table(
    rules: Sequence[dict[str, Any]], title: str = "Rules by level",
    extra: tuple[str, str] | None = None,
) -> str:
    """The per-rule table: each rule with its summary, level, source, and how many of its
    checks ended in each outcome; `extra` adds a column (header, key of the rule entry)."""
    out = [f"<h2>{_e(title)}</h2><table><tr><th>rule</th><th>level</th><th>source</th>"]
    out += [f"<th>{o.replace('_', ' ')}</th>" for o in OUTCOMES]
    out.append(f"<th>{_e(extra[0])}</th></tr>" if extra else "</tr>")
    for rule in rules:
        outcomes = rule.get("outcomes") or {rule.get("outcome"): 1}
        level = _e(rule["level"])
        out.append(
            f"<tr><td><b>{_e(rule['rule'])}</b><br><span class='muted'>{_e(rule['summary'])}"
            f"</span></td><td><span class='badge {level}'>{level}</span></td>"
            f"<td>{_e(rule['source'])}</td>"
        )
        out += [
            f"<td class='{o if outcomes.get(o) else 'muted'}'>{outcomes.get(o, 0)}</td>"
            for o in OUTCOMES
        ]
        if extra:
            value = rule.get(extra[1])
            out.append(f"<td>{_e(len(value) if isinstance(value, list) else value)}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def failure_cards(failures: Sequence[dict[str, Any]], intro: str = "") -> str:
    """One card per failure: the rule, what was received and what is documented, its source,
    and the curl line that reproduces it when there is one."""
    out = [f"<h2>Failures ({len(failures)})</h2>"]
    if not failures:
        out.append("<p class='muted'>None.</p>")
    elif intro:
        out.append(f"<p class='muted'>{intro}</p>")
    for failure in failures:
        level = _e(failure["level"])
        out.append(
            f"<div class='card {level}'><h3><span class='badge {level}'>"
            f"{level}</span> {_e(failure['rule'])} "
            f"<span class='muted'>{_e(failure.get('operation') or '')}</span></h3>"
            f"<p>{_e(failure['title'])}</p>"
            f"<div class='grid'><div><b>Received</b>\n{_e(failure['received'])}</div>"
            f"<div><b>Documented</b>\n{_e(failure['documented'])}</div></div>"
            f"<p class='muted'>Source: {_e(failure['source'])}</p>"
        )
        if failure.get("curl"):
            out.append(f"<pre>{_e(failure['curl'])}</pre>")
        out.append("</div>")
    return "".join(out)


def not_verified_table(items: Sequence[dict[str, Any]]) -> str:
    """What was NOT VERIFIED, and why (nothing when everything was)."""
    if not items:
        return ""
    out = [f"<h2>Not verified ({len(items)})</h2><table>",
           "<tr><th>rule</th><th>level</th><th>operation</th><th>why</th></tr>"]
    for item in items:
        level = _e(item["level"])
        out.append(
            f"<tr><td>{_e(item['rule'])}</td><td><span class='badge {level}'>"
            f"{level}</span></td><td>{_e(item.get('operation') or '')}</td>"
            f"<td>{_e(item['reason'])}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def render_html(summary: dict[str, Any]) -> str:
    """One page, no external asset: verdict, failures, rules by level, contract coverage."""
    verdict = summary["verdict"]
    totals = summary["totals"]
    facts = [
        f"target {_e(summary['base_url'])} · seed {_e(summary['seed'])} · wall time "
        f"{summary['wall_time_seconds']:.1f} s · finished {_e(summary['finished_at'])}"
        + (" · strict (SHOULD counts)" if summary["strict"] else ""),
        " · ".join(f"{totals.get(o, 0)} {o.replace('_', ' ')}" for o in OUTCOMES)
        + " (rule &times; operation)",
    ]
    out = ["<h2>Counts by level</h2><table><tr><th>level</th>"]
    out += [f"<th>{o.replace('_', ' ')}</th>" for o in OUTCOMES]
    out.append("</tr>")
    for level in LEVELS:
        counts = summary["counts"][level]
        out.append(f"<tr><td><span class='badge {level}'>{level}</span></td>")
        out += [f"<td class='{o if counts[o] else 'muted'}'>{counts[o]}</td>" for o in OUTCOMES]
        out.append("</tr>")
    out.append("</table>")
    out.append(failure_cards(
        summary["failures"],
        "The curl lines read the credentials from the environment, as "
        "<code>pepharness check</code> does: <code>$PEPHARNESS_EMAIL</code>, "
        "<code>$PEPHARNESS_PASSWORD</code>, and <code>$JWT_AUTH</code> for a token "
        "(the <code>jwt-auth</code> header of a fresh login).",
    ))
    out.append(not_verified_table(summary["not_verified"]))
    out.append(rules_table(summary["rules"]))

    never_seen = summary.get("fields_never_seen") or []
    if never_seen:
        out.append(
            f"<h2>Fields never seen ({len(never_seen)})</h2><p class='muted'><span class='badge "
            "INFO'>INFO</span> Declared fields that no answer of check_answers_declare_every_field"
            " carried: optional data the target had none of, or a field it names otherwise.</p>"
            "<table><tr><th>operation</th><th>status</th><th>fields</th></tr>"
        )
        for row in never_seen:
            out.append(
                f"<tr><td>{_e(row['operation'])}<br><span class='muted'>{_e(row['api'])}</span>"
                f"</td><td>{_e(row['status'])}</td><td>{_e(', '.join(row['fields']))}</td></tr>"
            )
        out.append("</table>")

    out.append(
        "<h2>Contract coverage</h2><p class='muted'>Every documented status of every operation:"
        " observed (with the number of responses) or never exercised.</p>"
        "<table><tr><th>operation</th><th>observed</th><th>never exercised</th>"
        "<th>undocumented, observed</th></tr>"
    )
    for row in summary["coverage"]:
        observed = ", ".join(
            f"<span class='hit'>{_e(s)}</span>&times;{n}" for s, n in row["observed"].items()
            if s not in row["undocumented_observed"]
        )
        missing = ", ".join(f"<span class='missing'>{_e(s)}</span>" for s in row["never_exercised"])
        extra = ", ".join(
            f"<span class='failed'>{_e(s)}</span>&times;{row['observed'][s]}"
            for s in row["undocumented_observed"]
        )
        out.append(
            f"<tr><td>{_e(row['operation'])}<br><span class='muted'>{_e(row['operation_id'])}"
            f"</span></td><td>{observed or '<span class=muted>none</span>'}</td>"
            f"<td>{missing or '<span class=muted>none</span>'}</td><td>{extra}</td></tr>"
        )
    out.append("</table>")
    return page(
        f"pepharness check {'+'.join(summary['apis'])}", verdict,
        " + ".join(summary["apis"]) or "suite", facts, out,
    )
