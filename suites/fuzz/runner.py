"""One fuzz run on this machine: worker threads take planned items in order, send them at the
asked rate, wait out the target's 429s, judge every answer with the conformance checks'
schemathesis checks and record findings, figures and the HAR."""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

import requests
from pyrate_limiter import Limiter, Rate
from schemathesis import Case
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from pepharness import __version__
from pepharness.suites import boundaries, generated
from pepharness.suites.fuzz import har
from pepharness.suites.fuzz.apis import (
    FLOW_GENERATED,
    Api,
    FlowContext,
    FuzzSetupError,
)
from pepharness.suites.fuzz.boundary import FLOW_BOUNDARY, BoundaryPlan
from pepharness.suites.fuzz.findings import (
    CONNECTION_ERROR,
    SERVER_ERROR,
    SLOW,
    TIMEOUT,
    Finding,
    Findings,
    key_of,
)
from pepharness.suites.fuzz.model import (
    Result,
    Settings,
    Snapshot,
    Tally,
)
from pepharness.suites.fuzz.plan import NOTHING_TO_BREAK, Item, Planner
from pepharness.suites.http import curl_line, retry_after_seconds, summarize

MAX_429_RETRIES = 10
MAX_429_WAIT_SECONDS = 60.0


def pacer(rate: float | None) -> Limiter | None:
    """At most `rate` requests a second, spread over each second (pyrate-limiter's sliding
    window, waited on), None for no limit."""
    if rate is None:
        return None
    if rate >= 10:
        return Limiter(Rate(max(1, round(rate / 10)), 100), buffer_ms=1)
    return Limiter(Rate(1, max(1, round(1000 / rate))), buffer_ms=1)


class Runner:
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

    def _ticket(self) -> bool:
        with self._lock:
            limit = self.settings.requests
            if limit is not None and self._tickets >= limit:
                return False
            self._tickets += 1
            return True

    def _untake(self) -> None:
        with self._lock:
            self._tickets -= 1
            self._unsent += 1

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

    # -- one request -----------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _pause_of(self, label: str) -> float:
        with self._lock:
            return self._paused.get(label, 0.0)

    def _wait(self, label: str) -> bool:
        """Wait out a 429's pause of `label`; False when the run stops meanwhile."""
        while True:
            with self._lock:
                until = self._paused.get(label, 0.0)
            left = until - time.monotonic()
            if left <= 0:
                return not self.stop.is_set()
            if self.stop.wait(min(left, 0.2)):
                return False

    def _send(
        self,
        case: Case[Any],
        item: Item,
        step: int,
        mode: str | None,
        *,
        ticketed: bool,
        flow: bool = False,
    ) -> Any:
        if not ticketed and not self._ticket():
            return None
        label = f"{case.method.upper()} {case.operation.path}"
        auth, headers = self.api.credentials(case)
        if not flow and _negative_headers(case):
            # The generated headers are what breaks the contract (credentials among them):
            # real ones in their place would make the case valid, and its refusal a finding.
            headers = {}
        try:
            # Sent as serialized here rather than through Case.call, whose revalidation of a
            # case edited after generation made the credentials of some cases come and go.
            sent = case.as_transport_kwargs(base_url=self.settings.base_url)
        except Exception:  # a generated case that cannot be serialized: nothing to send
            if step == 0:
                self._untake()
            return None
        sent["headers"] = _with_credentials(sent.get("headers") or {}, headers, keep=flow)
        session = self._session()
        while True:
            until = self._pause_of(label)
            if until > time.monotonic():
                if step == 0:
                    # Put the item aside and take another: its operation waits, not the run.
                    raise Deferred(until)
                if not self._wait(label):
                    return None
            if self._pacer is not None:
                self._pacer.try_acquire("fuzz")
            if self.stop.is_set():
                return None
            started = har.now()
            clock = time.perf_counter()
            try:
                response = session.request(
                    **sent, timeout=self.settings.timeout, allow_redirects=False
                )
            except requests.Timeout as error:
                self._no_answer(case, item, step, mode, label, auth, started, clock, TIMEOUT,
                                f"no answer within {self.settings.timeout:g} s", error)
                return None
            except requests.ConnectionError as error:
                self._no_answer(case, item, step, mode, label, auth, started, clock,
                                CONNECTION_ERROR, har.connection_reason(error), error)
                return None
            except Exception:
                # Nothing went out (a generated header requests refuses to send, a body that
                # cannot be serialized): not the target's doing.
                if step == 0:
                    self._untake()
                return None
            with self._lock:
                self._sent += 1
            retries = self._retries[item.index]
            if response.status_code != 429 or retries >= MAX_429_RETRIES:
                break
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            until = time.monotonic() + min(wait if wait is not None else 1.0, MAX_429_WAIT_SECONDS)
            self.tally.count(self._second(), "429")
            with self._lock:
                self._retries[item.index] += 1
                self._paused[label] = max(self._paused.get(label, 0.0), until)
        retries = self._retries[item.index]
        self._judge(case, response, item, step, mode, label, auth, started, retries)
        return response

    def _probe(self, item: Item) -> None:
        """Send the item's boundary probe as its exact bytes; a 5xx or no answer is a
        finding with a curl line that sends the same bytes (a 429 is waited out by the next
        probe of the operation, not retried: the probes come round again)."""
        probe = self.boundary.probe(item.number) if self.boundary is not None else None
        if probe is None:
            self._untake()
            return
        label = probe.operation
        if self._pause_of(label) > time.monotonic():
            raise Deferred(self._pause_of(label))
        if self._pacer is not None:
            self._pacer.try_acquire("fuzz")
        if self.stop.is_set():
            return
        started = har.now()
        clock = time.perf_counter()
        url = self.settings.base_url.rstrip("/") + probe.target
        curl = boundaries.curl(self.settings.base_url, probe, self.api.secrets)
        try:
            response = self._session().request(
                probe.method, url, data=probe.body, headers=dict(probe.headers),
                timeout=self.settings.timeout, allow_redirects=False,
            )
        except requests.RequestException as error:
            elapsed_ms = (time.perf_counter() - clock) * 1000
            kind = TIMEOUT if isinstance(error, requests.Timeout) else CONNECTION_ERROR
            prepared = requests.Request(probe.method, url, data=probe.body).prepare()
            meta = {**self._meta(item, 0, label, None, 0, None, [f"{label}|{kind}|-"]),
                    "probe": probe.label}
            entry = har.entry(started, elapsed_ms, har.request_json(prepared),
                              har.no_response(f"{kind}: {error}"), meta)
            self._record(label, "error", elapsed_ms, entry, True)
            self.findings.add(Finding(
                operation=label, kind=kind, status=None,
                title=f"No answer to a boundary value: {probe.label}", message=str(error)[:300],
                first_index=item.index,
                first_seconds=round(time.monotonic() - self._started, 3), curl=curl,
                entry=entry,
            ))
            return
        with self._lock:
            self._sent += 1
        status = response.status_code
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            with self._lock:
                self._paused[label] = max(self._paused.get(label, 0.0), time.monotonic() + min(
                    wait if wait is not None else 1.0, MAX_429_WAIT_SECONDS))
        elapsed_ms = response.elapsed.total_seconds() * 1000
        failed = status >= 500
        meta = {**self._meta(item, 0, label, None, 0, None,
                             [key_of(label, SERVER_ERROR, status)] if failed else []),
                "probe": probe.label}
        entry = har.entry(started, elapsed_ms, har.request_json(_latin1(response.request)),
                          har.response_json(status, response.headers, response.content), meta)
        self._record(label, str(status), elapsed_ms, entry, failed)
        if self.on_request is not None:
            self.on_request(probe.method, label, elapsed_ms, len(response.content), None)
        if failed:
            self.findings.add(Finding(
                operation=label, kind=SERVER_ERROR, status=status,
                title=f"Server error on a boundary value: {probe.label}",
                message=summarize(response), first_index=item.index,
                first_seconds=round(time.monotonic() - self._started, 3), curl=curl,
                entry=entry,
            ))

    def _judge(
        self, case: Case[Any], response: Any, item: Item, step: int, mode: str | None,
        label: str, auth: str | None, started: datetime, retries: int,
    ) -> None:
        elapsed_ms = response.elapsed.total_seconds() * 1000
        found: list[tuple[str, str, str]] = []
        status = response.status_code
        if status >= 500:
            found.append((SERVER_ERROR, "Server error", summarize(response)))
        else:
            skipped = self.api.skip_checks(case)
            checks = [c for c in self.checks if c.__name__ not in skipped]
            try:
                case.validate_response(
                    response, checks=checks,
                    transport_kwargs={"base_url": self.settings.base_url,
                                      "session": self._session()},
                )
            except FailureGroup as group:
                for failure in group.exceptions:
                    if isinstance(failure, Failure):
                        kind = generated.rule_of(failure, self.api.rules).name.removeprefix(
                            "check_"
                        )
                        found.append((kind, failure.title, failure.message.strip()[:2000]))
            except Exception as error:  # a check that could not judge this answer
                with self._lock:
                    self._notes.append(f"{label}: a check failed to run: {error}"[:300])
        if elapsed_ms > self.settings.latency_budget_ms:
            found.append((SLOW, "Over the latency budget",
                          f"{status} answered in {elapsed_ms:,.0f} ms; the budget is "
                          f"{self.settings.latency_budget_ms:,.0f} ms"))
        if auth is not None and not _sent_auth(response.request, auth):
            auth = None  # a negative case whose point is the credentials' absence
        meta = self._meta(item, step, label, mode, retries, auth, [
            key_of(label, kind, _status_of(kind, status)) for kind, _, _ in found
        ])
        entry = har.entry(
            started, elapsed_ms, har.request_json(response.request),
            har.response_json(status, response.headers, response.content),
            meta,
        )
        self._record(label, str(status), elapsed_ms, entry, bool(found))
        if self.on_request is not None:
            self.on_request(case.method.upper(), label, elapsed_ms, len(response.content), None)
        for kind, title, message in found:
            self.findings.add(Finding(
                operation=label, kind=kind, status=_status_of(kind, status), title=title,
                message=message, first_index=item.index,
                first_seconds=round(time.monotonic() - self._started, 3),
                curl=self._curl(response.request), entry=entry,
            ))

    def _curl(self, request: requests.PreparedRequest) -> str:
        return curl_line(request, self.api.secrets)

    def _no_answer(
        self, case: Case[Any], item: Item, step: int, mode: str | None, label: str,
        auth: str | None, started: datetime, clock: float, kind: str, reason: str,
        error: requests.RequestException,
    ) -> None:
        elapsed_ms = (time.perf_counter() - clock) * 1000
        prepared = error.request if isinstance(error.request, requests.PreparedRequest) else None
        if prepared is None:
            prepared = requests.Request(case.method, self.settings.base_url + case.formatted_path
                                        ).prepare()
        meta = self._meta(item, step, label, mode, 0, auth, [f"{label}|{kind}|-"])
        entry = har.entry(started, elapsed_ms, har.request_json(prepared),
                          har.no_response(f"{kind}: {reason}"), meta)
        self._record(label, "error", elapsed_ms, entry, True)
        if self.on_request is not None:
            self.on_request(case.method.upper(), label, elapsed_ms, 0, error)
        self.findings.add(Finding(
            operation=label, kind=kind, status=None,
            title="Timeout" if kind == TIMEOUT else "Connection error", message=reason,
            first_index=item.index, first_seconds=round(time.monotonic() - self._started, 3),
            curl=self._curl(prepared), entry=entry,
        ))

    @staticmethod
    def _meta(
        item: Item, step: int, label: str, mode: str | None, retries: int, auth: str | None,
        keys: list[str],
    ) -> dict[str, Any]:
        return {"index": item.index, "step": step, "operation": label, "flow": item.flow,
                "mode": mode, "retries": retries, "auth": auth, "findings": keys}

    def _record(
        self, label: str, status: str, elapsed_ms: float, entry: dict[str, Any], failed: bool
    ) -> None:
        self.tally.answer(self._second(), label, status, elapsed_ms, failed)
        if self.settings.har == "all" or (self.settings.har == "findings" and failed):
            with self._lock:
                self._entries.append(entry)

    def _second(self) -> int:
        return int(time.monotonic() - self._started)

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


USER_AGENT = f"pepharness-fuzz/{__version__}"


def _with_credentials(
    generated: Mapping[str, Any], credentials: Mapping[str, str], *, keep: bool
) -> dict[str, Any]:
    """The headers to send: the case's (without schemathesis' random test-case id, which
    would make no two runs alike), the credentials in place of any of the same name (`keep`:
    a flow's own header of that name stays)."""
    headers = {k: v for k, v in generated.items() if k.lower() != "x-schemathesis-testcaseid"}
    headers["User-Agent"] = USER_AGENT
    for name, value in credentials.items():
        same = [k for k in headers if k.lower() == name.lower()]
        if keep and same:
            continue
        for key in same:
            del headers[key]
        headers[name] = value
    return headers


def _latin1(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """`request` with its byte header values as the latin-1 text http.client sends them as
    (the HAR holds text; a replay of that text sends the same bytes)."""
    copied = request.copy()
    for name, value in list(copied.headers.items()):
        if isinstance(value, bytes):
            copied.headers[name] = value.decode("latin-1")
    return copied


def _negative_headers(case: Case[Any]) -> bool:
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(ParameterLocation.HEADER)
    return component is not None and component.mode == GenerationMode.NEGATIVE


def _sent_auth(request: requests.PreparedRequest, auth: str) -> bool:
    name = "authorization" if auth in ("basic", "bearer") else auth
    return any(header.lower() == name for header in request.headers)


def _status_of(kind: str, status: int) -> int | None:
    """The status a finding is keyed by: none for a slow answer, whose cause is its time (a
    latency spike is one finding, whatever each slow answer's status)."""
    return None if kind == SLOW else status


class Deferred(Exception):
    """An item's first request waits for a 429's pause: the item goes back in the queue."""

    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until

