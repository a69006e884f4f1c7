"""How the fuzzer sends one planned request: credentials put in, the pace kept, a 429's pause
waited out (or the item put aside), a boundary probe sent as its exact bytes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import requests
from pyrate_limiter import Limiter, Rate
from schemathesis import Case
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from pepharness import __version__
from pepharness.suites import boundaries
from pepharness.suites.fuzz import har
from pepharness.suites.fuzz.findings import (
    CONNECTION_ERROR,
    SERVER_ERROR,
    TIMEOUT,
    Finding,
    excerpt,
    key_of,
)
from pepharness.suites.fuzz.judging import Judge
from pepharness.suites.fuzz.masking import secrets_for
from pepharness.suites.fuzz.plan import Item
from pepharness.suites.http import retry_after_seconds, summarize

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


class Sender(Judge):
    """Sending one request (or boundary probe) of an item."""

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
        # What the curl lines mask: a flow's every token (all real), a generated case's
        # credentials only (its generated values are what reproduces it).
        mask = None if flow else headers
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
                                f"no answer within {self.settings.timeout:g} s", error, mask)
                return None
            except requests.ConnectionError as error:
                self._no_answer(case, item, step, mode, label, auth, started, clock,
                                CONNECTION_ERROR, har.connection_reason(error), error, mask)
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
            self.tally.count(self._second(), "429", label, item.flow, mode)
            with self._lock:
                self._retries[item.index] += 1
                self._paused[label] = max(self._paused.get(label, 0.0), until)
        retries = self._retries[item.index]
        self._judge(case, response, item, step, mode, label, auth, started, retries, mask)
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
        curl = boundaries.curl(self.settings.base_url, probe, secrets_for(
            self.api.secrets, probe.headers, probe.body, fields=True, spared=probe.where))
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
                entry=entry, answer_status=status, excerpt=excerpt(response.content),
            ))


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


class Deferred(Exception):
    """An item's first request waits for a 429's pause: the item goes back in the queue."""

    def __init__(self, until: float) -> None:
        super().__init__(until)
        self.until = until
