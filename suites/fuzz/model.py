"""A fuzz run's settings, its live snapshot and its result, with the figures they report."""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pepharness.suites.fuzz.findings import Findings
from pepharness.suites.fuzz.plan import DEFAULT_VARIETY
from pepharness.suites.options import SuiteOptions

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 10.0
DEFAULT_LATENCY_BUDGET_MS = 1000.0
HAR_MODES = ("all", "findings", "none")


@dataclass(frozen=True)
class Settings:
    """One run's settings (the command line's options)."""

    api: str
    base_url: str
    seed: int = 42
    mode: str = "all"
    profile: Mapping[str, float] | None = None
    duration: float | None = None
    requests: int | None = None
    rate: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS
    variety: int = DEFAULT_VARIETY
    har: str = "all"
    suite: SuiteOptions = field(default_factory=SuiteOptions)


@dataclass
class Snapshot:
    """The live figures the progress line shows."""

    elapsed: float
    requests: int
    rate: float
    statuses: Counter[str]
    findings: int
    waiting: float


@dataclass
class Result:
    settings: Settings
    started: datetime
    duration: float
    requests: int
    stopped_by: str
    statuses: Counter[str]
    timeline: list[dict[str, Any]]
    operations: list[dict[str, Any]]
    findings: Findings
    entries: list[dict[str, Any]]
    notes: list[str]
    coverage: list[dict[str, Any]] = field(default_factory=list)
    """The statuses each operation answered (Tally.coverage_json)."""
    split: list[dict[str, Any]] = field(default_factory=list)
    """The requests by flow and mode (Tally.split_json)."""

    @property
    def rate(self) -> float:
        return self.requests / self.duration if self.duration > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "api": self.settings.api,
            "base_url": self.settings.base_url,
            "seed": self.settings.seed,
            "mode": self.settings.mode,
            "profile": dict(self.settings.profile or {}),
            "started": self.started.isoformat(timespec="seconds"),
            "duration_seconds": round(self.duration, 3),
            "requests": self.requests,
            "rate": round(self.rate, 1),
            "stopped_by": self.stopped_by,
            "statuses": dict(sorted(self.statuses.items())),
            "timeline": self.timeline,
            "operations": self.operations,
            "latency_budget_ms": self.settings.latency_budget_ms,
            "findings": [f.to_json(with_entry=False) for f in self.findings.sorted()],
            "notes": self.notes,
            "coverage": self.coverage,
            "split": self.split,
        }

    def findings_document(self) -> dict[str, Any]:
        return {
            "api": self.settings.api,
            "base_url": self.settings.base_url,
            "seed": self.settings.seed,
            "mode": self.settings.mode,
            "generated_at": self.started.isoformat(timespec="seconds"),
            "requests": self.requests,
            "latency_budget_ms": self.settings.latency_budget_ms,
            "findings": self.findings.to_json(),
        }


def _split_key(flow: str | None, mode: str | None) -> tuple[str, str]:
    return (flow or "-", mode or "")


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Tally:
    """A run's figures: statuses per elapsed second, answer times and failures per operation
    (thread-safe; a cluster's master adds its workers' up)."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.timeline: dict[int, Counter[str]] = defaultdict(Counter)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.failures: Counter[str] = Counter()
        self.coverage: dict[str, Counter[str]] = defaultdict(Counter)
        self.split: Counter[tuple[str, str]] = Counter()
        self.split_failures: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def statuses_now(self) -> Counter[str]:
        with self._lock:
            return Counter(self.statuses)

    def latencies_now(self) -> dict[str, list[float]]:
        with self._lock:
            return {label: list(values) for label, values in self.latencies.items()}

    def count(
        self, second: int, status: str, label: str | None = None, flow: str | None = None,
        mode: str | None = None,
    ) -> None:
        """An answer that is not judged (a 429 waited out and sent again)."""
        with self._lock:
            self.statuses[status] += 1
            self.timeline[second][status] += 1
            if label is not None:
                self.coverage[label][status] += 1
                self.split[_split_key(flow, mode)] += 1

    def answer(
        self, second: int, label: str, status: str, elapsed_ms: float, failed: bool,
        flow: str | None = None, mode: str | None = None,
    ) -> None:
        with self._lock:
            self.statuses[status] += 1
            self.timeline[second][status] += 1
            self.latencies[label].append(elapsed_ms)
            self.coverage[label][status] += 1
            self.split[_split_key(flow, mode)] += 1
            if failed:
                self.failures[label] += 1
                self.split_failures[_split_key(flow, mode)] += 1

    def add(self, part: Mapping[str, Any]) -> None:
        """Add a partial's figures (see output.partial)."""
        with self._lock:
            self.statuses.update(part["statuses"])
            for second in part["timeline"]:
                self.timeline[int(second["second"])].update(second["statuses"])
            for label, values in part["latencies"].items():
                self.latencies[label].extend(values)
            self.failures.update(part["failures"])
            for row in part.get("coverage", []):
                self.coverage[row["operation"]].update(row["statuses"])
            for row in part.get("split", []):
                key = _split_key(row["flow"], row["mode"])
                self.split[key] += int(row["requests"])
                self.split_failures[key] += int(row["failures"])

    def coverage_json(self) -> list[dict[str, Any]]:
        """Each operation's answers by status (429s waited out included)."""
        with self._lock:
            return [{"operation": label, "statuses": dict(sorted(self.coverage[label].items()))}
                    for label in sorted(self.coverage)]

    def split_json(self) -> list[dict[str, Any]]:
        """The requests (and those with a finding) by flow and, for generated ones, mode."""
        with self._lock:
            return [{"flow": flow, "mode": mode or None, "requests": count,
                     "failures": self.split_failures[(flow, mode)]}
                    for (flow, mode), count in sorted(self.split.items())]

    def timeline_json(self, duration: float) -> list[dict[str, Any]]:
        with self._lock:
            seconds = max(math.ceil(duration), max(self.timeline, default=-1) + 1)
            return [
                {"second": s, "statuses": dict(sorted(self.timeline.get(s, {}).items()))}
                for s in range(seconds)
            ]

    def operations_json(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = []
            for label in sorted(self.latencies):
                ordered = sorted(self.latencies[label])
                rows.append({
                    "operation": label,
                    "count": len(ordered),
                    "failures": self.failures[label],
                    **{f"p{p}_ms": round(percentile(ordered, p / 100), 1)
                       for p in (50, 90, 95, 99)},
                    "max_ms": round(ordered[-1], 1) if ordered else 0.0,
                })
            return rows
