"""How the fuzzer judges one answer (or its absence): the conformance checks' schemathesis
checks, the latency budget, a 5xx; each finding with its masked curl line, each exchange in the
tally and the HAR. The base of the runner's classes: it declares the run's state they share."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests
from pyrate_limiter import Limiter
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.core.failures import Failure, FailureGroup

from pepharness.suites import generated
from pepharness.suites.fuzz import har
from pepharness.suites.fuzz.apis import Api
from pepharness.suites.fuzz.boundary import BoundaryPlan
from pepharness.suites.fuzz.findings import (
    SERVER_ERROR,
    SLOW,
    TIMEOUT,
    Finding,
    Findings,
    excerpt,
    key_of,
)
from pepharness.suites.fuzz.masking import secrets_for
from pepharness.suites.fuzz.model import Settings, Tally
from pepharness.suites.fuzz.plan import Item
from pepharness.suites.http import curl_line, summarize


class Judge:
    """Judging and recording one exchange; the run's shared state, set by `Runner`."""

    settings: Settings
    api: Api
    checks: list[CheckFunction]
    boundary: BoundaryPlan | None
    findings: Findings
    tally: Tally
    stop: threading.Event
    on_request: Callable[[str, str, float, int, Exception | None], None] | None
    _pacer: Limiter | None
    _local: threading.local
    _lock: threading.Lock
    _sent: int
    _tickets: int
    _unsent: int
    _retries: Counter[int]
    _paused: dict[str, float]
    _entries: list[dict[str, Any]]
    _notes: list[str]
    _started: float
    _session: Callable[[], requests.Session]  # Sender's: this thread's session

    def _judge(
        self, case: Case[Any], response: Any, item: Item, step: int, mode: str | None,
        label: str, auth: str | None, started: datetime, retries: int,
        mask: Mapping[str, str] | None = None,
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
                curl=self._curl(response.request, mask), entry=entry, answer_status=status,
                excerpt=excerpt(response.content) if kind == SERVER_ERROR else "",
            ))

    def _curl(
        self, request: requests.PreparedRequest, mask: Mapping[str, str] | None
    ) -> str:
        """`request` as a curl line, its tokens as shell variables: the `mask` credentials
        of a generated case, every token header and credential field of a flow's (None)."""
        if mask is None:
            secrets = secrets_for(self.api.secrets, request.headers, request.body, fields=True)
        else:
            secrets = secrets_for(self.api.secrets, mask)
        return curl_line(request, secrets)

    def _no_answer(
        self, case: Case[Any], item: Item, step: int, mode: str | None, label: str,
        auth: str | None, started: datetime, clock: float, kind: str, reason: str,
        error: requests.RequestException, mask: Mapping[str, str] | None = None,
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
            curl=self._curl(prepared, mask), entry=entry,
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
        meta = entry["_pepharness"]
        self.tally.answer(self._second(), label, status, elapsed_ms, failed,
                          meta.get("flow"), meta.get("mode"))
        if self.settings.har == "all" or (self.settings.har == "findings" and failed):
            with self._lock:
                self._entries.append(entry)

    def _second(self) -> int:
        return int(time.monotonic() - self._started)


def _sent_auth(request: requests.PreparedRequest, auth: str) -> bool:
    name = "authorization" if auth in ("basic", "bearer") else auth
    return any(header.lower() == name for header in request.headers)


def _status_of(kind: str, status: int) -> int | None:
    """The status a finding is keyed by: none for a slow answer, whose cause is its time (a
    latency spike is one finding, whatever each slow answer's status)."""
    return None if kind == SLOW else status
