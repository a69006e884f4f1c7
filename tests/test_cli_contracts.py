"""`pepharness contracts validate` and `pepharness fixtures dump` as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pepharness import contracts
from pepharness.cli import cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pepharness", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_contracts_validate_passes_as_a_real_process() -> None:
    result = run("contracts", "validate", "--records", "3000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"all \d+ steps passed", result.stdout)
    assert "Traceback" not in result.stderr


def test_contracts_validate_fails_with_exit_1_and_names_the_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = contracts.record_errors

    def wrong_type_in_games(contract: str, schema: str, document: object) -> list[str]:
        if schema == "Game" and isinstance(document, dict):
            document = {**document, "defaultRtp": 96.21}
        return real(contract, schema, document)

    monkeypatch.setattr(contracts, "record_errors", wrong_type_in_games)
    result = CliRunner().invoke(cli, ["contracts", "validate", "--records", "500"])
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert "defaultRtp" in result.output and "is not of type 'string'" in result.output


def test_fixtures_dump_writes_deterministic_json(tmp_path: Path) -> None:
    args = ["fixtures", "dump", "--seed", "9", "--anchor", "2026-03-01", "--rounds", "300"]
    first = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")])
    second = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b")])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "games.json" in names and "rounds.json" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 9 and manifest["counts"]["rounds"] == 300


def test_options_read_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["fixtures", "dump", "--rounds", "50", "--anchor", "2026-03-01"],
        env={"PEPHARNESS_OUT": str(tmp_path / "env"), "PEPHARNESS_SEED": "3"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "env" / "manifest.json").read_text())["seed"] == 3


def test_user_mistakes_are_one_line_errors_not_tracebacks(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("fixtures", "dump", "--out", str(blocker / "sub"), "--rounds", "10")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot write to ")
    result = run("fixtures", "dump", "--out", str(tmp_path / "x"), "--rounds", "zero")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_help_explains_every_command() -> None:
    for args in ([], ["contracts", "validate"], ["fixtures", "dump"]):
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0
        assert "PEPHARNESS_" in result.output or not args


def test_the_namespace_does_not_clash_with_pypi_names(tmp_path: Path) -> None:
    """A top-level `mocks`/`fixtures`/`contracts` module elsewhere changes nothing."""
    for name in ("mocks", "fixtures", "contracts"):
        (tmp_path / f"{name}.py").write_text("IMPOSTOR = True\n")
    code = (
        "import pepharness.contracts, pepharness.fixtures, pepharness.mocks, pepharness.suites\n"
        "import mocks, fixtures, contracts\n"
        "assert mocks.IMPOSTOR and fixtures.IMPOSTOR and contracts.IMPOSTOR\n"
        "assert not hasattr(pepharness.fixtures, 'IMPOSTOR')\n"
        "print(pepharness.contracts.names())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert "sinatra" in result.stdout
