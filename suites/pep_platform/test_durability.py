"""Accepted means stored (D57): an event's 202 comes after its commit, so the data fetch lists it
at once, and a target killed right after the 202s (--restart-command) still lists each event
once when it is back.

The restart check runs alone, after the shared checks: the target is down while it restarts.
Data-fetch budget: one request per check among the shared ones, two in the restart check.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections import Counter
from typing import Any

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    SAMPLES,
    TOKEN,
    TOKEN_OPERATION,
    Platform,
    body_of,
    event_operation,
    money,
    transaction_keys,
    unique,
)
from pepharness.suites.rules import Rule, covers, fail, not_verified

BATCH = 20
"""Money transactions sent right before the restart."""
RESTART_TIMEOUT_SECONDS = 60
BACK_WITHIN_SECONDS = 60
POLL_SECONDS = 0.25
MAX_PAGES = 5
KIND_OF = {event_operation(kind): kind for kind in ("money", "round")}

Key = tuple[str, str]
"""(transactionType, transactionId): what tells the data fetch's transactions apart."""


def _send(platform: Platform, kind: str, body: Any) -> requests.Response:
    """`body` as a `kind` event, which the target must take: a refusal is another rule's
    failure, and leaves nothing to look for."""
    response = platform.event(kind, body)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"a valid {kind} event was refused: {summarize(response)}")
    return response


def _listed(
    platform: Platform, rule: Rule, delta: str, keys: list[Key]
) -> tuple[Counter[Key], requests.Response]:
    """How many times the transactions received after `delta` list each of `keys`, and the last
    page read."""
    answers, _ = platform.pages("transactions", delta=delta, limit=1000, max_pages=MAX_PAGES)
    wanted = set(keys)
    counts: Counter[Key] = Counter()
    for answer in answers:
        for item in platform.expect_page(rule, answer, "the transactions"):
            if isinstance(item, dict):
                key = (str(item.get("transactionType")), str(item.get("transactionId")))
                if key in wanted:
                    counts[key] += 1
    return counts, answers[-1]


def _shown(counts: dict[Key, int]) -> str:
    shown = [f"transactionId {key[1]}: {count}" for key, count in list(counts.items())[:3]]
    more = f" (and {len(counts) - 3} more)" if len(counts) > 3 else ""
    return ", ".join(shown) + more


@pytest.mark.parametrize("operation", list(KIND_OF))
@covers(rules.READABLE_AT_ONCE)
def test_accepted_event_is_readable_at_once(platform: Platform, operation: str) -> None:
    kind = KIND_OF[operation]
    mark = platform.instant_before()
    body = SAMPLES[kind]()
    accepted = _send(platform, kind, body)
    keys = transaction_keys(kind, body)
    listed, page = _listed(platform, rules.READABLE_AT_ONCE, mark, keys)
    missing = [key[1] for key in keys if not listed[key]]
    if missing:
        fail(
            rules.READABLE_AT_ONCE,
            f"a {kind} event answered {accepted.status_code} is not listed by the data fetch "
            "right after",
            received=f"GET /api/data-fetch/v1/transactions?delta={mark} lists no "
            f"transactionId {', '.join(missing)}",
            documented="every accepted event is committed before the 202 (D57), so listed "
            "after delta (D63)",
            curl=platform.curl(page),
        )


def _restart(command: str) -> None:
    """Run the restart command (the target may still be starting when it returns), without the
    suite's PEPHARNESS_ variables: the client secret is none of its business."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    with tempfile.TemporaryFile() as output:
        try:
            done = subprocess.run(
                command, shell=True, timeout=RESTART_TIMEOUT_SECONDS, check=False, env=env,
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"the restart command did not end within {RESTART_TIMEOUT_SECONDS} s"
            ) from None
        if done.returncode != 0:
            output.seek(0)
            said = " ".join(output.read().decode("utf-8", "replace").split())[-200:]
            raise RuntimeError(
                f"the restart command exited {done.returncode}: {said or '(no output)'}"
            )


def _wait_until_back(platform: Platform) -> None:
    """Ask for a token until the restarted target grants one; fail after BACK_WITHIN_SECONDS."""
    deadline = time.monotonic() + BACK_WITHIN_SECONDS
    while True:
        left = max(1.0, deadline - time.monotonic())
        try:
            answer = platform.target.request(
                "POST", TOKEN, data={"grant_type": "client_credentials"},
                auth=(platform.client_id, platform.secret), timeout=left,
            )
        except requests.RequestException as error:
            last, curl = f"no answer ({type(error).__name__})", ""
        else:
            body = body_of(answer)
            if answer.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
                return
            last, curl = summarize(answer), platform.curl(answer)
        if time.monotonic() >= deadline:
            fail(
                rules.SURVIVES_RESTART,
                f"the target grants no token within {BACK_WITHIN_SECONDS} s of the restart "
                "command",
                received=f"POST {TOKEN}: {last}",
                documented="the restarted target serves again, its clients kept (200 with an "
                "access_token)",
                curl=curl,
                operation=TOKEN_OPERATION,
            )
        time.sleep(POLL_SECONDS)


@covers(rules.SURVIVES_RESTART, operation=event_operation("money"))
def test_accepted_events_survive_a_restart(platform: Platform) -> None:
    command = platform.options.restart_command
    if command is None:
        not_verified(
            "needs --restart-command CMD (restarts the target between the 202s and the data "
            "fetch); check_accepted_event_is_readable_at_once checks the 202 without it"
        )
    mark = platform.instant_before()
    who = unique("player")
    bodies = [money(who) for _ in range(BATCH)]
    for body in bodies:
        _send(platform, "money", body)
    _restart(command)
    _wait_until_back(platform)
    platform.forget_tokens()
    keys = [transaction_keys("money", body)[0] for body in bodies]
    listed, page = _listed(platform, rules.SURVIVES_RESTART, mark, keys)
    wrong = {key: listed[key] for key in keys if listed[key] != 1}
    if wrong:
        lost = sum(1 for count in wrong.values() if count == 0)
        fail(
            rules.SURVIVES_RESTART,
            f"{lost} of {BATCH} accepted events are gone after the restart" if lost
            else f"{len(wrong)} of {BATCH} accepted events are listed twice after the restart",
            received=f"GET /api/data-fetch/v1/transactions?delta={mark} after the restart, "
            f"times listed: {_shown(wrong)}",
            documented=f"each of the {BATCH} events listed once: committed before its 202 "
            "(D57), counted once (D58)",
            curl=platform.curl(page),
        )
    repeat = platform.event("money", bodies[0])
    if repeat.status_code != 202:
        fail(
            rules.SURVIVES_RESTART,
            f"an event accepted before the restart, sent again, is {repeat.status_code}",
            received=summarize(repeat),
            documented='202 {"status": "accepted", "duplicate": true, …} (D57, D58)',
            curl=platform.curl(repeat),
        )
    listed, page = _listed(platform, rules.SURVIVES_RESTART, mark, keys[:1])
    if listed[keys[0]] != 1:
        fail(
            rules.SURVIVES_RESTART,
            f"an event accepted before the restart and sent again after it is listed "
            f"{listed[keys[0]]} time(s)",
            received=f"GET /api/data-fetch/v1/transactions?delta={mark}, times listed: "
            f"{_shown({keys[0]: listed[keys[0]]})}",
            documented="stored and counted once (D58): exactly one item",
            curl=platform.curl(repeat),
        )
