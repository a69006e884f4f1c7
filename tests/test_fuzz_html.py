"""report.html of `pepharness fuzz`, rendered from summary.json alone: no server, no traffic."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from pepharness.suites.fuzz import html as fuzz_html

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script> \"quoted\" 'single' & more"


def finding(kind: str, status: int | None, count: int, **extra: Any) -> dict[str, Any]:
    operation = extra.pop("operation", "GET /games/{version}/view/detailed")
    return {
        "key": f"{operation}|{kind}|{status}",
        "operation": operation,
        "kind": kind,
        "status": status,
        "title": f"title of {kind}",
        "message": f"message of {kind}",
        "count": count,
        "first_index": 17,
        "first_seconds": 1.23,
        "curl": f"curl -sS -i 'http://127.0.0.1:8101/{kind}'",
        **extra,
    }


def summary(**overrides: Any) -> dict[str, Any]:
    timeline = [
        {"second": s, "statuses": {"200": 150, "400": 14, "429": s % 2, "500": 1 if s == 3 else 0}}
        for s in range(30)
    ]
    base: dict[str, Any] = {
        "api": "sinatra",
        "base_url": "http://127.0.0.1:8101",
        "seed": 42,
        "mode": "all",
        "profile": {"catalog": 4, "generated": 4, "history": 1, "login": 1},
        "started": "2026-11-25T09:01:00+00:00",
        "duration_seconds": 30.02,
        "requests": 4935,
        "rate": 164.4,
        "stopped_by": "duration",
        "statuses": {"200": 4500, "400": 420, "429": 15, "500": 1, "error": 2},
        "timeline": timeline,
        "operations": [
            {"operation": "GET /games/{version}/view/detailed", "count": 1200, "failures": 40,
             "p50_ms": 3.1, "p90_ms": 7.0, "p95_ms": 9.2, "p99_ms": 20.4, "max_ms": 1502.3},
            {"operation": "POST /login", "count": 3735, "failures": 0,
             "p50_ms": 2.0, "p90_ms": 3.0, "p95_ms": 4.5, "p99_ms": 8.25, "max_ms": 12.0},
        ],
        "latency_budget_ms": 1000,
        "findings": [
            finding("response_schema_conformance", 200, 3),
            finding("slow", 200, 1),
            finding("server_error", 500, 1),
            finding("timeout", None, 2),
        ],
    }
    return base | overrides


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


def timeline_bars(page: str) -> list[ET.Element]:
    chart = next(s for s in svgs(page) if s.get("aria-label", "").startswith("Status codes"))
    bars = next(g for g in chart.iter(f"{SVG}g") if g.get("class") == "bars")
    return list(bars)


def test_a_realistic_run_shows_every_section() -> None:
    page = fuzz_html.render(summary())

    assert page.startswith("<!doctype html>")
    for heading in ("Status codes over time", "Status codes", "Latency per operation",
                    "Findings (4)"):
        assert f"<h2>{heading}</h2>" in page
    assert "<header class='fail'>" in page
    assert "4 findings" in page
    for fact in ("http://127.0.0.1:8101", "<dd>42</dd>", "catalog 4 · generated 4",
                 "<dd>30.0 s</dd>", "<dd>4,935</dd>", "164.4 req/s", "duration reached"):
        assert fact in page
    assert "<td class='n'>1,200</td>" in page
    assert "40 (3.3%)" in page
    assert "<td class='n'>1,502.3</td>" in page
    assert "<td class='n p99'>20.4</td>" in page
    assert "curl -sS -i &#x27;http://127.0.0.1:8101/server_error&#x27;" in page
    assert "request #17" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=|@import|url\(", page)


def test_findings_are_sorted_by_severity_then_count() -> None:
    page = fuzz_html.render(summary())

    order = [page.index(f"title of {kind}") for kind in
             ("server_error", "timeout", "slow", "response_schema_conformance")]
    assert order == sorted(order)
    assert "<dt>status</dt><dd>no answer</dd>" in page


def test_the_charts_are_well_formed_svg() -> None:
    page = fuzz_html.render(summary())

    charts = svgs(page)
    assert [c.get("aria-label") for c in charts] == [
        "Status codes over time, answers per second", "Latency per operation"]
    bars = timeline_bars(page)
    assert len(bars) == 30
    first_bar_fills = [r.get("fill") for r in bars[0].iter(f"{SVG}rect")]
    assert first_bar_fills == [fuzz_html.COLORS["2xx"], fuzz_html.COLORS["4xx"]]
    assert bars[3].findtext(f"{SVG}title") == (
        "second 3: 166 answers (2xx 150, 4xx 14, 429 rate limited 1, 5xx 1)")
    legend = [t.text for t in charts[0].iter(f"{SVG}text")]
    assert {"2xx", "4xx", "429 rate limited", "5xx"} <= set(legend)
    assert "3xx" not in legend


def test_a_one_second_run_draws_one_bar() -> None:
    page = fuzz_html.render(summary(timeline=[{"second": 0, "statuses": {"200": 7}}]))

    bars = timeline_bars(page)
    assert len(bars) == 1
    assert bars[0].findtext(f"{SVG}title") == "second 0: 7 answers (2xx 7)"


def test_hostile_strings_from_the_traffic_come_out_inert() -> None:
    hostile = finding("server_error", 500, 1, operation=f"GET /x{HOSTILE}", message=HOSTILE,
                      title=HOSTILE, curl=f"curl -sS 'http://t/{HOSTILE}'")
    page = fuzz_html.render(summary(
        api=HOSTILE, findings=[hostile], profile={HOSTILE: 1}, statuses={HOSTILE: 3},
        operations=[{"operation": f"GET /x{HOSTILE}\x00", "count": 1, "failures": 1,
                     "p50_ms": 1, "p90_ms": 1, "p95_ms": 1, "p99_ms": 1, "max_ms": 1}],
    ))

    assert "<script" not in page.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &#x27;single&#x27; &amp;"
    assert f"<div class='message'>{escaped} more</div>" in page
    assert f"<title>pepharness fuzz {escaped} more: 1 finding</title>" in page
    assert "<pre title='reproduce: click to select'>curl -sS &#x27;http://t/&lt;script&gt;" in page
    for chart in svgs(page):
        assert chart.tag == f"{SVG}svg"


def test_an_empty_run_says_no_findings() -> None:
    page = fuzz_html.render(summary(
        requests=0, rate=0, duration_seconds=0.4, statuses={}, timeline=[], operations=[],
        findings=[],
    ))

    assert "<header class='pass'>" in page
    assert "<div class='findings'>no findings</div>" in page
    assert "No findings in this run." in page
    assert "No traffic was recorded" in page
    assert "No requests, so no latencies." in page
    assert svgs(page) == []


def test_a_bare_summary_renders_with_placeholders() -> None:
    page = fuzz_html.render({})

    assert "no findings" in page
    assert "<dt>requests</dt><dd>—</dd>" in page


def test_an_hour_long_run_is_bucketed_into_a_bounded_number_of_bars() -> None:
    timeline = [{"second": s, "statuses": {"200": 100, "503": 1, "error": 1}}
                for s in range(3600)]
    page = fuzz_html.render(summary(timeline=timeline, duration_seconds=3600.2))

    bars = timeline_bars(page)
    assert 100 <= len(bars) <= fuzz_html.MAX_BARS
    assert len(bars) == 240
    assert bars[1].findtext(f"{SVG}title") == (
        "15 to 30 s: 1,530 answers (2xx 1,500, 5xx 15, no answer 15)")
    assert "answers per 15 s" in page
    assert "<dd>1 h 00 min 00 s</dd>" in page
    assert len(page) < 150_000


def test_bucket_widths_are_round_and_keep_within_the_bar_limit() -> None:
    assert fuzz_html.bucket_seconds(1) == 1
    assert fuzz_html.bucket_seconds(300) == 1
    assert fuzz_html.bucket_seconds(301) == 2
    assert fuzz_html.bucket_seconds(3600) == 15
    assert fuzz_html.bucket_seconds(10 * 86400) == 3600 * 1


def test_an_operation_over_the_latency_budget_is_highlighted() -> None:
    operations = summary()["operations"]
    operations[0] = operations[0] | {"p99_ms": 1250.0}
    page = fuzz_html.render(summary(operations=operations))

    assert "1 operation over it at p99" in page
    assert page.count("<span class='badge over'>over budget</span>") == 1
    row = re.search(r"<tr class='over'><td>(.*?)</td>", page)
    assert row is not None and row.group(1).startswith("GET /games/{version}/view/detailed")
    chart = svgs(page)[1]
    budget = next(line for line in chart.iter(f"{SVG}line") if line.get("class") == "budget")
    highlighted = [r for r in chart.iter(f"{SVG}rect") if r.get("class") == "over"]
    assert len(highlighted) == 1
    assert highlighted[0].get("y") == "40"
    assert "budget 1,000.0 ms" in [t.text for t in chart.iter(f"{SVG}text")]
    p99_bars = [r for r in chart.iter(f"{SVG}rect")
                if r.get("fill") == fuzz_html.PERCENTILE_COLORS["p99"]
                and r.find(f"{SVG}title") is not None]
    ends = [float(r.get("x", 0)) + float(r.get("width", 0)) for r in p99_bars]
    assert ends[0] > float(budget.get("x1", 0)) > ends[1]


def test_within_budget_there_is_a_budget_line_and_no_highlight() -> None:
    page = fuzz_html.render(summary())

    assert "every operation within it at p99" in page
    assert "class='over'" not in page and "badge over" not in page
    chart = svgs(page)[1]
    assert [line.get("class") for line in chart.iter(f"{SVG}line")].count("budget") == 1
    assert not [r for r in chart.iter(f"{SVG}rect") if r.get("class") == "over"]


def test_write_puts_the_page_in_utf8(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    fuzz_html.write(summary(api="sinatra ✓"), target)

    assert "pepharness fuzz — sinatra ✓" in target.read_text(encoding="utf-8")


def test_a_slow_finding_shows_its_answers_status_and_a_server_error_its_body() -> None:
    body = HOSTILE + "\x00" + "x" * 900
    page = fuzz_html.render(summary(findings=[
        finding("slow", None, 1, answer_status=200, message="200 answered in 1,568 ms"),
        finding("server_error", 500, 1, answer_status=500, excerpt=body),
        finding("timeout", None, 1),
    ]))

    cards = re.findall(r"<section class='card.*?</section>", page, flags=re.S)
    slow, server, timeout = (next(c for c in cards if f">{k}</span>" in c)
                             for k in ("slow", "server_error", "timeout"))
    assert "<dt>status</dt><dd>200 <span class='muted'>(the kept request" in slow
    assert "no answer" not in slow
    assert "<dt>status</dt><dd>no answer</dd>" in timeout
    excerpt = re.search(r"<pre class='excerpt'>(.*?)</pre>", server, flags=re.S)
    assert excerpt is not None and "&lt;script&gt;alert(1)&lt;/script&gt;" in excerpt.group(1)
    assert "\x00" not in page and "<script" not in page
    assert "excerpt" not in slow


def test_the_notes_status_coverage_and_flow_split_are_on_the_page() -> None:
    notes = ["GET /a (negative): nothing in it to break; its positive cases go instead",
             "74 item(s) waiting out a 429 when the run ended were not sent", HOSTILE]
    coverage = [
        {"operation": "GET /games/{version}/view/detailed",
         "statuses": {"200": 1100, "400": 60, "500": 40}},
        {"operation": "POST /login", "statuses": {"401": 12, "error": 1}},
    ]
    split = [{"flow": "catalog", "mode": None, "requests": 900, "failures": 0},
             {"flow": "generated", "mode": "negative", "requests": 300, "failures": 40}]
    page = fuzz_html.render(summary(notes=notes, coverage=coverage, split=split))

    assert "<h2>Notes on this run (3)</h2>" in page
    assert page.index("Notes on this run") < page.index("Status codes over time")
    assert "<li>74 item(s) waiting out a 429 when the run ended were not sent</li>" in page
    assert "&lt;script&gt;" in page and "<script" not in page
    table = re.search(r"<table class='coverage'>.*?</table>", page, flags=re.S)
    assert table is not None
    head = re.findall(r"<th class='n'>(.*?)</th>", table.group(0))
    assert head == ["200", "400", "401", "500", "no answer"]
    login = re.search(r"<tr><td>POST /login</td>.*?</tr>", table.group(0))
    assert login is not None and "no 2xx" in login.group(0)
    assert "2xx · 4xx · 5xx" in table.group(0)
    assert "<h2>Requests by flow and mode</h2>" in page
    assert ("<tr><td>generated</td><td>negative</td><td class='n'>300</td>"
            "<td class='n'>25.0%</td><td class='n'>40 (13.3%)</td></tr>") in page
    assert "Notes on this run" not in fuzz_html.render(summary(notes=[]))
