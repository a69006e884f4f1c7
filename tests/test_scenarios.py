"""`pepharness run --scenario NAME|FILE` (issue 14 item 4): the YAML format, the built-ins, and
their steps applied on schedule through the served mocks' admin API while a real client runs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pepharness import scenarios
from pepharness.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sinatra_client.py"


def invoke(*args: str, **extra: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    return CliRunner(env={**env, **extra}).invoke(cli, list(args), catch_exceptions=False)


def summary(report_dir: Path) -> dict:
    return json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(scenarios.BUILTINS))
def test_every_builtin_parses_from_its_yaml(name: str) -> None:
    scenario = scenarios.parse(scenarios.BUILTINS[name], name)
    assert scenario.steps and scenario.description
    assert "&id" not in scenarios.BUILTINS[name]  # a copyable file: no YAML anchors


def test_a_scenario_file_in_the_documented_format_parses(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "description: a slow start, then a jump\n"
        "steps:\n"
        "  - {at: 3, action: clock, mock: all, advance_seconds: 1260}\n"
        "  - at: 0.5\n"
        "    action: faults\n"
        "    mock: sinatra\n"
        "    rules: [{path: '/games/*', status: 503, probability: 0.5}]\n"
        "  - {at: 1, action: rate-limit, mock: pep, limit: 2, optional: true}\n"
        "  - {at: 4, action: clear, mock: all}\n",
        encoding="utf-8",
    )
    scenario = scenarios.load(str(path))
    assert [s.at for s in scenario.steps] == [0.5, 1, 3, 4]  # applied in time order
    assert scenario.steps[0].payload == {
        "rules": [{"path": "/games/*", "status": 503, "probability": 0.5}]
    }
    assert scenario.steps[1].optional


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: [{at: 1, action: explode, mock: all}]", "step 1: action must be one of"),
        ("- {at: -1, action: clear, mock: all}", "step 1: at must be a number of seconds"),
        ("- {at: 1, action: clear, mock: everyone}", "step 1: mock must be one of"),
        ("- {at: 1, action: clock, mock: all}", "exactly one of advance_seconds or set"),
        ("- {at: 1, action: faults, mock: all, rules: [{path: '*'}]}", "rule 0: a fault needs"),
        ("- {at: 1, action: clear, mock: all, limit: 2}", "unknown key(s) limit"),
        ("steps: [", "not valid YAML at line"),
        ("[]", "a scenario is a non-empty list of steps"),
    ],
)
def test_a_bad_scenario_is_refused_with_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(scenarios.ScenarioError) as caught:
        scenarios.parse(text, "bad.yaml")
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("bad.yaml: ")


def test_run_refuses_a_bad_scenario_file_before_serving(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {at: soon, action: clock, mock: all, advance_seconds: 60}\n")
    report_dir = tmp_path / "report"
    result = invoke(
        "run", "--report-dir", str(report_dir), "--scenario", str(bad),
        "--", sys.executable, "-c", "pass",
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {bad}: step 1: at must be a number of seconds from 0 to 86400, not \"soon\""
    ]
    assert not report_dir.exists()  # nothing served, nothing written
    unknown = invoke("run", "--scenario", "no-such", "--", sys.executable, "-c", "pass")
    assert unknown.exit_code == 2 and "no such built-in scenario" in unknown.output


def test_list_scenarios_names_every_builtin() -> None:
    result = invoke("run", "--list-scenarios")
    assert result.exit_code == 0
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert [name for name, _ in lines] == list(scenarios.BUILTINS)
    assert all(description for _, description in lines)


def test_the_example_renews_through_token_expiry(tmp_path: Path) -> None:
    result = invoke(
        "run", "--mocks", "sinatra", "--report-dir", str(tmp_path), "--scenario", "token-expiry",
        "--", sys.executable, str(EXAMPLE),
        # 22 history pages at the mock's 5 a second: the walk outlasts the step at 2 s.
        PEPHARNESS_SINATRA_PAGE_SIZE="60",
    )
    assert result.exit_code == 0, result.output
    timeline = summary(tmp_path)["scenario"]
    applied = [(s["scenario"], s["mock"], s["action"], s["status"], s["outcome"]) for s in timeline]
    assert applied == [("token-expiry", "sinatra", "clock", 200, "applied")]
    lines = (tmp_path / "scenario.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == timeline
    assert "scenario token-expiry at 2s: clock on sinatra: applied (200)" in result.output


def test_the_example_survives_flaky(tmp_path: Path) -> None:
    result = invoke(
        "run", "--mocks", "sinatra", "--report-dir", str(tmp_path), "--scenario", "flaky",
        "--", sys.executable, str(EXAMPLE),
    )
    assert result.exit_code == 0, result.output
    report = summary(tmp_path)
    assert report["verdict"] == "pass"
    outcomes = {(s["mock"], s["outcome"]) for s in report["scenario"]}
    assert outcomes == {("sinatra", "applied"), ("pep", "skipped")}  # the PEP is not served
    lines = (tmp_path / "traffic.jsonl").read_text(encoding="utf-8").splitlines()
    faulted = [e for e in map(json.loads, lines) if e["fault"]]
    assert faulted and {e["status"] for e in faulted} <= {500, 502, 503}  # it did misbehave
    for entry in faulted:  # the 503s say when to come back (D149)
        told = entry["response_headers"].get("Retry-After")
        assert told == ("1" if entry["status"] == 503 else None), entry
    assert not [r["rule"] for r in report["rules"] if r["outcome"] == "failed"]  # SHOULDs too


def test_steps_after_the_command_ended_are_shown_not_applied(tmp_path: Path) -> None:
    result = invoke(
        "run", "--mocks", "sinatra", "--report-dir", str(tmp_path), "--scenario", "outage",
        "--", sys.executable, "-c", "pass",
    )
    assert result.exit_code == 0, result.output
    timeline = summary(tmp_path)["scenario"]
    assert [(s["at"], s["action"], s["outcome"]) for s in timeline] == [
        (1.0, "faults", "not_reached"), (4.0, "clear", "not_reached")
    ]


EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize("name", sorted(scenarios.BUILTINS))
def test_the_example_clients_pass_every_rule_under_every_builtin(name: str, tmp_path: Path) -> None:
    """issue 14, "Done when": the three example clients, side by side against every mock (each
    meets the scenario's steps, none waits for another), pass every client rule (SHOULD too)
    while the scenario misbehaves on schedule."""
    python = sys.executable
    scripts = ("sinatra_client.py", "platform_client.py", "frontend_client.py")
    # each in the background, then each one's exit status: the run's command fails if one does
    command = "".join(f'"{python}" "{EXAMPLES / script}" & p{i}=$!; '
                      for i, script in enumerate(scripts))
    command += " && ".join(f'wait "$p{i}"' for i in range(len(scripts)))
    result = invoke(
        "run", "--report-dir", str(tmp_path), "--scenario", name, "--", "sh", "-c", command,
        # the walk outlasts the scenarios' first steps; a timed-out event is retried unchanged
        PEPHARNESS_SINATRA_PAGE_SIZE="60", PEPHARNESS_PEP_TIMEOUT="1",
    )
    assert result.exit_code == 0, result.output
    report = summary(tmp_path)
    assert report["verdict"] == "pass"
    assert not [r["rule"] for r in report["rules"] if r["outcome"] == "failed"], result.output
    assert any(step["outcome"] == "applied" for step in report["scenario"]), report["scenario"]
