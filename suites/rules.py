"""Named conformance rules, their levels, and the failure a check raises when one is broken."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    import pytest

F = TypeVar("F", bound=Callable[..., Any])

MARKER = "pepharness_rules"
EXCLUSIVE = "pepharness_exclusive"
NOT_VERIFIED = "NOT VERIFIED"


class Level(StrEnum):
    """DESIGN.md's conformance levels: the seeds or an RFC require it, best practice, or a note."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    INFO = "INFO"


@dataclass(frozen=True)
class Rule:
    """One named rule: `check_token_lifetime_is_20_minutes`, its level, where it comes from."""

    name: str
    level: Level
    source: str
    summary: str
    api: str = ""
    exclusive: bool = False
    """Its check moves the target's clock or exhausts its rate limit: it runs alone, last."""

    def __post_init__(self) -> None:
        if not self.name.startswith("check_"):
            raise ValueError(f"a rule's name starts with check_: {self.name!r}")


class RuleCatalog:
    """Every rule of one suite by name; a name is registered once."""

    def __init__(self, api: str) -> None:
        self.api = api
        self._rules: dict[str, Rule] = {}

    def add(
        self, name: str, level: Level, source: str, summary: str, *, exclusive: bool = False
    ) -> Rule:
        if name in self._rules:
            raise ValueError(f"rule {name!r} is already registered")
        rule = Rule(name, level, source, summary, self.api, exclusive)
        self._rules[name] = rule
        return rule

    def get(self, name: str) -> Rule | None:
        return self._rules.get(name)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)


def listing(rules: Iterable[Rule]) -> Iterator[str]:
    """`--list-rules` of every command (check's suites and run's client judges alike): one
    line per rule, tab-separated: name, level, API, source, summary."""
    for rule in rules:
        yield f"{rule.name}\t{rule.level}\t{rule.api}\t{rule.source}\t{rule.summary}"


class RuleFailure(AssertionError):
    """A broken rule: what was received, what the contract documents, and how to reproduce it."""

    def __init__(
        self,
        rule: Rule,
        title: str,
        *,
        received: str,
        documented: str,
        curl: str = "",
        operation: str | None = None,
    ) -> None:
        message = f"{rule.name} ({rule.level}): {title}\n  Received:   {received}"
        message += f"\n  Documented: {documented}"
        if curl:
            message += f"\n  Reproduce:  {curl}"
        super().__init__(message)
        self.rule = rule
        self.title = title
        self.received = received
        self.documented = documented
        self.curl = curl
        self.operation = operation

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "title": self.title,
            "received": self.received,
            "documented": self.documented,
            "curl": self.curl,
            "operation": self.operation,
        }


def fail(
    rule: Rule,
    title: str,
    *,
    received: str,
    documented: str,
    curl: str = "",
    operation: str | None = None,
) -> NoReturn:
    """Raise `RuleFailure` for `rule`."""
    raise RuleFailure(
        rule, title, received=received, documented=documented, curl=curl, operation=operation
    )


def not_verified(reason: str) -> NoReturn:
    """End the check as NOT VERIFIED: neither passed nor failed (e.g. it needs --clock-control)."""
    import pytest  # D187: the CLI reads the catalogs without pytest

    pytest.skip(f"{NOT_VERIFIED}: {reason}")


def covers(*rules: Rule, operation: str | None = None) -> Callable[[F], F]:
    """Mark a test as the check of `rules` (on `operation`, unless a parameter named `operation`
    says which): it passes them all, or fails the ones it raises `RuleFailure` for. A check of
    an exclusive rule is marked to run alone."""
    if not rules:
        raise ValueError("a check covers at least one rule")
    kwargs = {"operation": operation} if operation is not None else {}
    import pytest

    mark = pytest.mark.pepharness_rules(*rules, **kwargs)
    exclusive = any(rule.exclusive for rule in rules)

    def apply(test: F) -> F:
        marked = mark(test)
        return pytest.mark.pepharness_exclusive(marked) if exclusive else marked  # type: ignore[no-any-return]

    return apply


def rules_of(item: pytest.Item) -> list[Rule]:
    """The rules a collected test checks (empty for tests that are not suite checks)."""
    marker = item.get_closest_marker(MARKER)
    return list(marker.args) if marker is not None else []


def operation_of(item: pytest.Item) -> str | None:
    """The operation a collected check exercises: its `operation` parameter, the schemathesis
    operation it was generated for, or the one its marker names."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and isinstance(callspec.params.get("operation"), str):
        return str(callspec.params["operation"])
    label = getattr(item, "operation_label", None)
    if isinstance(label, str):
        return label
    marker = item.get_closest_marker(MARKER)
    operation = marker.kwargs.get("operation") if marker is not None else None
    return str(operation) if operation is not None else None


def matches(rule: Rule, patterns: Sequence[str]) -> bool:
    """Whether `rule` is selected by any of the glob `patterns` (all rules when there is none)."""
    return not patterns or any(fnmatch.fnmatchcase(rule.name, p) for p in patterns)


def operation_matches(operation: str | None, patterns: Sequence[str]) -> bool:
    """Whether a check of `operation` (`GET /games/{version}/view/detailed`) is selected by the
    glob `patterns` (every operation when there is none; a check of no operation always)."""
    if not patterns or operation is None:
        return True
    return any(fnmatch.fnmatchcase(operation, pattern) for pattern in patterns)


def split_patterns(values: Iterable[str]) -> list[str]:
    """`--rules` values, each possibly comma separated, as a flat list of glob patterns."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


class RuleFailures(AssertionError):
    """Several rules broken by one request (a schemathesis case can break a few checks at once)."""

    def __init__(self, failures: Sequence[RuleFailure], message: str) -> None:
        super().__init__(message)
        self.failures = list(failures)
