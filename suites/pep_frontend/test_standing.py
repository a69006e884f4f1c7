"""A player's standing through an event: the Platform gateway at the same base URL gets a
deposit of a seeded player, and the player's XP and level never drop, while `/me` and the XP
leaderboard's `me` tell the same standing before and after, and the rank pushes the player's
Socket.IO connection receives (when the PEP serves one) report a rise that `/me` then shows
(issue 13 item 6, D89-D91)."""

from __future__ import annotations

import queue
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import socketio

from pepharness.suites.http import summarize
from pepharness.suites.pep_frontend import rules
from pepharness.suites.pep_frontend.client import Pep, access_token, body_of
from pepharness.suites.pep_frontend.harness import HarnessOperator
from pepharness.suites.rules import covers, fail, not_verified

ME = "GET /api/players/v1/me"
BOARD = "GET /api/leaderboards/v1/xp"
PLATFORM_TOKEN = "/api/oauth/v1/token"
DEPOSIT = "/rx-api/transactions/v1/money-transaction"
CANDIDATES = 8
"""Seeded players looked at: the one with the most XP is the one whose drop shows."""
DEPOSIT_EUR = 60
EVENT_WAIT_SECONDS = 5.0
"""How long the engine has to apply the event before the standing is read a last time."""
POLL_SECONDS = 0.1
XP_UP, LEVEL_UP = "ranks:on:xpUp", "ranks:on:levelUp"
RULE = rules.STANDING_NEVER_DECREASES
DOCUMENTED = (
    "ranksData {xpBalance, level.levelNumber, rank.name} equal to the leaderboard's me, and "
    "never below what it was before an event (VENDOR-FACTS.md; D68, D89-D91)"
)


@dataclass(frozen=True)
class Standing:
    xp: Any
    level: Any
    rank: Any

    def __str__(self) -> str:
        return f"{self.xp} XP, level {self.level}, {self.rank}"


def _read(found: Any) -> Standing | None:
    """The standing in a `{xpBalance, level: {levelNumber}, rank: {name}}` object, if it is one."""
    try:
        standing = Standing(found["xpBalance"], found["level"]["levelNumber"],
                            found["rank"]["name"])
    except (KeyError, TypeError):
        return None
    numbers = (standing.xp, standing.level)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in numbers):
        return None
    return standing


def _standing(pep: Pep, operation: str, token: str, pick: str) -> Standing:
    """The standing in `operation`'s answer (`ranksData` of /me, `me` of the leaderboard);
    an answer without one breaks the rule."""
    answer = pep.call(operation, token)
    body = body_of(answer)
    found = body.get(pick) if answer.status_code == 200 and isinstance(body, dict) else None
    standing = _read(found)
    if standing is None:
        fail(
            RULE,
            f"{operation} does not tell the player's standing ({pick})",
            received=summarize(answer),
            documented=f"200 with {pick} {{xpBalance, level: {{levelNumber}}, rank: {{name}}}}",
            curl=pep.curl(answer),
            operation=operation,
        )
    return standing


def _agreed(pep: Pep, token: str, when: str) -> Standing:
    """/me's standing once the leaderboard's `me` was read between two equal readings of it
    (an event applied meanwhile is read again); the two must agree."""
    for _ in range(5):
        mine = _standing(pep, ME, token, "ranksData")
        board = _standing(pep, BOARD, token, "me")
        if _standing(pep, ME, token, "ranksData") == mine:
            break
    if board != mine:
        fail(
            RULE,
            f"{when}, /api/players/v1/me and the leaderboard's me disagree",
            received=f"/me: {mine}; leaderboard me: {board}",
            documented=DOCUMENTED,
            operation=BOARD,
        )
    return mine


def _highest(pep: Pep, operator: HarnessOperator) -> tuple[str, str, Standing]:
    """(player id, token, standing) of the seeded player with the most XP among the first
    few the operator holds."""
    best: tuple[str, str, Standing] | None = None
    for player_id in operator.seeded_player_ids()[:CANDIDATES]:
        response = pep.login(operator.program(playerId=player_id))
        token = access_token(response)
        if token is None:
            not_verified(f"the login issued no token ({summarize(response, 80)})")
        standing = _agreed(pep, token, "before any event")
        if best is None or standing.xp > best[2].xp:
            best = (player_id, token, standing)
    if best is None:
        not_verified("the operator holds no seeded player")
    return best


def _send_deposit(pep: Pep, player_id: str) -> None:
    """One APPROVED deposit of the player through the Platform gateway at the same base URL."""
    options = pep.options
    if not options.client_secret:
        not_verified("no --client-secret: no event can be sent through the Platform gateway")
    grant = pep.target.request(
        "POST", PLATFORM_TOKEN, data={"grant_type": "client_credentials"},
        auth=(options.client_id, options.client_secret),
    )
    body = body_of(grant)
    token = body.get("access_token") if isinstance(body, dict) else None
    if grant.status_code != 200 or not isinstance(token, str):
        not_verified(f"the Platform gateway issued no token ({summarize(grant, 80)})")
    deposit = {
        "playerId": player_id, "amount": DEPOSIT_EUR, "exchangeRate": 1,
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "currency": "EUR", "transactionStatus": "APPROVED", "transactionType": "DEPOSIT",
        "transactionId": f"pepharness-standing-{secrets.token_hex(8)}",
        "realMoneyBalance": DEPOSIT_EUR, "bonusMoneyBalance": 0,
    }
    sent = pep.target.request(
        "POST", DEPOSIT, json=deposit, headers={"Authorization": f"Bearer {token}"}
    )
    if sent.status_code not in (200, 202):
        not_verified(f"the Platform gateway refused the deposit ({summarize(sent, 80)})")


def _check_no_drop(before: Standing, now: Standing) -> None:
    if now.xp < before.xp or now.level < before.level:
        fail(
            RULE,
            "the player's standing dropped after a deposit",
            received=f"before: {before}; after: {now}",
            documented=DOCUMENTED,
            operation=ME,
        )


class Pushes:
    """The player's rank pushes over Socket.IO (long-polling), if the PEP serves them."""

    def __init__(self, pep: Pep, token: str) -> None:
        self.received: queue.Queue[tuple[str, Any]] = queue.Queue()
        session = requests.Session()
        session.trust_env = False
        self.client = socketio.Client(
            reconnection=False, http_session=session, handle_sigint=False
        )
        for name in (XP_UP, LEVEL_UP):
            self.client.on(name, lambda data, name=name: self.received.put((name, data)))
        try:
            self.client.connect(
                str(pep.options.base_url), auth={"token": token}, transports=["polling"],
                wait_timeout=EVENT_WAIT_SECONDS,
            )
            self.connected = True
        except (socketio.exceptions.ConnectionError, ValueError):
            self.connected = False

    def close(self) -> None:
        if self.connected:
            self.client.disconnect()

    def check(self, before: Standing, after: Standing) -> None:
        """Once `after` rose above `before`, wait for the xpUp that tells it: no push may
        report less than `before` or more than `after`."""
        if not self.connected:
            return
        seen: list[tuple[str, Any]] = []
        deadline = time.monotonic() + EVENT_WAIT_SECONDS
        while True:
            try:
                seen.append(self.received.get_nowait())
                continue
            except queue.Empty:
                pass
            told = any(name == XP_UP and _xp(data) == after.xp for name, data in seen)
            if told or after.xp == before.xp or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        for name, data in seen:
            if name == XP_UP:
                value, low, high = _xp(data), before.xp, after.xp
            else:
                value, low, high = _level(data), before.level + 1, after.level
            if not isinstance(value, int) or not low <= value <= high:
                fail(
                    RULE,
                    f"a {name} push does not tell a rise that /me shows",
                    received=f"{name} {data}; /me before: {before}; after: {after}",
                    documented="ranks:on:xpUp {xpBalance} and ranks:on:levelUp "
                    "{level: {levelNumber}} above the standing before, up to /me's (D70, D91)",
                    operation=ME,
                )


def _xp(data: Any) -> Any:
    return data.get("xpBalance") if isinstance(data, dict) else None


def _level(data: Any) -> Any:
    level = data.get("level") if isinstance(data, dict) else None
    return level.get("levelNumber") if isinstance(level, dict) else None


@covers(RULE, operation=ME)
def test_player_standing_never_decreases(pep: Pep, operator: HarnessOperator) -> None:
    player_id, token, before = _highest(pep, operator)
    pushes = Pushes(pep, token)
    try:
        _send_deposit(pep, player_id)
        deadline = time.monotonic() + EVENT_WAIT_SECONDS
        now = before
        while now == before and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            now = _standing(pep, ME, token, "ranksData")
            _check_no_drop(before, now)
        after = _agreed(pep, token, "after the deposit")
        _check_no_drop(before, after)
        pushes.check(before, after)
    finally:
        pushes.close()
