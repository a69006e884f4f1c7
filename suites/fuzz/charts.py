"""The fuzz report's SVG charts (status codes over time, latency per operation) and the
escaping and number formatting report.html shares with them."""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"
MAX_BARS = 300
"""More elapsed seconds than this are bucketed, so an hour-long run stays a small page."""
BUCKET_SECONDS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
TICK_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200)

STATUS_CLASSES = ("2xx", "3xx", "4xx", "429", "5xx", "error", "other")
COLORS = {
    "2xx": "#2f9e44", "3xx": "#3b6fd1", "4xx": "#e0a100", "429": "#e8590c",
    "5xx": "#c92a2a", "error": "#343a40", "other": "#adb5bd",
}
LABELS = {
    "2xx": "2xx", "3xx": "3xx", "4xx": "4xx", "429": "429 rate limited", "5xx": "5xx",
    "error": "no answer", "other": "other",
}
PERCENTILE_COLORS = {"p99": "#c5d3ee", "p95": "#7d9ad6", "p50": "#1d4690"}


_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def escape(value: Any) -> str:
    """Escaped text, safe in HTML and in inline SVG, whatever bytes the fuzzed traffic held."""
    text = "" if value is None else str(value)
    text = _UNSAFE.sub("\ufffd", text).encode("utf-8", "replace").decode("utf-8")
    return html.escape(text)


def to_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def milliseconds(value: Any) -> str:
    found = to_number(value)
    return "—" if found is None else f"{found:,.1f}"


def _f(value: float) -> str:
    """A coordinate: one decimal is finer than a pixel and keeps the SVG short."""
    return f"{value:.1f}".removesuffix(".0")


def _clock(second: int, long_run: bool) -> str:
    if not long_run:
        return f"{second:,}"
    hours, rest = divmod(second, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def status_class(status: str) -> str:
    """The chart's color group of a status key of summary.json ("200", "429", "error")."""
    try:
        code = int(status)
    except ValueError:
        return "error" if status == "error" else "other"
    if code == 0:
        return "error"
    if code == 429:
        return "429"
    return f"{code // 100}xx" if 200 <= code < 600 else "other"


def _nice_step(raw: float) -> float:
    """The 1-2-5 step at or above `raw`, so axis ticks land on round numbers."""
    if raw <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def bucket_seconds(span: int) -> int:
    """The width of one bar: the smallest round number of seconds that keeps bars <= MAX_BARS."""
    for width in BUCKET_SECONDS:
        if math.ceil(span / width) <= MAX_BARS:
            return width
    return 3600 * math.ceil(span / (3600 * MAX_BARS))


def _svg(width: float, height: float, label: str, body: Iterable[str]) -> str:
    return (
        f"<svg xmlns='{SVG_NS}' viewBox='0 0 {_f(width)} {_f(height)}' width='{_f(width)}' "
        f"height='{_f(height)}' role='img' aria-label='{escape(label)}'>" + "".join(body) + "</svg>"
    )


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for label, color in items:
        out.append(
            f"<rect x='{_f(x)}' y='{_f(y - 9)}' width='10' height='10' fill='{color}'/>"
            f"<text x='{_f(x + 14)}' y='{_f(y)}'>{escape(label)}</text>"
        )
        x += 24 + 6.5 * len(label)
    return out


def timeline_svg(timeline: Sequence[Mapping[str, Any]]) -> str:
    """Stacked bars of the answers per elapsed second (or per bucket of seconds), by class."""
    points = [
        (max(0, int(to_number(point.get("second")) or 0)), point.get("statuses") or {})
        for point in timeline
    ]
    if not points:
        return "<p class='muted'>No traffic was recorded, so there is nothing to chart.</p>"
    span = max(second for second, _ in points) + 1
    width = bucket_seconds(span)
    slots = math.ceil(span / width)
    buckets: dict[int, Counter[str]] = {}
    for second, statuses in points:
        bucket = buckets.setdefault(second // width, Counter())
        for status, count in statuses.items():
            bucket[status_class(str(status))] += int(to_number(count) or 0)
    present = [c for c in STATUS_CLASSES if any(b[c] for b in buckets.values())]
    peak = max((sum(b.values()) for b in buckets.values()), default=0)
    step = max(1, int(_nice_step(peak / 5)))
    top_count = max(step, step * math.ceil(peak / step))

    chart_w, chart_h, left, right, top, bottom = 960, 290, 64, 28, 34, 46
    plot_w, plot_h = chart_w - left - right, chart_h - top - bottom
    slot_w = plot_w / slots
    bar_w = min(slot_w if slot_w < 3 else slot_w * 0.85, 48.0)
    long_run = span > 300

    def y_of(count: float) -> float:
        return top + plot_h * (1 - count / top_count)

    out = _legend([(LABELS[c], COLORS[c]) for c in present], left, 18)
    for tick in range(0, top_count + 1, step):
        y = y_of(tick)
        out.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{_f(y)}' y2='{_f(y)}' stroke='#eef0f3'/>"
            f"<text x='{left - 6}' y='{_f(y + 4)}' text-anchor='end'>{tick:,}</text>"
        )
    out.append("<g class='bars'>")
    for index in sorted(buckets):
        bucket = buckets[index]
        start = index * width
        when = f"second {start:,}" if width == 1 else f"{start:,} to {start + width:,} s"
        shown = ", ".join(f"{LABELS[c]} {bucket[c]:,}" for c in present if bucket[c])
        out.append(f"<g><title>{when}: {sum(bucket.values()):,} answers ({shown})</title>")
        x = left + index * slot_w + (slot_w - bar_w) / 2
        floor = y_of(0)
        for cls in present:
            if bucket[cls]:
                # A few 5xx among thousands of 200s are the point of the chart: keep them visible.
                height = max(plot_h * bucket[cls] / top_count, 0.5 if cls == "2xx" else 2.0)
                floor -= height
                out.append(
                    f"<rect x='{_f(x)}' y='{_f(floor)}' width='{_f(bar_w)}' "
                    f"height='{_f(height)}' fill='{COLORS[cls]}'/>"
                )
        out.append("</g>")
    out.append("</g>")
    domain = slots * width
    tick_step = next((t for t in TICK_SECONDS if t >= domain / 8), TICK_SECONDS[-1])
    for second in range(0, domain + 1, tick_step):
        x = left + plot_w * second / domain
        out.append(
            f"<line x1='{_f(x)}' x2='{_f(x)}' y1='{top + plot_h}' y2='{top + plot_h + 4}' "
            f"stroke='#444c56'/><text x='{_f(x)}' y='{top + plot_h + 16}' "
            f"text-anchor='middle'>{_clock(second, long_run)}</text>"
        )
    per = "second" if width == 1 else f"{width:,} s"
    out.append(
        f"<line x1='{left}' x2='{left}' y1='{top}' y2='{top + plot_h}' stroke='#444c56'/>"
        f"<line x1='{left}' x2='{left + plot_w}' y1='{top + plot_h}' y2='{top + plot_h}' "
        f"stroke='#444c56'/>"
        f"<text x='{left + plot_w / 2}' y='{chart_h - 8}' text-anchor='middle'>elapsed "
        f"{'seconds' if not long_run else 'time (m:ss)' if domain < 3600 else 'time (h:mm:ss)'}"
        "</text>"
        f"<text transform='translate(14 {top + plot_h / 2}) rotate(-90)' "
        f"text-anchor='middle'>answers per {per}</text>"
    )
    return _svg(chart_w, chart_h, f"Status codes over time, answers per {per}", out)


def is_over(operation: Mapping[str, Any], budget: float | None) -> bool:
    p99 = to_number(operation.get("p99_ms"))
    return budget is not None and p99 is not None and p99 > budget


def latency_svg(operations: Sequence[Mapping[str, Any]], budget: float | None) -> str:
    """p50, p95 and p99 of each operation as overlaid bars, against the latency budget."""
    names = [str(op.get("operation", "")) for op in operations]
    shown = [n if len(n) <= 48 else n[:47] + "…" for n in names]
    label_w = min(340.0, 16 + 6.6 * max((len(n) for n in shown), default=8))
    chart_w, row_h, top, bottom, right = 960, 26, 40, 40, 96
    plot_w = chart_w - label_w - right
    chart_h = top + row_h * len(operations) + bottom
    highest = [to_number(op.get("p99_ms")) or 0.0 for op in operations]
    domain = max([*highest, budget or 0.0, 1.0]) * 1.05
    step = _nice_step(domain / 6)
    domain = step * math.ceil(domain / step)

    def x_of(ms: float) -> float:
        return label_w + plot_w * ms / domain

    legend = [(f"{p} ms", c) for p, c in reversed(PERCENTILE_COLORS.items())]
    out = _legend(legend, label_w, 18)
    ticks = 0
    while ticks * step <= domain + step / 1000:
        x, value = x_of(ticks * step), ticks * step
        decimals = 0 if step >= 1 else -math.floor(math.log10(step))
        text = f"{value:,.{decimals}f}"
        out.append(
            f"<line x1='{_f(x)}' x2='{_f(x)}' y1='{top}' y2='{chart_h - bottom}' "
            f"stroke='#eef0f3'/><text x='{_f(x)}' y='{chart_h - bottom + 14}' "
            f"text-anchor='middle'>{text}</text>"
        )
        ticks += 1
    for row, (operation, name, label) in enumerate(zip(operations, names, shown, strict=True)):
        y = top + row * row_h
        over = is_over(operation, budget)
        if over:
            out.append(
                f"<rect class='over' x='0' y='{y}' width='{chart_w}' height='{row_h}' "
                "fill='#fde2e1'/>"
            )
        weight = " font-weight='700' style='fill:#b42318'" if over else ""
        out.append(
            f"<text x='{_f(label_w - 8)}' y='{y + 17}' text-anchor='end'{weight}>"
            f"<title>{escape(name)}</title>{escape(label)}</text>"
        )
        for percentile, color in PERCENTILE_COLORS.items():
            ms = to_number(operation.get(f"{percentile}_ms"))
            if ms is not None:
                out.append(
                    f"<rect x='{_f(label_w)}' y='{y + 5}' width='{_f(x_of(ms) - label_w)}' "
                    f"height='16' fill='{color}'><title>{escape(name)}: {percentile} "
                    f"{milliseconds(ms)} ms</title></rect>"
                )
        p99 = to_number(operation.get("p99_ms"))
        if p99 is not None:
            out.append(
                f"<text x='{_f(x_of(p99) + 4)}' y='{y + 17}'{weight}>"
                f"p99 {milliseconds(p99)} ms</text>"
            )
    out.append(
        f"<line x1='{_f(label_w)}' x2='{_f(label_w)}' y1='{top}' y2='{chart_h - bottom}' "
        f"stroke='#444c56'/><text x='{_f(label_w + plot_w / 2)}' y='{chart_h - 8}' "
        "text-anchor='middle'>milliseconds</text>"
    )
    if budget is not None:
        x = x_of(budget)
        out.append(
            f"<line class='budget' x1='{_f(x)}' x2='{_f(x)}' y1='{top - 6}' "
            f"y2='{chart_h - bottom}' stroke='#b42318' stroke-width='2' stroke-dasharray='6 3'/>"
            f"<text x='{_f(x)}' y='{top - 10}' text-anchor='middle' style='fill:#b42318'>"
            f"budget {milliseconds(budget)} ms</text>"
        )
    return _svg(chart_w, chart_h, "Latency per operation", out)
