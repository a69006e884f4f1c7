"""The pieces of `pepharness check` that need no target: verdicts, merged results, reports,
curl lines, Retry-After, the shared request budget, option parsing, rule selection."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from pepharness.suites import report
from pepharness.suites.http import Secrets, curl_line, retry_after_seconds
from pepharness.suites.jwts import jwt_claims
from pepharness.suites.options import OptionError, parse_clock_control, parse_rate_limit
from pepharness.suites.rules import Level, Rule, RuleCatalog, matches, operation_matches
from pepharness.suites.sinatra.client import transaction_ids
from pepharness.suites.sinatra.rules import RULES
from pepharness.suites.throttle import SharedWindow


def result(rule: str, level: str, outcome: str, operation: str | None = "GET /x") -> dict[str, Any]:
    return {
        "rule": rule, "level": level, "source": "D1", "summary": "s", "api": "sinatra",
        "operation": operation, "outcome": outcome, "reason": "", "duration": 0.5,
        "failure": {"title": "t", "received": "r", "documented": "d", "curl": "curl x"}
        if outcome == "failed" else None,
    }


def part(*results: dict[str, Any], observed: list[list[Any]] | None = None) -> dict[str, Any]:
    return {"phase": "all", "apis": ["sinatra"], "options": {"base_url": "http://t", "seed": 3},
            "results": list(results), "observed": observed or []}


@pytest.mark.parametrize(
    ("level", "outcome", "strict", "verdict"),
    [
        ("MUST", "failed", False, "fail"),
        ("MUST", "error", False, "fail"),
        ("MUST", "not_verified", False, "pass"),
        ("SHOULD", "failed", False, "pass"),
        ("SHOULD", "failed", True, "fail"),
        ("INFO", "failed", True, "pass"),
    ],
)
def test_verdict(level: str, outcome: str, strict: bool, verdict: str) -> None:
    results = [result("check_a", "MUST", "passed"), result("check_b", level, outcome)]
    assert report.verdict_of(results, strict) == verdict


def test_a_rule_on_one_operation_is_one_result_and_the_worst_outcome_wins() -> None:
    merged = report.merge_results([
        result("check_a", "MUST", "passed"),
        result("check_a", "MUST", "failed"),
        result("check_a", "MUST", "not_verified", "GET /y"),
        result("check_a", "MUST", "passed", "GET /y"),
    ])
    assert {(r["operation"], r["outcome"]) for r in merged} == {("GET /x", "failed"),
                                                               ("GET /y", "passed")}


def test_coverage_names_observed_and_never_exercised_statuses() -> None:
    observed = [["POST", "/1.0/login/", 200, 3], ["POST", "/2/login/", 418, 1],
                ["GET", "/__admin/clock", 200, 5]]
    summary = report.summarize([part(result("check_a", "MUST", "passed"), observed=observed)],
                               strict=False, wall_time=1.0)
    login = next(row for row in summary["coverage"] if row["operation_id"] == "loginUser")
    assert login["observed"] == {"200": 3, "418": 1}
    assert login["never_exercised"] == ["400", "500"]
    assert login["undocumented_observed"] == ["418"]


def test_reports_are_written(tmp_path: Path) -> None:
    source = tmp_path / "part.json"
    source.write_text(__import__("json").dumps(part(
        result("check_a", "MUST", "passed"), result("check_b", "SHOULD", "failed"),
        result("check_c", "MUST", "not_verified"),
    )))
    summary = report.render(tmp_path, [source], strict=False, wall_time=12.5)
    assert summary["wall_time_seconds"] == 12.5 and summary["verdict"] == "pass"
    root = ET.parse(tmp_path / report.JUNIT).getroot()
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("skipped") == "1"
    failure = root.find(".//testcase/failure")
    assert failure is not None and failure.get("type") == "SHOULD"
    assert "Reproduce:  curl x" in (failure.text or "")
    html = (tmp_path / report.HTML).read_text(encoding="utf-8")
    assert "<style>" in html and "http://" not in html.replace("http://t", "")
    assert "Contract coverage" in html and "check_b" in html


def test_curl_line_hides_secrets_behind_variables() -> None:
    secrets = Secrets()
    secrets.hide_basic("op@x.com", "s3cret", "PEPHARNESS_EMAIL", "PEPHARNESS_PASSWORD")
    secrets.hide("tok.en", "$JWT_AUTH")
    login = requests.Request("POST", "http://h/1.0/login/",
                             json={"email": "op@x.com", "password": "s3cret", "x": "$HOME"},
                             headers={"jwt-auth": "tok.en"}).prepare()
    line = curl_line(login, secrets)
    assert "s3cret" not in line and "tok.en" not in line
    assert '"jwt-auth: $JWT_AUTH"' in line and '\\"$PEPHARNESS_PASSWORD\\"' in line
    assert "\\$HOME" in line
    paged = requests.Request("GET", "http://h/a", auth=("op@x.com", "s3cret")).prepare()
    assert '-u "$PEPHARNESS_EMAIL:$PEPHARNESS_PASSWORD"' in curl_line(paged, secrets)


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=5), usegmt=True),
                               now) == 5.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-1") is None


def test_shared_window_keeps_to_its_budget(tmp_path: Path) -> None:
    window = SharedWindow(tmp_path / "budget.json", limit=3, period=0.3)
    other = SharedWindow(tmp_path / "budget.json", limit=3, period=0.3)
    started = time.monotonic()
    for budget in (window, other, window):
        assert budget.acquire() == 0.0
    waited = other.acquire()
    assert waited > 0.2 and time.monotonic() - started >= 0.3


@pytest.mark.parametrize("value", ["5", "5/0", "0/1", "x/y", "5/inf"])
def test_rate_limit_must_be_n_per_seconds(value: str) -> None:
    with pytest.raises(OptionError):
        parse_rate_limit(value)


def test_option_parsing() -> None:
    assert parse_rate_limit("100/60") == (100, 60.0)
    assert parse_clock_control("none") is None
    assert parse_clock_control("http://h:1/__admin/") == "http://h:1/__admin"


def test_rule_selection_by_glob() -> None:
    rule = Rule("check_token_lifetime_is_20_minutes", Level.MUST, "D4", "s")
    assert matches(rule, []) and matches(rule, ["check_token_*"])
    assert not matches(rule, ["check_page*"])
    assert operation_matches("GET /games/{version}/view/detailed", ["GET /games/*"])
    assert operation_matches(None, ["POST /*"])
    with pytest.raises(ValueError, match="starts with check_"):
        Rule("token_lifetime", Level.MUST, "D4", "s")
    catalog = RuleCatalog("x")
    catalog.add("check_one", Level.MUST, "s", "s")
    with pytest.raises(ValueError, match="already registered"):
        catalog.add("check_one", Level.MUST, "s", "s")


def test_every_sinatra_rule_names_its_level_and_source() -> None:
    assert len(RULES) >= 45
    for rule in RULES:
        assert rule.level in (Level.MUST, Level.SHOULD, Level.INFO)
        assert rule.source and rule.summary and rule.api == "sinatra"


def test_transaction_identity_keeps_the_type() -> None:
    page = {"responses": [{"round_id": "7", "transactions": {
        "good_transactions": [{"round_id": "7", "trans_id": "1", "type": "wager"},
                              {"round_id": "7", "trans_id": "1", "type": "result"}],
        "bad_transactions": []}}]}
    assert transaction_ids(page) == [("7", "1", "wager"), ("7", "1", "result")]
    assert jwt_claims("opaque-token") is None


def test_jwt_operations_leave_out_the_login_and_the_basic_history() -> None:
    from pepharness.suites.sinatra.client import jwt_operations

    operations = jwt_operations()
    assert len(operations) == 6
    assert "POST /{version}/login/" not in operations
    assert "GET /transactions/{version}/games/history/api" not in operations
