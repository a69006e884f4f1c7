"""One fuzz run on this machine: worker threads take planned items in order, send them at the
asked rate, wait out the target's 429s, judge every answer with the conformance checks'
schemathesis checks and record findings, figures and the HAR."""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation

from pepharness.suites.fuzz import har
from pepharness.suites.fuzz.apis import (
    FLOW_GENERATED,
    Api,
    FlowContext,
    FuzzSetupError,
)
from pepharness.suites.fuzz.boundary import FLOW_BOUNDARY, BoundaryPlan
from pepharness.suites.fuzz.findings import Findings
from pepharness.suites.fuzz.model import Result, Settings, Snapshot, Tally
from pepharness.suites.fuzz.plan import NOTHING_TO_BREAK, Item, Planner
from pepharness.suites.fuzz.sending import Deferred, Sender, pacer


class Runner(Sender):
    """The run: worker threads (or Locust users) taking planned items in order."""

    def __init__(
        self,
        settings: Settings,
        api: Api,
        *,
        progress: Callable[[Snapshot], None] | None = None,
        progress_every: float = 1.0,
    ) -> None:
        profile = dict(settings.profile or api.profile)
        self.settings = replace(settings, profile=profile)
        self.api = api
        self.schema = api.schema(settings.suite)
        self.operations: dict[str, APIOperation[Any, Any, Any, Any]] = {}
        for result in self.schema.get_all_operations():
            if isinstance(result, Err):
                raise FuzzSetupError(f"the contract has an operation schemathesis cannot read: "
                                     f"{result.err()}")
            operation = result.ok()
            self.operations[str(operation.definition.raw.get("operationId"))] = operation
        self.planner = Planner(
            self.operations, profile, seed=settings.seed, mode=settings.mode,
            variety=settings.variety, exclude=api.exclude,
        )
        self.checks = api.checks()
        self.boundary = (
            BoundaryPlan(api.contract, api.boundary) if api.boundary is not None else None
        )
        self.progress = progress
        self.progress_every = progress_every
        self.findings = Findings()
        self.stop = threading.Event()
        self._pacer = pacer(settings.rate)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._plan_lock = threading.Lock()
        self._sent = 0
        self._tickets = 0
        self._deferred: list[tuple[float, int, Item]] = []
        self._retries: Counter[int] = Counter()
        self.tally = Tally()
        self._entries: list[dict[str, Any]] = []
        self._paused: dict[str, float] = {}
        self._waiting = 0.0
        self._setup_error: str | None = None
        self._notes: list[str] = []
        self._flow_errors: Counter[str] = Counter()
        self._unsent = 0
        self._started = time.monotonic()
        self._started_at = har.now()
        self.on_request: Callable[[str, str, float, int, Exception | None], None] | None = None
        """Called after each exchange with (method, operation, elapsed ms, response bytes,
        error): Locust's request statistics hang here."""

    # -- the run ---------------------------------------------------------------------------

    generating: Callable[[int, int], None] | None = None
    """Told (streams generated, streams) while the cases are generated, before the run."""

    def start_clock(self) -> None:
        self._started_at = har.now()
        self._started = time.monotonic()

    def run(self) -> Result:
        """Run on `concurrency` threads until the duration, the request count, Ctrl-C or the
        end of what there is to send."""
        try:
            self.planner.prepare(self.generating)
        except KeyboardInterrupt:
            self.start_clock()
            return self.result("interrupt")
        self.start_clock()
        workers = [
            threading.Thread(target=self._work, name=f"fuzz-{n}", daemon=True)
            for n in range(max(1, self.settings.concurrency))
        ]
        for worker in workers:
            worker.start()
        stopped_by = "requests"
        deadline = (
            self._started + self.settings.duration if self.settings.duration else math.inf
        )
        next_report = self._started + self.progress_every
        try:
            while any(w.is_alive() for w in workers):
                now = time.monotonic()
                if now >= deadline:
                    stopped_by = "duration"
                    self.stop.set()
                    break
                if self.progress is not None and now >= next_report:
                    self.progress(self.snapshot())
                    next_report = now + self.progress_every
                time.sleep(min(0.05, max(0.0, deadline - now)))
        except KeyboardInterrupt:
            stopped_by = "interrupt"
            self.stop.set()
        for worker in workers:
            # Each worker ends after its request in flight: at most the timeout.
            worker.join(self.settings.timeout + 5)
        if self._setup_error is not None:
            raise FuzzSetupError(self._setup_error)
        if self.progress is not None:
            self.progress(self.snapshot())
        return self.result(stopped_by)

    def result(self, stopped_by: str) -> Result:
        duration = time.monotonic() - self._started
        with self._lock:
            return Result(
                settings=self.settings,
                started=self._started_at,
                duration=duration,
                requests=self._sent,
                stopped_by=stopped_by,
                statuses=self.tally.statuses_now(),
                timeline=self.tally.timeline_json(duration),
                operations=self.tally.operations_json(),
                findings=self.findings,
                entries=list(self._entries),
                notes=self._notes_json(),
                coverage=self.tally.coverage_json(),
                split=self.tally.split_json(),
            )

    def latencies(self) -> dict[str, list[float]]:
        """Every answer's time in ms, by operation (a cluster's master merges them)."""
        return self.tally.latencies_now()

    def snapshot(self) -> Snapshot:
        with self._lock:
            elapsed = time.monotonic() - self._started
            return Snapshot(
                elapsed=elapsed,
                requests=self._sent,
                rate=self._sent / elapsed if elapsed > 0 else 0.0,
                statuses=self.tally.statuses_now(),
                findings=len(self.findings),
                waiting=max(0.0, max(self._paused.values(), default=0.0) - time.monotonic()),
            )

    def _work(self) -> None:
        try:
            while self.run_one():
                pass
        except FuzzSetupError as error:
            self._setup_error = str(error)
            self.stop.set()

    def run_one(self) -> bool:
        """Send the next item (a deferred one whose pause is over first); False once there is
        nothing left to send or the run stops. What a worker thread, or a Locust user, loops
        on."""
        if self.stop.is_set():
            return False
        item = self._take_deferred()
        if item is None:
            with self._plan_lock:
                # Each item takes its ticket in plan order: with --requests, the items sent
                # do not depend on the threads' timing.
                item = self.planner.next() if self._ticket() else None
        if item is None:
            if not self._deferred:
                return False
            self.stop.wait(0.05)
            return True
        try:
            self._execute(item)
        except Deferred as deferred:
            with self._lock:
                heapq.heappush(self._deferred, (deferred.until, item.index, item))
        except FuzzSetupError:
            raise
        except Exception as error:  # the fuzzer's own fault: say so, keep going
            with self._lock:
                self._notes.append(
                    f"item {item.index} ({item.flow}): {type(error).__name__}: {error}"[:300]
                )
        return True

    def _take_deferred(self) -> Item | None:
        """The first item put aside for a 429 whose pause is over."""
        with self._lock:
            if self._deferred and self._deferred[0][0] <= time.monotonic():
                return heapq.heappop(self._deferred)[2]
        return None

    def _execute(self, item: Item) -> None:
        context = FlowContext(self.operations, item.index, self.settings.suite, self.settings.seed)
        if item.flow == FLOW_GENERATED:
            case, mode = self.planner.case(item)
            if case is None:
                self._untake()
                return
            self.api.prepare(case, context)
            self._send(case, item, 0, mode, ticketed=True)
            return
        if item.flow == FLOW_BOUNDARY:
            self._probe(item)
            return
        flow = self.api.flows[item.flow](context, item.rng())
        step = 0
        try:
            case = next(flow)
            while True:
                answer = self._send(case, item, step, None, ticketed=step == 0, flow=True)
                if self.stop.is_set() or (answer is None and step > 0):
                    return
                step += 1
                case = flow.send(answer)
        except StopIteration:
            return
        except (FuzzSetupError, Deferred):
            raise
        except Exception as error:  # a flow that cannot go on with the answer it got
            self._flow_errors[f"{item.flow}: {type(error).__name__}: {error}"[:200]] += 1

    def _notes_json(self) -> list[str]:
        notes = [
            f"{name}: nothing in it to break; its positive cases go instead"
            if error.startswith(("Unsatisfiable", NOTHING_TO_BREAK))
            and name.endswith("(negative)")
            else f"{name}: no generated case ({error})"
            for name, error in self.planner.generation_errors().items()
        ]
        notes += [f"flow stopped early {count}x: {what}"
                  for what, count in self._flow_errors.most_common(10)]
        if self._deferred:
            notes.append(f"{len(self._deferred)} item(s) waiting out a 429 when the run ended "
                         "were not sent")
        if self._unsent:
            notes.append(f"{self._unsent} planned request(s) not sent (none to generate, or "
                         "refused by the HTTP client before sending)")
        return notes + sorted(set(self._notes))[:20]
