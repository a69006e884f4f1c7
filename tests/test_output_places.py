"""Output places checked before any work (D158): `fixtures dump --out` and `replay --out` to a
place that cannot be written are one line and exit 2, before generating or replaying anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from pepharness import fixtures as fixture_data
from pepharness.cli import cli
from pepharness.mocks.core import ThreadedServer
from pepharness.outputs import file_problem, folder_problem


def unwritable(tmp_path: Path, kind: str) -> Path:
    """A place nobody can write, even root: under a regular file, or under /proc."""
    if kind == "under a file":
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        return blocker / "sub"
    return Path("/proc/pepharness-nope")


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


KINDS = ["under a file", "under /proc"]


@pytest.mark.parametrize("kind", KINDS)
def test_fixtures_dump_to_an_unwritable_folder_is_one_line_before_generating(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def generate(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("generated before --out was checked")

    monkeypatch.setattr(fixture_data, "generate", generate)
    out = unwritable(tmp_path, kind)
    line = one_line_error(CliRunner().invoke(cli, ["fixtures", "dump", "--out", str(out)]))
    assert line.startswith(f"error: cannot write to {out}: ")


@pytest.fixture(scope="module")
def counted() -> Iterator[tuple[str, list[str]]]:
    """A loopback server answering `GET /ping`, and the paths it was asked."""
    asked: list[str] = []
    app = Flask("counted")

    @app.get("/ping")
    def ping() -> dict[str, str]:
        asked.append("/ping")
        return {"pong": "yes"}

    with ThreadedServer(app) as server:
        yield server.url, asked


def ping_har(tmp_path: Path, url: str) -> Path:
    """A HAR of `pepharness fuzz` with one recorded `GET /ping`, answered 200."""
    text = json.dumps({"pong": "yes"})
    entry = {
        "startedDateTime": "2026-12-07T09:01:02.123456+00:00",
        "time": 1.0,
        "request": {"method": "GET", "url": f"{url}/ping", "httpVersion": "HTTP/1.1",
                    "headers": [], "queryString": [], "cookies": [], "headersSize": -1,
                    "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Content-Type", "value": "application/json"}],
                     "cookies": [], "redirectURL": "", "headersSize": -1,
                     "bodySize": len(text),
                     "content": {"size": len(text), "mimeType": "application/json",
                                 "text": text}},
        "cache": {},
        "timings": {"send": 0, "wait": 1, "receive": 0},
        "_pepharness": {"index": 1, "step": 0, "operation": "", "flow": "generated"},
    }
    har = {"log": {"version": "1.2", "creator": {"name": "pepharness", "version": "0.1.0"},
                   "entries": [entry]}}
    path = tmp_path / "traffic.har"
    path.write_text(json.dumps(har), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_replay_to_an_unwritable_out_is_one_line_before_replaying(
    tmp_path: Path, kind: str, counted: tuple[str, list[str]]
) -> None:
    url, asked = counted
    har = ping_har(tmp_path, url)
    out = unwritable(tmp_path, kind) / "replay.json"
    before = len(asked)
    result = CliRunner().invoke(cli, ["replay", str(har), "--base-url", url, "--out", str(out)])
    assert one_line_error(result).startswith(f"error: cannot write {out}: ")
    assert len(asked) == before  # nothing replayed


def test_replay_writes_out_in_a_folder_it_creates(
    tmp_path: Path, counted: tuple[str, list[str]]
) -> None:
    url, asked = counted
    out = tmp_path / "new" / "replay.json"
    before = len(asked)
    result = CliRunner().invoke(
        cli, ["replay", str(ping_har(tmp_path, url)), "--base-url", url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(asked) == before + 1
    assert json.loads(out.read_text(encoding="utf-8"))


def test_the_checks_leave_no_trace(tmp_path: Path) -> None:
    existing = tmp_path / "kept.json"
    existing.write_text("kept")
    assert file_problem(existing) is None and existing.read_text() == "kept"
    assert file_problem(tmp_path / "new.json") is None
    assert folder_problem(tmp_path / "folder") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "kept.json"]
    assert not any((tmp_path / "folder").iterdir())
