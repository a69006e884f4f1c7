"""What the suites need from the target before a check can send its request (a token, a login)
is the target's answer too: when it is off its contract, that is a named MUST failure (exit 1),
never a suite that "did not run" (exit 2, which is for what the user must fix) (issue 13
item 11, D84).

Schemathesis calls the auth providers while pytest collects the contract's examples, where an
exception aborts the whole run. So a provider that cannot get its credential answers "none"
while collecting, and fails the rule that promises the credential when a test asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pepharness.suites.rules import Rule, RuleFailure

T = TypeVar("T")


class SetupRefused(RuntimeError):
    """The target did not hand out what the checks need; the message says what it answered,
    `curl` how to ask again."""

    def __init__(self, message: str, *, curl: str = "") -> None:
        super().__init__(message)
        self.curl = curl


_testing = False
_refused: dict[str, RuleFailure] = {}


def start_testing() -> None:
    """Called by the plugin before this process sets up its first test: collection is over.
    (Not PYTEST_CURRENT_TEST: a check run from a test inherits the outer pytest's.)"""
    global _testing
    _testing = True


def in_a_test() -> bool:
    """Whether this process is running its tests, no longer collecting them."""
    return _testing


def credential(
    get: Callable[[], T], rule: Rule, *, documented: str, operation: str | None = None
) -> T | None:
    """`get()`; when the target refuses it (`RuntimeError`, `SetupRefused` included): None while
    collecting, and `rule`'s failure in a test."""
    refused = _refused.get(rule.name)
    if refused is None:
        try:
            return get()
        except RuntimeError as error:
            refused = RuleFailure(
                rule,
                "the credential every other check needs could not be had",
                received=str(error),
                documented=documented,
                curl=getattr(error, "curl", ""),
                operation=operation,
            )
    if not in_a_test():
        return None
    # Once refused in a test, refused for the rest of the run: hypothesis replays a failing
    # example many times, and the target has answered already.
    _refused[rule.name] = refused
    raise refused
