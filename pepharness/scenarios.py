"""Scenarios for `pepharness run --scenario NAME|FILE`: the mocks misbehave on schedule (issue 14).

A scenario is a YAML document: a mapping with an optional `description` and a list of `steps`
(or the list of steps alone). Each step is applied through the admin API of a served mock at
`at` seconds after CMD started (D117):

    description: the mock clocks jump past the 20-minute token lifetime
    steps:
      - at: 2                       # seconds since CMD started (a number >= 0)
        action: clock               # clock | faults | rate-limit | clear
        mock: all                   # sinatra | operator | pep | all (every mock served)
        advance_seconds: 1260       # clock: advance_seconds or set (RFC 3339)
      - at: 3
        action: faults              # faults: rules, as POST /__admin/faults takes them
        mock: sinatra
        rules: [{path: "/games/*", status: 503, probability: 0.5, headers: {Retry-After: "1"}}]
      - at: 4
        action: rate-limit          # rate-limit: limit and/or period_seconds
        mock: pep
        limit: 2
        optional: true              # a 404 (the mock has no such route) is skipped, not failed
      - at: 6
        action: clear               # clear: DELETE /__admin/faults
        mock: all

The built-ins (`BUILTINS`) are written in this format; `--list-scenarios` names them.
The applier (`Applier`) records every step as applied: time, mock, action, answer status.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pepharness.mocks.core.faults import FaultRuleError, parse_rule

ACTIONS = ("clock", "faults", "rate-limit", "clear")
MOCK_NAMES = ("sinatra", "operator", "pep", "all")
MAX_AT = 24 * 3600
PAYLOAD_KEYS: dict[str, tuple[str, ...]] = {
    "clock": ("advance_seconds", "set"),
    "faults": ("rules",),
    "rate-limit": ("limit", "period_seconds"),
    "clear": (),
}
STEP_KEYS = ("at", "action", "mock", "optional", "note")
PLATFORM_PATHS = ("/rx-api/*", "/api/players-data/*", "/api/data-fetch/*")
"""The PEP Platform gateway's paths but its OAuth token endpoint."""
SINATRA_PATHS = ("/1.0/*", "/vendors/*", "/games/*", "/transactions/*")


class ScenarioError(ValueError):
    """A scenario that cannot be applied; the message is one line naming the file and step."""


@dataclass(frozen=True)
class Step:
    at: float
    action: str
    mock: str
    payload: dict[str, Any]
    optional: bool = False
    note: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]


def _text(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _step(raw: object, where: str) -> Step:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: a step must be a mapping, not {type(raw).__name__}")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ScenarioError(
            f"{where}: action must be one of {', '.join(ACTIONS)}, not {_text(action)}"
        )
    allowed = STEP_KEYS + PAYLOAD_KEYS[action]
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"a {action} step takes {', '.join(allowed)}"
        )
    at = raw.get("at")
    if (
        isinstance(at, bool)
        or not isinstance(at, int | float)
        or not math.isfinite(at)
        or not 0 <= at <= MAX_AT
    ):
        raise ScenarioError(
            f"{where}: at must be a number of seconds from 0 to {MAX_AT}, not {_text(at)}"
        )
    mock = raw.get("mock")
    if mock not in MOCK_NAMES:
        raise ScenarioError(
            f"{where}: mock must be one of {', '.join(MOCK_NAMES)}, not {_text(mock)}"
        )
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        raise ScenarioError(f"{where}: optional must be true or false, not {_text(optional)}")
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise ScenarioError(f"{where}: note must be a string, not {_text(note)}")
    payload = {k: raw[k] for k in PAYLOAD_KEYS[action] if k in raw}
    _check_payload(action, payload, where)
    return Step(float(at), action, mock, payload, optional, note)


def _check_payload(action: str, payload: dict[str, Any], where: str) -> None:
    if action == "clock":
        if len(payload) != 1:
            raise ScenarioError(
                f"{where}: a clock step takes exactly one of advance_seconds or set"
            )
        if "advance_seconds" in payload:
            value = payload["advance_seconds"]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ScenarioError(
                    f"{where}: advance_seconds must be a number, not {_text(value)}"
                )
        elif not isinstance(payload["set"], str):
            raise ScenarioError(
                f"{where}: set must be an RFC 3339 date-time string, not {_text(payload['set'])}"
            )
    elif action == "faults":
        rules = payload.get("rules")
        if not isinstance(rules, list) or not rules:
            raise ScenarioError(
                f"{where}: a faults step takes rules, a non-empty list of fault rules"
            )
        for index, rule in enumerate(rules):
            try:
                parse_rule(rule)
            except FaultRuleError as error:
                raise ScenarioError(f"{where}: rule {index}: {error}") from None
    elif action == "rate-limit":
        if not payload:
            raise ScenarioError(f"{where}: a rate-limit step takes limit, period_seconds or both")
        limit = payload.get("limit", 1)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ScenarioError(f"{where}: limit must be an integer >= 0, not {_text(limit)}")
        period = payload.get("period_seconds", 1)
        if isinstance(period, bool) or not isinstance(period, int | float) or not period > 0:
            raise ScenarioError(
                f"{where}: period_seconds must be a number > 0, not {_text(period)}"
            )


def parse(text: str, name: str) -> Scenario:
    """The scenario in YAML `text`; `name` (a file name or a built-in's) prefixes every error."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise ScenarioError(f"{name}: not valid YAML{where}: {problem}") from None
    description = ""
    if isinstance(document, Mapping):
        unknown = sorted(str(k) for k in document if k not in ("description", "steps"))
        if unknown:
            raise ScenarioError(
                f"{name}: unknown key(s) {', '.join(unknown)}; a scenario takes description, steps"
            )
        description = document.get("description") or ""
        if not isinstance(description, str):
            raise ScenarioError(f"{name}: description must be a string")
        document = document.get("steps")
    if not isinstance(document, list) or not document:
        raise ScenarioError(
            f"{name}: a scenario is a non-empty list of steps (or a mapping with steps:)"
        )
    steps = [_step(raw, f"{name}: step {index + 1}") for index, raw in enumerate(document)]
    return Scenario(name, " ".join(description.split()), tuple(sorted(steps, key=lambda s: s.at)))


def _faults_on(paths: Sequence[str], **rule: Any) -> list[dict[str, Any]]:
    return [{"path": path, **rule} for path in paths]


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a copyable file spells every rule out, no &anchors


FLAKY_RETRY_AFTER = "1"
"""The Retry-After (seconds) of the `flaky` built-in's 503s (D149)."""


def _flaky_step(mock: str, paths: Sequence[str]) -> dict[str, Any]:
    """At 0.5 s, 500, 502 and 503 at 0.07 each on `paths` of `mock` (the `flaky` built-in);
    the 503s say `Retry-After: 1`."""
    return {
        "at": 0.5,
        "action": "faults",
        "mock": mock,
        "rules": [
            rule
            for status in (500, 502, 503)
            for rule in _faults_on(
                paths,
                status=status,
                probability=0.07,
                body={"message": "injected by the flaky scenario"},
                **({"headers": {"Retry-After": FLAKY_RETRY_AFTER}} if status == 503 else {}),
            )
        ],
    }


def _dump(description: str, steps: list[dict[str, Any]]) -> str:
    document = {"description": description, "steps": steps}
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)


BUILTINS: dict[str, str] = {
    "token-expiry": _dump(
        "at 2 s every mock clock advances 21 minutes: tokens held pass their 20-minute lifetime",
        [{"at": 2, "action": "clock", "mock": "all", "advance_seconds": 1260}],
    ),
    "rate-limit": _dump(
        "at 1 s a tight rate limit (2 a second) on Sinatra's paginated history and PEP data fetch",
        [
            {"at": 1, "action": "rate-limit", "mock": "sinatra", "limit": 2, "period_seconds": 1},
            {"at": 1, "action": "rate-limit", "mock": "pep", "limit": 2, "period_seconds": 1},
        ],
    ),
    "flaky": _dump(
        "from 0.5 s about 20% of API requests answer 500, 502 or 503 (the 503s with Retry-After)",
        [_flaky_step("sinatra", SINATRA_PATHS), _flaky_step("pep", PLATFORM_PATHS)],
    ),
    "slow": _dump(
        "from 0.5 s one API request in ten takes 1.5 s longer (above common client timeouts)",
        [
            {
                "at": 0.5,
                "action": "faults",
                "mock": "all",
                "rules": [{"path": "*", "latency_ms": 1500, "probability": 0.1}],
            }
        ],
    ),
    "outage": _dump(
        "from 1 s to 4 s every connection to every mock is reset, then service resumes",
        [
            {
                "at": 1,
                "action": "faults",
                "mock": "all",
                "rules": [{"path": "*", "fault": "connection_reset"}],
            },
            {"at": 4, "action": "clear", "mock": "all"},
        ],
    ),
    "token-revoked": _dump(
        "at 2 s the PEP Platform token stops working: its next call on each Platform path is 401",
        [
            {
                "at": 2,
                "action": "faults",
                "mock": "pep",
                "note": "a 401 fault per Platform path: the PEP has no token revocation route",
                "rules": _faults_on(
                    PLATFORM_PATHS,
                    status=401,
                    times=1,
                    body={
                        "error": "invalid_token",
                        "error_description": "the access token was revoked",
                    },
                ),
            }
        ],
    ),
}
"""Every built-in scenario, in the YAML format a `--scenario FILE` user can copy."""


def builtin(name: str) -> Scenario:
    return parse(BUILTINS[name], name)


def load(reference: str) -> Scenario:
    """A built-in by name, else the YAML file at `reference`; ScenarioError when neither."""
    if reference in BUILTINS:
        return builtin(reference)
    path = Path(reference)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            f"{reference}: no such built-in scenario ({', '.join(BUILTINS)}) nor file"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(
            f"{reference}: cannot read it: {getattr(error, 'strerror', None) or error}"
        ) from None
    return parse(text, reference)


def describe() -> list[tuple[str, str]]:
    return [(name, builtin(name).description) for name in BUILTINS]


@dataclass
class Applier:
    """Applies the steps of `scenarios` at their times through the served mocks' admin APIs."""

    scenarios: Sequence[Scenario]
    urls: Mapping[str, str]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="pepharness-scenario", daemon=True)
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        """Stop applying (steps still to come are not applied); the timeline so far."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.timeline

    def _run(self) -> None:
        pending = self._pending()
        for index, (step, name) in enumerate(pending):
            if self._stop.wait(max(0.0, self._started + step.at - time.monotonic())):
                # CMD ended first: the steps still to come are shown, not applied.
                for late, late_name in pending[index:]:
                    self.timeline.append({
                        "at": late.at, "applied_after_seconds": None, "scenario": late_name,
                        "mock": late.mock, "action": late.action, "status": None,
                        "outcome": "not_reached", "note": "the command ended before this step",
                    })
                return
            for mock in self.urls if step.mock == "all" else [step.mock]:
                self.timeline.append(self._apply(step, name, mock))

    def _pending(self) -> list[tuple[Step, str]]:
        return sorted(
            ((step, scenario.name) for scenario in self.scenarios for step in scenario.steps),
            key=lambda item: item[0].at,
        )

    def _apply(self, step: Step, scenario: str, mock: str) -> dict[str, Any]:
        record: dict[str, Any] = {
            "at": step.at,
            "applied_after_seconds": round(time.monotonic() - self._started, 3),
            "scenario": scenario,
            "mock": mock,
            "action": step.action,
        }
        url = self.urls.get(mock)
        if url is None:
            return {**record, "status": None, "outcome": "skipped", "note": f"{mock} is not served"}
        method, path, body = _request(step)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{url}/__admin/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError as error:
            return {**record, "status": None, "outcome": "failed", "note": str(error)}
        if 200 <= status < 300:
            outcome = "applied"
        elif status == 404 and step.optional:
            outcome = "skipped"
        else:
            outcome = "failed"
        if step.note:
            record["note"] = step.note
        return {**record, "status": status, "outcome": outcome}


def _request(step: Step) -> tuple[str, str, Any]:
    if step.action == "clock":
        return "POST", "clock", step.payload
    if step.action == "faults":
        return "POST", "faults", step.payload["rules"]
    if step.action == "rate-limit":
        return "POST", "rate-limit", step.payload
    return "DELETE", "faults", None
