"""The replay's verdict on each exchange: for a finding, "does it still reproduce?"; for a
recorded exchange, "is the answer the same?"; for either, whether it could be replayed at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pepharness.suites.fuzz.diff import Answer
from pepharness.suites.fuzz.findings import CONNECTION_ERROR, SERVER_ERROR, SLOW, TIMEOUT
from pepharness.suites.fuzz.replay import Outcome

State = Literal["reproduces", "fixed", "same", "differs", "not_replayed"]
MARKS: dict[State, str] = {
    "reproduces": "REPRODUCES",
    "fixed": "fixed",
    "same": "same",
    "differs": "DIFFERS",
    "not_replayed": "NOT REPLAYED",
}
DEFAULT_BUDGET_MS = 1000.0
"""A slow finding's budget when its findings.json does not say (the fuzzer's default)."""
BROKEN_CONNECTION = ("Connection reset", "RemoteDisconnected", "Connection aborted")
"""A connection the target dropped while answering (a finding), not one it never opened."""


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str

    def mark(self, finding: bool) -> str:
        """The line's first word, padded to align a findings' (or a HAR's) lines."""
        return MARKS[self.state].ljust(12 if finding else 7)

    def to_json(self) -> dict[str, str]:
        return {"verdict": self.state, "reason": self.reason}


def kind_of(key: str | None) -> str | None:
    """The finding's kind from its key `operation|kind|status`."""
    if not key or key.count("|") < 2:
        return None
    return key.rsplit("|", 2)[1]


def judge(outcome: Outcome, *, budget_ms: float | None = None) -> Verdict:
    """The verdict on one replayed exchange (a finding's, when it came from a findings.json)."""
    kind = kind_of(outcome.exchange.finding)
    unreplayed = _not_replayed(outcome, kind)
    if unreplayed is not None:
        return Verdict("not_replayed", unreplayed)
    if outcome.exchange.finding is None:
        if outcome.same:
            return Verdict("same", "the same answer as recorded")
        return Verdict("differs", outcome.differences[0].describe())
    return _finding(outcome, kind, budget_ms or DEFAULT_BUDGET_MS)


def _not_replayed(outcome: Outcome, kind: str | None) -> str | None:
    """Why the exchange could not be replayed: no connection to the target, the HTTP client's
    own failure, or a 429 that outlasted the waits; None when it was."""
    new, recorded = outcome.new, outcome.recorded
    if new.error == CONNECTION_ERROR:
        dropped = any(marker in new.detail for marker in BROKEN_CONNECTION)
        expected = kind == CONNECTION_ERROR or (kind is None and recorded.error == CONNECTION_ERROR)
        if dropped and expected:
            return None  # the target took the request and broke the connection again
        return f"the target could not be reached ({new.detail.removeprefix('connection_error: ')})"
    if new.error not in (None, TIMEOUT):
        return f"the request could not be sent ({new.detail or new.error})"
    if new.status == 429 and recorded.status != 429:
        return "the target still answered 429 (rate limited) after the replay's waits"
    return None


def _finding(outcome: Outcome, kind: str | None, budget_ms: float) -> Verdict:
    new, recorded = outcome.new, outcome.recorded
    now = _now(new, outcome.elapsed_ms)
    if kind == SERVER_ERROR:
        if new.answered and new.status >= 500:
            return Verdict("reproduces", f"a server error again ({now})")
        return Verdict("fixed", f"no server error now ({now})")
    if kind == TIMEOUT:
        if new.error == TIMEOUT:
            return Verdict("reproduces", f"no answer again ({new.detail or 'timeout'})")
        return Verdict("fixed", f"answered now ({now})")
    if kind == CONNECTION_ERROR:
        if new.error == CONNECTION_ERROR:
            return Verdict("reproduces", f"the connection broke again ({new.detail})")
        return Verdict("fixed", f"answered now ({now})")
    if kind == SLOW:
        budget = f"the {budget_ms:,.0f} ms budget"
        if new.error == TIMEOUT:
            return Verdict("reproduces", f"no answer at all now, over {budget} ({new.detail})")
        if outcome.elapsed_ms > budget_ms:
            return Verdict("reproduces", f"over {budget} again ({now})")
        return Verdict("fixed", f"within {budget} now ({now})")
    # A contract check's finding: the answer that broke the contract came back, or it did not
    # (a changed answer is judged against the contract by `check` or another fuzz run).
    if outcome.same:
        return Verdict("reproduces", f"the same answer as recorded ({_now(recorded, None)})")
    return Verdict(
        "fixed", f"the answer changed ({outcome.differences[0].describe()}); judge it with `check`"
    )


def _now(answer: Answer, elapsed_ms: float | None) -> str:
    said = answer.describe()
    return said if elapsed_ms is None else f"{said} in {elapsed_ms:,.0f} ms"


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """1 when any finding still reproduces (or any answer differs); else 2 when any exchange
    could not be replayed (the user's to fix: target, URL, token); else 0."""
    if any(v.state in ("reproduces", "differs") for v in verdicts):
        return 1
    if any(v.state == "not_replayed" for v in verdicts):
        return 2
    return 0


def summary_line(verdicts: Sequence[Verdict], positions: Sequence[int]) -> str:
    """A findings.json's closing line: does any finding still reproduce, and the exit code."""
    total = len(verdicts)
    fixed = sum(v.state == "fixed" for v in verdicts)
    unsent = sum(v.state == "not_replayed" for v in verdicts)
    still = [str(p) for v, p in zip(verdicts, positions, strict=True) if v.state == "reproduces"]
    tail = f"{fixed} fixed" + (f", {unsent} not replayed" if unsent else "")
    if still:
        head = (f"still reproduces: {len(still)} of {total} finding{_s(total)} "
                f"(finding{_s(len(still))} {', '.join(still)})")
    elif unsent:
        head = f"could not replay {unsent} of {total} finding{_s(total)}"
    else:
        head = f"fixed: none of the {total} finding{_s(total)} reproduces"
    return f"verdict: {head}; {tail} (exit {exit_code(verdicts)})"


def _s(count: int) -> str:
    return "" if count == 1 else "s"
