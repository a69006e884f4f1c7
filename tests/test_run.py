"""`pepharness run -- CMD` and `pepharness verify-client` (issue 14 items 1 and 2), end to end:
the mocks served on loopback, CMD a real process, a traffic file judged by the client rules."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from pepharness.cli import cli
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.suites.clients import pep_frontend, pep_platform, sinatra

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sinatra_client.py"
LOGS_IN_PER_REQUEST = ROOT / "tests" / "planted" / "sinatra_login_per_request_client.py"
PEPHARNESS = [sys.executable, "-c", "from pepharness.cli import main; main()"]
TIMEOUT = 120


def invoke(*args: str, **extra: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    return CliRunner(env={**env, **extra}).invoke(cli, list(args), catch_exceptions=False)


def summary(report_dir: Path) -> dict:
    return json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))


def test_the_example_client_passes_every_sinatra_rule(tmp_path: Path) -> None:
    result = invoke(
        "run", "--mocks", "sinatra", "--report-dir", str(tmp_path),
        "--", sys.executable, str(EXAMPLE),
    )
    assert result.exit_code == 0, result.output
    assert "the command ended (exit 0)" in result.output
    report = summary(tmp_path)
    assert report["verdict"] == "pass" and report["command"]["exit_code"] == 0
    outcomes = {r["rule"]: r["outcome"] for r in report["rules"]}
    assert set(outcomes) == {rule.name for rule in sinatra.CATALOG}
    assert set(outcomes.values()) <= {"passed", "not_verified"}, outcomes
    assert outcomes["check_client_reuses_its_token"] == "passed"
    assert outcomes["check_client_walks_pages_in_order"] == "passed"
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    assert {case.get("name") for case in cases} == set(outcomes)
    assert (tmp_path / "traffic.jsonl").stat().st_size > 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h1>pepharness run — PASS</h1>" in page and "<h2>Breaches (0)</h2>" in page
    assert all(f"<b>{rule}</b>" in page for rule in outcomes)


EXERCISED = {
    "platform_client.py": "check_client_platform_token_reused",
    "frontend_client.py": "check_client_frontend_sends_the_pep_jwt",
    "both": "check_client_platform_token_reused",
}


@pytest.mark.parametrize("example", list(EXERCISED))
def test_the_pep_example_clients_pass_every_pep_rule(tmp_path: Path, example: str) -> None:
    """Each alone, and both in one job (the front end adds no OAuth token of its own)."""
    python = shlex.quote(sys.executable)
    scripts = [ex for ex in ("platform_client.py", "frontend_client.py") if example in (ex, "both")]
    command = " && ".join(f"{python} {shlex.quote(str(ROOT / 'examples' / ex))}" for ex in scripts)
    result = invoke(
        "run", "--mocks", "operator,pep", "--report-dir", str(tmp_path),
        "--", "sh", "-c", command,
        PEPHARNESS_EVENT_WAIT="0",
    )
    assert result.exit_code == 0, result.output
    report = summary(tmp_path)
    outcomes = {r["rule"]: r["outcome"] for r in report["rules"]}
    assert report["apis"] == ["pep_platform", "pep_frontend"]
    catalogs = (pep_platform.CATALOG, pep_frontend.CATALOG)
    assert set(outcomes) == {rule.name for catalog in catalogs for rule in catalog}
    assert set(outcomes.values()) <= {"passed", "not_verified"}, outcomes
    assert outcomes[EXERCISED[example]] == "passed"


def test_a_client_that_logs_in_per_request_fails_by_the_rule(tmp_path: Path) -> None:
    result = invoke(
        "run", "--mocks", "sinatra", "--report-dir", str(tmp_path),
        "--", sys.executable, str(LOGS_IN_PER_REQUEST),
    )
    assert result.exit_code == 1, result.output
    assert "a MUST client rule failed: check_client_reuses_its_token" in result.output
    failed = [f["rule"] for f in summary(tmp_path)["failures"]]
    assert failed == ["check_client_reuses_its_token"]
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert junit.count("<failure") == 1
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h1>pepharness run — FAIL</h1>" in page
    card = page[page.index("id='check_client_reuses_its_token'"):]
    (breach,) = next(
        r for r in summary(tmp_path)["rules"] if r["rule"] == "check_client_reuses_its_token"
    )["breaches"]
    exchange, timeline = card.split("<b>Timeline</b>", 1)
    for seq in breach["seqs"]:  # the exchange, then marked again in its timeline
        assert f"<tr class='named'><td>{seq}</td>" in exchange
        assert f"<tr class='named'><td>{seq}</td>" in timeline
    around = min(set(range(1, 5)) - set(breach["seqs"]))  # 2 logins, 2 catalog calls
    assert f"<tr class=''><td>{around}</td>" in timeline


HOSTILE = """
import os, requests
url = os.environ["PEPHARNESS_SINATRA_URL"]
login = requests.post(url + "/1.0/login/", timeout=10, json={
    "email": os.environ["PEPHARNESS_SINATRA_EMAIL"],
    "password": os.environ["PEPHARNESS_SINATRA_PASSWORD"]})
token = login.headers["jwt-auth"]
requests.get(url + "/games/<script>alert(1)</script>", params={"x": "<i>"},
             headers={"jwt-auth": token}, timeout=10)
"""


def test_the_report_page_escapes_what_the_client_sent_and_shows_the_steps(
    tmp_path: Path,
) -> None:
    """A hostile path and query reach the page as text; a scenario step is on the timeline."""
    steps = tmp_path / "step.yaml"
    steps.write_text("- {at: 0, action: clear, mock: sinatra, note: '<b>bold</b>'}\n")
    result = invoke(
        "run", "--mocks", "sinatra", "--scenario", str(steps),
        "--report-dir", str(tmp_path / "r"), "--", sys.executable, "-c", HOSTILE,
    )
    assert result.exit_code == 1, result.output
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<i>" not in page and "<b>bold" not in page
    card = page[page.index("id='check_client_requests_match_the_contract'"):]
    assert "GET /games/&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert "x=&lt;i&gt;" in card
    timeline = card.split("<b>Timeline</b>", 1)[1].split("</table>", 1)[0]
    assert "<tr class='step'>" in timeline and "&lt;b&gt;bold&lt;/b&gt;" in timeline
    assert "scenarios " + str(steps) in page


def test_a_failing_command_fails_the_run(tmp_path: Path) -> None:
    result = invoke(
        "run", "--mocks", "operator", "--report-dir", str(tmp_path),
        "--", sys.executable, "-c", "raise SystemExit(3)",
    )
    assert result.exit_code == 1, result.output
    assert result.output.rstrip().splitlines()[-1] == (
        "pepharness run: the command failed (exit 3)"
    )
    assert summary(tmp_path)["command"]["exit_code"] == 3


def test_the_command_sees_the_urls_and_credentials(tmp_path: Path) -> None:
    script = (
        "import os, requests\n"
        "url = os.environ['PEPHARNESS_OPERATOR_URL']\n"
        "assert url.startswith('http://127.0.0.1:'), url\n"
        "token = os.environ['PEPHARNESS_IDENTITY_TOKEN']\n"
        "answer = requests.post(url + '/api/auth/v1/player', json={'identityToken': token},\n"
        "                       timeout=10)\n"
        "assert answer.status_code == 200, answer.text\n"
        "assert 'PEPHARNESS_SINATRA_URL' not in os.environ\n"
    )
    result = invoke(
        "run", "--mocks", "operator", "--report-dir", str(tmp_path),
        "--", sys.executable, "-c", script,
    )
    assert result.exit_code == 0, result.output
    assert "no client rule judges the mocks served" in result.output


def test_a_command_not_found_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [*PEPHARNESS, "run", "--report-dir", str(tmp_path), "--", "no-such-command-pepharness"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == ["error: command not found: no-such-command-pepharness"]


def test_an_unwritable_report_dir_or_a_bad_option_is_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = invoke("run", "--report-dir", str(blocker / "reports"), "--", "true")
    assert result.exit_code == 2
    assert f"error: cannot write to {blocker / 'reports'}: Not a directory" in result.output
    assert invoke("run", "--mocks", "nope", "--", "true").exit_code == 2
    assert invoke("run").exit_code == 2


def test_list_rules_lists_every_client_rule() -> None:
    expected = {
        rule.name for catalog in (sinatra.CATALOG, pep_platform.CATALOG, pep_frontend.CATALOG)
        for rule in catalog
    }
    for command in ("run", "verify-client"):
        result = invoke(command, "--list-rules")
        assert result.exit_code == 0, result.output
        lines = [line.split("\t") for line in result.output.splitlines()]
        assert {fields[0] for fields in lines} == expected
        assert all(fields[1] in ("MUST", "SHOULD", "INFO") and len(fields) == 5 for fields in lines)


@pytest.fixture(scope="module")
def served_traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `serve sinatra --traffic FILE` process, a client that logs in per request, stopped."""
    path = tmp_path_factory.mktemp("verify-client") / "traffic.jsonl"
    server = subprocess.Popen(
        [*PEPHARNESS, "serve", "sinatra", "--port", "0", "--rounds", "50", "--workers", "1",
         "--traffic", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert first.startswith("sinatra on http://"), first
        url = first.split()[2]
        credentials = {"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
        for path_ in ("/vendors/1.0/view/available", "/games/1.0/view/detailed"):
            login = requests.post(f"{url}/1.0/login/", json=credentials, timeout=10)
            token = login.headers["jwt-auth"]
            assert requests.get(f"{url}{path_}", headers={"jwt-auth": token}, timeout=10).ok
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=TIMEOUT)
    return path


def test_verify_client_judges_a_served_traffic_file(served_traffic: Path, tmp_path: Path) -> None:
    result = invoke(
        "verify-client", "--traffic", str(served_traffic), "--report-dir", str(tmp_path)
    )
    assert result.exit_code == 1, result.output
    assert "a MUST client rule failed: check_client_reuses_its_token" in result.output
    report = summary(tmp_path)
    assert report["apis"] == ["sinatra"] and "command" not in report
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h1>pepharness verify-client — FAIL</h1>" in page and "command <code>" not in page
    outcomes = {r["rule"]: r["outcome"] for r in report["rules"]}
    assert outcomes["check_client_uses_basic_only_on_the_paginated_history"] == "passed"
    assert (tmp_path / "junit.xml").exists()


def test_verify_client_refuses_a_file_that_is_not_traffic(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n{}\n")
    result = invoke("verify-client", "--traffic", str(bad), "--report-dir", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "is not a traffic file" in result.output
