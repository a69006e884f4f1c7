"""The master of a `pepharness fuzz` Locust cluster: waits for its workers, hands each its plan,
stops the run and merges the workers' findings and figures into one report."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pepharness.suites.fuzz.swarm import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_SETUP,
    plan_of,
)
from pepharness.suites.fuzz.swarm_locust import (
    DONE,
    ERROR,
    PARTIAL,
    PLAN,
    READY,
    STOP,
    STOP_GRACE,
    quiet_locust,
    user_class,
)

if TYPE_CHECKING:
    from pepharness.suites.fuzz.model import Settings

HAR_NOTE = "cluster mode: traffic.har holds the findings' exchanges only"


class Master:
    """The Locust master: hands each worker its plan, starts the users, stops on --duration,
    when every worker has spent its --requests or on Ctrl-C, and merges the workers' figures."""

    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.expected = max(1, int(args.expect_workers))
        self.plan = plan_of(settings, self.expected)
        self.planned: dict[str, int] = {}
        self.done: set[str] = set()
        self.partials: dict[str, Mapping[str, Any]] = {}
        self.errors: list[str] = []
        self.live: dict[str, Mapping[str, Any]] = {}
        self.interrupted = threading.Event()

    def say(self, line: str) -> None:
        print(line, flush=True)

    def run(self) -> int:
        import gevent
        from locust.env import Environment

        quiet_locust()
        # By Locust's own stop the users are gone already (see Worker._on_stop_message); its
        # stop_timeout is how long a worker then waits before it reports ready again.
        environment = Environment(user_classes=[user_class(None)], stop_timeout=0.5)
        try:
            locust = environment.create_master_runner(self.args.bind_host, self.args.bind_port)
        except SystemExit:
            self.say(f"error: the Locust master port {self.args.bind_host}:"
                     f"{self.args.bind_port} is busy")
            return EXIT_SETUP
        locust.register_message(READY, self._on_ready)
        locust.register_message(DONE, lambda environment, msg, **_: self.done.add(msg.node_id))
        locust.register_message(PARTIAL, self._on_partial)
        locust.register_message(ERROR, self._on_error)
        events: Any = environment.events
        events.worker_report.add_listener(self._on_report)
        gevent.signal_handler(signal.SIGINT, self.interrupted.set)
        gevent.signal_handler(signal.SIGTERM, self.interrupted.set)
        try:
            return self._run(environment, locust)
        finally:
            # Locust's quit reaches the workers it still counts: not those that reported
            # "stopped".
            for client in self.planned:
                locust.send_message("quit", None, client_id=client)
            locust.quit()

    def _run(self, environment: Any, locust: Any) -> int:
        import gevent

        from pepharness.suites.fuzz import har

        where = f"{self.args.bind_host}:{self.args.bind_port}"
        self.say(f"Locust master on {where}: waiting for {self.expected} worker(s)")
        deadline = time.monotonic() + self.args.connect_timeout
        while len(self._ready(locust)) < self.expected:
            if self.errors:
                return self._setup_error(self.errors[0])
            if self.interrupted.is_set():
                return self._setup_error("interrupted while waiting for the workers")
            if time.monotonic() > deadline:
                return self._setup_error(
                    f"{len(self._ready(locust))} of {self.expected} Locust worker(s) connected to "
                    f"{where} within {self.args.connect_timeout:g} s"
                )
            gevent.sleep(0.1)
        users = max(self.settings.concurrency, self.expected)
        started = har.now()
        clock = time.monotonic()
        locust.start(user_count=users, spawn_rate=min(users * 10, 100 * self.expected))
        workers = set(self._ready(locust))
        self.say(f"{len(workers)} worker(s), {users} users, seed {self.settings.seed}")
        stopped_by = self._wait(environment, locust, workers, clock)
        for client in workers:
            locust.send_message(STOP, None, client_id=client)
        self._collect(workers)
        locust.stop()
        if self.errors:
            return self._setup_error(self.errors[0])
        return self._finish(started, stopped_by, users)

    def _ready(self, locust: Any) -> list[str]:
        """Connected workers that have their plan."""
        connected = {client.id for client in locust.clients.all}
        return [client for client in self.planned if client in connected]

    def _wait(self, environment: Any, locust: Any, workers: set[str], clock: float) -> str:
        import gevent

        duration = self.settings.duration
        next_report = clock + self.args.progress_every
        while True:
            gevent.sleep(0.2)
            now = time.monotonic()
            if self.errors:
                return "error"
            if self.interrupted.is_set():
                return "interrupt"
            if duration is not None and now - clock >= duration:
                return "duration"
            if self.settings.requests is not None and workers <= self.done:
                return "requests"
            if locust.worker_count == 0:
                self.errors.append("every Locust worker quit or went missing")
                return "error"
            if now >= next_report:
                self._progress(environment, now - clock)
                next_report = now + self.args.progress_every

    def _progress(self, environment: Any, elapsed: float) -> None:
        total = environment.stats.total
        keys = {key for report in self.live.values() for key in report.get("findings", [])}
        sent = sum(int(report.get("requests", 0)) for report in self.live.values())
        self.say(f"{elapsed:6.0f} s  {max(sent, total.num_requests):,} requests  "
                 f"{total.current_rps:,.1f} req/s  {len(keys)} finding(s)  "
                 f"{len(self.live)} worker(s) reporting")

    def _collect(self, workers: set[str]) -> None:
        """Wait for every worker's figures (sent when its users have stopped)."""
        import gevent

        deadline = time.monotonic() + self.settings.timeout + STOP_GRACE + 30
        while not workers <= set(self.partials) and time.monotonic() < deadline:
            gevent.sleep(0.1)

    def _finish(self, started: Any, stopped_by: str, users: int) -> int:
        from pepharness.suites.fuzz import output

        parts: list[Mapping[str, Any]] = []
        rows: list[dict[str, Any]] = []
        notes: list[str] = [HAR_NOTE]
        for client in sorted(self.planned, key=lambda c: self.planned[c]):
            index = self.planned[client]
            part = self.partials.get(client)
            if part is None:
                notes.append(f"worker {index} sent no figures (lost, or too slow to stop)")
                continue
            parts.append(part)
            rows.append({
                "index": index, "seed": part.get("seed"), "requests": part["requests"],
                "findings": {f["key"]: f["count"] for f in part["findings"]},
            })
        profile = next((p["profile"] for p in parts if p.get("profile")),
                       dict(self.settings.profile or {}))
        base = {
            "api": self.settings.api, "base_url": self.settings.base_url,
            "seed": self.settings.seed, "mode": self.settings.mode, "profile": profile,
            "started": started.isoformat(timespec="seconds"), "stopped_by": stopped_by,
            "workers": rows, "users": users,
        }
        summary, document, entries = output.merge(parts, base, self.settings.latency_budget_ms)
        summary["notes"] = notes + list(summary["notes"])
        output.write(self.args.out, summary, document, entries)
        for row in rows:
            found = ", ".join(f"{key} x{count}" for key, count in row["findings"].items())
            self.say(f"worker {row['index']}: {row['requests']:,} requests, "
                     f"{len(row['findings'])} finding(s){': ' + found if found else ''}")
        findings = summary["findings"]
        self.say(f"{summary['requests']:,} requests in {summary['duration_seconds']:.1f} s "
                 f"({summary['rate']:,.1f} req/s) from {len(rows)} Locust worker(s), stopped by "
                 f"{stopped_by}: {len(findings)} finding(s); wrote {self.args.out}")
        for finding in findings:
            status = finding["status"] if finding["status"] is not None else "-"
            self.say(f"  {finding['kind']} {status}  {finding['operation']}  x{finding['count']}")
        return EXIT_FINDINGS if findings else EXIT_CLEAN

    def _setup_error(self, message: str) -> int:
        self.say(f"error: {message}")
        return EXIT_SETUP

    # -- messages from the workers -----------------------------------------------------------

    def _on_ready(self, environment: Any, msg: Any, **_: Any) -> None:
        self.planned[msg.node_id] = int(msg.data["index"])
        environment.runner.send_message(PLAN, self.plan, client_id=msg.node_id)

    def _on_partial(self, environment: Any, msg: Any, **_: Any) -> None:
        text = msg.data.get("partial")
        self.partials[msg.node_id] = json.loads(text) if text else _EMPTY_PARTIAL

    def _on_error(self, environment: Any, msg: Any, **_: Any) -> None:
        self.errors.append(f"worker {msg.data.get('index')}: {msg.data.get('message')}")

    def _on_report(self, client_id: str, data: Mapping[str, Any]) -> None:
        if "pepharness" in data:
            self.live[client_id] = data["pepharness"]


_EMPTY_PARTIAL: Mapping[str, Any] = {
    "requests": 0, "duration": 0.0, "statuses": {}, "timeline": [], "latencies": {},
    "failures": {}, "findings": [], "notes": [],
}
