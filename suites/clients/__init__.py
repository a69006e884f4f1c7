"""Client rules: judging the requests an integrator's client sent to the mocks (issue 14).

A mock served with `--traffic FILE` writes every exchange as a JSON line (mocks/core/traffic.py,
D103, D104). A judge reads those entries once, in order (`read_traffic` streams them), keeps only
the state its rules need (per credential, per page walk, per event key: memory bounded by what
the client did, not by the number of requests), and returns one `Verdict` per rule of its API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pepharness.suites.rules import Rule

Entry = Mapping[str, Any]
"""One line of the traffic file (D104)."""

PASS, FAIL, NOT_VERIFIED = "pass", "fail", "not verified"
REPORTED = {PASS: "passed", FAIL: "failed", NOT_VERIFIED: "not_verified"}
"""A verdict's outcome as the report writer names it (suites/report.py OUTCOMES)."""


@dataclass(frozen=True)
class Breach:
    """What broke a rule: a title, the traffic lines (`seq`) involved, and the detail."""

    title: str
    seqs: tuple[int, ...]
    detail: str = ""


@dataclass
class Verdict:
    """One rule over one run: how many exchanges it looked at, and every breach."""

    rule: Rule
    checked: int = 0
    breaches: list[Breach] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.breaches:
            return FAIL
        return PASS if self.checked else NOT_VERIFIED

    def result(self) -> dict[str, Any]:
        """This verdict as one result of the shared report writer (suites/report.py): the
        rule's name, level, source, summary and API, the outcome in the report's words, and
        the breaches, the first (with how many more) as its failure."""
        rule = self.rule
        result: dict[str, Any] = {
            "rule": rule.name,
            "level": str(rule.level),
            "source": rule.source,
            "summary": rule.summary,
            "api": rule.api,
            "outcome": REPORTED[self.outcome],
            "checked": self.checked,
            "breaches": [
                {"title": b.title, "seqs": list(b.seqs), "detail": b.detail}
                for b in self.breaches
            ],
            "reason": "" if self.checked else "the client sent nothing this rule looks at",
        }
        if self.breaches:
            first = self.breaches[0]
            more = len(self.breaches) - 1
            result["failure"] = {
                "title": first.title + (f" (and {more} more)" if more else ""),
                "received": "\n".join(
                    f"#{','.join(map(str, b.seqs))} {b.title}: {b.detail}" for b in self.breaches
                ),
                "documented": rule.summary,
            }
        return result


class Judge(Protocol):
    """A judge of one API's client rules (suites/clients/<api>.py exposes `judge`)."""

    def __call__(self, entries: Iterable[Entry]) -> list[Verdict]: ...
