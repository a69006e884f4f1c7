"""Fault injection: rules that delay requests, answer them with a programmed status, body and
headers, or break the answer at the transport (a reset or empty connection, a cut or malformed
body)."""

from __future__ import annotations

import builtins
import json
import math
import random
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
MAX_LATENCY_MS = 120_000
MAX_TIMES = 1_000_000_000
RULE_KEYS = (
    "path", "method", "status", "body", "headers", "fault", "latency_ms", "probability", "times"
)
MAX_HEADERS = 10
MAX_HEADER_NAME_CHARS = 64
MAX_HEADER_VALUE_CHARS = 1000
FORBIDDEN_HEADERS = frozenset({
    # hop-by-hop (RFC 9110 §7.6.1) and the framing the server owns
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "content-length",
})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")

# Transport faults (D101), WireMock's CONNECTION_RESET_BY_PEER, EMPTY_RESPONSE,
# RANDOM_DATA_THEN_CLOSE and MALFORMED_RESPONSE_CHUNK in our own words.
CONNECTION_RESET = "connection_reset"
EMPTY_REPLY = "empty_reply"
TRUNCATED_BODY = "truncated_body"
MALFORMED_BODY = "malformed_body"
TRANSPORT_FAULTS = (CONNECTION_RESET, EMPTY_REPLY, TRUNCATED_BODY, MALFORMED_BODY)
# The faults only the server can do (the connection itself): `environ[TRANSPORT_FAULT]` is the
# server's callable taking one of them for the request being served (mocks/core/server.py).
CONNECTION_FAULTS = (CONNECTION_RESET, EMPTY_REPLY, TRUNCATED_BODY)
TRANSPORT_FAULT = "pepharness.transport_fault"


class FaultRuleError(ValueError):
    """A posted fault rule is malformed; the message says what is wrong."""


@dataclass(frozen=True)
class Fault:
    """What a matching rule does to one request."""

    rule_id: int
    status: int | None
    body: Any
    latency_ms: int
    fault: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class FaultRule:
    """A validated rule; `times` counts down the uses left (None: unlimited)."""

    id: int
    path: str
    method: str | None
    status: int | None
    body: Any
    latency_ms: int
    probability: float
    times: int | None
    fault: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def applies_to(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and fnmatchcase(path, self.path)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "body": self.body,
            "headers": dict(self.headers),
            "fault": self.fault,
            "latency_ms": self.latency_ms,
            "probability": self.probability,
            "times": self.times,
        }


def json_integer(value: object) -> int | None:
    """`value` as JSON Schema's `integer` reads it (D73): an int, or a float with no fraction
    (`5.0`); None for anything else (`null`, booleans, `1.5`, NaN, infinities, strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _integer(rule: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    """`rule[key]` when given (absent: None); `null`, a boolean, a fraction or a number out of
    [low, high] is refused, as the contract's `type: integer` refuses them (D73)."""
    if key not in rule:
        return None
    value = json_integer(rule[key])
    if value is None:
        raise FaultRuleError(f"{key} must be an integer, not {json_text(rule[key])}")
    if not low <= value <= high:
        raise FaultRuleError(f"{key} must be between {low} and {high}, not {value}")
    return value


def json_text(value: Any) -> str:
    """`value` as JSON for a message (`null`, `true`), cut to 40 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _headers(rule: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """`rule["headers"]`: an object of at most MAX_HEADERS header names (RFC 9110 tokens, not
    hop-by-hop nor Content-Length, each once whatever its case) to visible ASCII values."""
    if "headers" not in rule:
        return ()
    headers = rule["headers"]
    if not isinstance(headers, Mapping):
        raise FaultRuleError(
            f"headers must be an object of names to values, not {json_text(headers)}"
        )
    if len(headers) > MAX_HEADERS:
        raise FaultRuleError(f"headers takes at most {MAX_HEADERS} headers, not {len(headers)}")
    seen: set[str] = set()
    parsed = []
    for name, value in headers.items():
        if (
            not isinstance(name, str)
            or len(name) > MAX_HEADER_NAME_CHARS
            or not _TOKEN.fullmatch(name)
        ):
            raise FaultRuleError(
                f"header name {json_text(name)} is not a header name (letters, digits and "
                f"!#$%&'*+-.^_`|~, at most {MAX_HEADER_NAME_CHARS} characters)"
            )
        if name.lower() in FORBIDDEN_HEADERS:
            raise FaultRuleError(
                f"header {name} is not programmable: hop-by-hop and Content-Length headers "
                "belong to the server"
            )
        if name.lower() in seen:
            raise FaultRuleError(f"header {name} is given twice")
        seen.add(name.lower())
        if (
            not isinstance(value, str)
            or len(value) > MAX_HEADER_VALUE_CHARS
            or not _FIELD_VALUE.fullmatch(value)
        ):
            raise FaultRuleError(
                f"header {name}'s value must be a string of visible ASCII characters, spaces "
                f"and tabs, at most {MAX_HEADER_VALUE_CHARS}, not {json_text(value)}"
            )
        parsed.append((name, value.strip()))
    return tuple(parsed)


def parse_rule(rule: object, rule_id: int = 0) -> FaultRule:
    """Validate one rule as posted (a JSON object) into a `FaultRule` numbered `rule_id`."""
    if not isinstance(rule, Mapping):
        raise FaultRuleError(f"a fault rule must be a JSON object, not {type(rule).__name__}")
    unknown = sorted(str(key) for key in rule if key not in RULE_KEYS)
    if unknown:
        raise FaultRuleError(
            f"unknown key(s) {', '.join(unknown)}; a rule takes {', '.join(RULE_KEYS)}"
        )
    path = rule.get("path")
    if not isinstance(path, str) or not path:
        raise FaultRuleError("path is required: a glob matched against the request path")
    method = rule.get("method")
    if "method" in rule:
        if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
            raise FaultRuleError(
                f"method must be one of {', '.join(sorted(HTTP_METHODS))}, not {method!r}"
            )
        method = method.upper()
    status = _integer(rule, "status", 100, 599)
    latency_ms = _integer(rule, "latency_ms", 0, MAX_LATENCY_MS)
    times = _integer(rule, "times", 1, MAX_TIMES)
    body = rule.get("body")
    headers = _headers(rule)
    fault = rule.get("fault")
    if "fault" in rule:
        if not isinstance(fault, str) or fault not in TRANSPORT_FAULTS:
            raise FaultRuleError(
                f"fault must be one of {', '.join(TRANSPORT_FAULTS)}, not {json_text(fault)}"
            )
        if "status" in rule or "body" in rule or "headers" in rule:
            raise FaultRuleError(
                "fault breaks the real answer: it takes no status, no body and no headers"
            )
    if body is not None and status is None:
        raise FaultRuleError("body needs a status to answer with")
    if "headers" in rule and status is None:
        raise FaultRuleError("headers need a status to answer with")
    if status is None and fault is None and not latency_ms:
        raise FaultRuleError("a fault needs a status, a fault, a latency_ms > 0, or some of them")
    probability = rule.get("probability", 1)
    if (
        isinstance(probability, bool)
        or not isinstance(probability, int | float)
        or not 0 <= probability <= 1
    ):
        raise FaultRuleError(f"probability must be a number from 0 to 1, not {probability!r}")
    return FaultRule(
        rule_id, path, method, status, body, latency_ms or 0, float(probability), times, fault,
        headers,
    )


class FaultRegistry:
    """The active rules of one service, matched in the order they were added.

    Probabilities are drawn from the registry's own `random.Random(seed)`, so the same seed
    and the same request sequence fault the same requests. Thread-safe.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._random = random.Random(seed)
        self._rules: builtins.list[FaultRule] = []
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, rule: object) -> FaultRule:
        """Validate and add one rule; returns it with its id."""
        return self.add_all([rule])[0]

    def add_all(self, rules: Sequence[object]) -> builtins.list[FaultRule]:
        """Validate every rule, then add them all (or none, when one is malformed)."""
        with self._lock:
            parsed = []
            for offset, rule in enumerate(rules):
                try:
                    parsed.append(parse_rule(rule, self._next_id + offset))
                except FaultRuleError as error:
                    if len(rules) == 1:
                        raise
                    raise FaultRuleError(f"rule {offset}: {error}") from None
            self._rules.extend(parsed)
            self._next_id += len(parsed)
            return parsed

    def list(self) -> builtins.list[dict[str, Any]]:
        """The active rules as JSON objects, `times` being the uses left."""
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        """No rules, ids from 1 again, and the random source back at its seed."""
        with self._lock:
            self._rules.clear()
            self._next_id = 1
            self._random = random.Random(self.seed)

    def match(self, method: str, path: str) -> Fault | None:
        """The fault for this request, using up one of the rule's `times`; None when none."""
        method = method.upper()
        with self._lock:
            for rule in self._rules:
                if not rule.applies_to(method, path):
                    continue
                if rule.probability < 1 and self._random.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                return Fault(
                    rule.id, rule.status, rule.body, rule.latency_ms, rule.fault, rule.headers
                )
        return None
