"""issue 14, "Done when": every planted-fault client (tests/planted/clients_*.py) run as the
command of `pepharness run` is failed by the one rule it breaks, named on the console and in
summary.json, and by no other; a MUST rule makes the exit 1, a SHOULD rule is reported."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from planted import clients_pep, clients_sinatra

from pepharness.cli import cli
from pepharness.suites.clients import pep_frontend, pep_platform, sinatra

SCRIPT = Path(__file__).resolve().parent / "planted" / "run_planted.py"
RULES = {rule.name: rule for module in (sinatra, pep_platform, pep_frontend)
         for rule in module.CATALOG}
PLANTED = {
    **{f"sinatra:{name}": rule for name, (_client, rule) in clients_sinatra.PLANTED.items()},
    **{f"pep:{name}": c.breaks for name, (_api, c) in clients_pep.CLIENTS.items()},
}
MOCKS = {"sinatra": "sinatra", "pep": "operator,pep"}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_run_fails_a_planted_client_by_its_rule(name: str, tmp_path: Path) -> None:
    rule = PLANTED[name]
    mocks = MOCKS[name.split(":")[0]]
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    result = CliRunner(env=env).invoke(
        cli,
        ["run", "--mocks", mocks, "--report-dir", str(tmp_path), "--",
         sys.executable, str(SCRIPT), name],
        catch_exceptions=False,
    )
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["command"]["exit_code"] == 0, result.output  # the client itself ran
    assert [failure["rule"] for failure in summary["failures"]] == [rule], result.output
    if RULES[rule].level == "MUST":
        assert result.exit_code == 1, result.output
        assert f"a MUST client rule failed: {rule}" in result.output
    else:
        assert result.exit_code == 0, result.output
        assert rule in result.output
