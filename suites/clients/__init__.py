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


class Judge(Protocol):
    """A judge of one API's client rules (suites/clients/<api>.py exposes `judge`)."""

    def __call__(self, entries: Iterable[Entry]) -> list[Verdict]: ...
