"""The bulk player sync: a per-player report in the 202, compressed bodies, the task read back."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.pep_platform import rules
from pepharness.suites.pep_platform.client import (
    MIGRATE_OPERATION,
    TASK_OPERATION,
    Platform,
    body_of,
    player,
    unique,
)
from pepharness.suites.rules import Rule, covers, fail

BATCH = 100
# index → (the player, the field D61's error names)
INVALID: dict[int, tuple[str, str]] = {
    7: ("registrationDate", "registrationDate"),
    42: ("playerId", "playerId"),
    99: ("country", "country"),
}
BROKEN = {"registrationDate": "last Tuesday", "country": "Germany"}
COMPRESSED = 10


def batch(prefix: str) -> list[dict[str, Any]]:
    """BATCH players, those of INVALID each with one invalid field."""
    players = [player(index, prefix) for index in range(BATCH)]
    for index, (field, _) in INVALID.items():
        if field == "playerId":
            del players[index]["playerId"]
        else:
            players[index][field] = BROKEN[field]
    return players


class Synced:
    """One bulk sync of `batch()` and its answer."""

    def __init__(self, platform: Platform) -> None:
        self.players = batch(unique("sync"))
        self.response = platform.sync(self.players)
        self.report = body_of(self.response)


@pytest.fixture(scope="module")
def synced(platform: Platform) -> Synced:
    return Synced(platform)


def _report(platform: Platform, rule: Rule, response: requests.Response, what: str) -> dict[
    str, Any
]:
    report = body_of(response)
    if response.status_code != 202 or not isinstance(report, dict):
        fail(
            rule,
            f"{what} is not 202 with a JSON report",
            received=summarize(response, 300),
            documented='202 {"taskId", "received", "stored", "errorsTotal", "errors": [...]} '
            "(VENDOR-FACTS, D61)",
            curl=platform.curl(response),
        )
    return report


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report.get(key) for key in ("received", "stored", "errorsTotal")}


@covers(rules.SYNC_REPORTS, operation=MIGRATE_OPERATION)
def test_sync_reports_each_player(platform: Platform, synced: Synced) -> None:
    what = f"a sync of {BATCH} players, {len(INVALID)} invalid"
    report = _report(platform, rules.SYNC_REPORTS, synced.response, what)
    expected = {"received": BATCH, "stored": BATCH - len(INVALID), "errorsTotal": len(INVALID)}
    task = report.get("taskId")
    if _counts(report) != expected or not isinstance(task, str) or not task:
        fail(
            rules.SYNC_REPORTS,
            f"{what}: the report's counts are off, or it has no taskId",
            received=summarize(synced.response, 300),
            documented=f"202 {{taskId, {', '.join(f'{k}: {v}' for k, v in expected.items())}}}"
            " (D61)",
            curl=platform.curl(synced.response),
        )


@covers(rules.SYNC_ERRORS_NAMED, operation=MIGRATE_OPERATION)
def test_sync_errors_name_index_and_field(platform: Platform, synced: Synced) -> None:
    report = _report(platform, rules.SYNC_ERRORS_NAMED, synced.response, "the sync")
    errors = report.get("errors")
    listed = errors if isinstance(errors, list) else []
    named = {
        (error.get("index"), error.get("field")): error
        for error in listed
        if isinstance(error, dict)
    }
    for index, (_, field) in INVALID.items():
        error = named.get((index, field))
        expected_id = synced.players[index].get("playerId")
        if error is None or error.get("playerId") != expected_id:
            fail(
                rules.SYNC_ERRORS_NAMED,
                f"no error names player {index} and its field {field}",
                received=f"errors: {str(errors)[:300]}",
                documented=f'{{"index": {index}, "playerId": '
                f'{"null" if expected_id is None else repr(expected_id)}, '
                f'"field": "{field}", "message": "…"}} (D61)',
                curl=platform.curl(synced.response),
            )
    if len(listed) != len(INVALID):
        fail(
            rules.SYNC_ERRORS_NAMED,
            f"{len(listed)} errors for {len(INVALID)} invalid players",
            received=f"errors: {str(errors)[:300]}",
            documented="one error per invalid field (D61)",
            curl=platform.curl(synced.response),
        )


@pytest.mark.parametrize("encoding", ["gzip", "br"])
@covers(rules.SYNC_COMPRESSED, operation=MIGRATE_OPERATION)
def test_sync_accepts_compressed_body(platform: Platform, encoding: str) -> None:
    prefix = unique("sync")
    response = platform.sync([player(i, prefix) for i in range(COMPRESSED)], encoding=encoding)
    what = f"a {encoding}-encoded sync of {COMPRESSED} valid players"
    report = _report(platform, rules.SYNC_COMPRESSED, response, what)
    expected = {"received": COMPRESSED, "stored": COMPRESSED, "errorsTotal": 0}
    if _counts(report) != expected:
        fail(
            rules.SYNC_COMPRESSED,
            f"{what}: not every player stored",
            received=summarize(response, 300),
            documented=f"202 {expected} (VENDOR-FACTS: gzip or Brotli accepted; D60)",
            curl=platform.curl(response),
        )


@covers(rules.SYNC_TASK, operation=TASK_OPERATION)
def test_sync_task_is_readable(platform: Platform, synced: Synced) -> None:
    report = _report(platform, rules.SYNC_TASK, synced.response, "the sync")
    task_id = report.get("taskId")
    if not isinstance(task_id, str) or not task_id:
        fail(
            rules.SYNC_TASK,
            "the sync's 202 has no taskId to read",
            received=summarize(synced.response, 300),
            documented="202 {taskId, …} (D61)",
            curl=platform.curl(synced.response),
        )
    response = platform.task(task_id)
    task = body_of(response)
    if (
        response.status_code != 200
        or not isinstance(task, dict)
        or task.get("taskId") != task_id
        or _counts(task) != _counts(report)
    ):
        fail(
            rules.SYNC_TASK,
            "the task does not read back as the sync reported it",
            received=summarize(response, 300),
            documented=f"200 {{taskId: {task_id}, {_counts(report)}}} (D61)",
            curl=platform.curl(response),
        )
