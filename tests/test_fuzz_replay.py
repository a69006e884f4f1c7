"""`pepharness replay`: recorded traffic sent again to the Sinatra mock over real HTTP, and the
comparison it draws."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.mocks.core import ThreadedServer
from pepharness.replay import replay as replay_command
from pepharness.suites.fuzz.diff import DEFAULT_IGNORED, Answer, Difference, compare, diff_json
from pepharness.suites.fuzz.recording import (
    ReplayError,
    parse,
    rebase,
    request_headers,
    select,
)

PROVIDERS = "/vendors/1.0/view/available"
CATALOG = "/games/1.0/view/detailed"
TIMEOUT = 10


# -- recording -------------------------------------------------------------------------------


def har_entry(response: requests.Response, index: int, step: int = 0) -> dict[str, Any]:
    """`response` and the request behind it as a HAR entry of `pepharness fuzz` (formats.md)."""
    sent = response.request
    request: dict[str, Any] = {
        "method": sent.method,
        "url": sent.url,
        "httpVersion": "HTTP/1.1",
        "headers": [{"name": k, "value": v} for k, v in sent.headers.items()],
        "queryString": [],
        "cookies": [],
        "headersSize": -1,
        "bodySize": len(sent.body or b""),
    }
    if sent.body:
        body = sent.body if isinstance(sent.body, bytes) else sent.body.encode()
        request["postData"] = {
            "mimeType": sent.headers.get("Content-Type", ""),
            "text": body.decode(),
        }
    content_type = response.headers.get("Content-Type", "")
    return {
        "startedDateTime": "2026-11-25T09:01:02.123456+00:00",
        "time": response.elapsed.total_seconds() * 1000,
        "request": request,
        "response": {
            "status": response.status_code,
            "statusText": response.reason,
            "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in response.headers.items()],
            "cookies": [],
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(response.content),
            "content": {
                "size": len(response.content),
                "mimeType": content_type,
                "text": response.text,
            },
        },
        "cache": {},
        "timings": {"send": 0, "wait": 1, "receive": 0},
        "_pepharness": {"index": index, "step": step, "operation": "", "flow": "generated"},
    }


def timeout_entry(url: str, headers: dict[str, str], index: int, timeout: float) -> dict[str, Any]:
    """A GET of `url` that got no answer within `timeout` seconds, as recorded."""
    try:
        response = requests.get(url, headers=headers, timeout=timeout)
    except requests.Timeout:
        pass
    else:
        raise AssertionError(f"expected a timeout, got {response.status_code}")
    return {
        "startedDateTime": "2026-11-25T09:01:02.123456+00:00",
        "time": timeout * 1000,
        "request": {
            "method": "GET", "url": url, "httpVersion": "HTTP/1.1",
            "headers": [{"name": k, "value": v} for k, v in headers.items()],
            "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0,
        },
        "response": {
            "status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
            "redirectURL": "", "headersSize": -1, "bodySize": 0,
            "content": {"size": 0, "mimeType": ""},
            "_error": f"timeout: no answer within {timeout:g} s",
        },
        "cache": {},
        "timings": {"send": 0, "wait": timeout * 1000, "receive": 0},
        "_pepharness": {"index": index, "step": 0, "operation": "GET", "flow": "generated"},
    }


def write_har(path: Path, entries: list[dict[str, Any]]) -> Path:
    har = {"log": {"version": "1.2", "creator": {"name": "pepharness", "version": "0.1.0"},
                   "entries": entries}}
    path.write_text(json.dumps(har))
    return path


def run(*arguments: str | Path) -> Result:
    return CliRunner().invoke(replay_command, [str(a) for a in arguments])


def exchange_lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines()
            if line.startswith(("same", "DIFFERS", "NOT REPLAYED"))]


def finding_lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines()
            if line.startswith(("REPRODUCES", "fixed", "NOT REPLAYED"))]


@pytest.fixture
def url(sinatra_server: ThreadedServer) -> Iterator[str]:
    """The module server's base URL, its state (faults included) reset around each test."""
    requests.post(f"{sinatra_server.url}/__admin/reset", timeout=TIMEOUT).raise_for_status()
    yield sinatra_server.url
    requests.post(f"{sinatra_server.url}/__admin/reset", timeout=TIMEOUT).raise_for_status()


def login(url: str) -> requests.Response:
    response = requests.post(
        f"{url}/1.0/login/",
        json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response


def auth(url: str) -> dict[str, str]:
    return {"jwt-auth": login(url).headers["jwt-auth"]}


def fault(url: str, rule: dict[str, Any]) -> None:
    requests.post(f"{url}/__admin/faults", json=rule, timeout=TIMEOUT).raise_for_status()


@pytest.fixture
def providers_har(url: str, tmp_path: Path) -> Path:
    """One recorded GET of the providers, answered 200."""
    response = requests.get(url + PROVIDERS, headers=auth(url), timeout=TIMEOUT)
    assert response.status_code == 200
    return write_har(tmp_path / "traffic.har", [har_entry(response, 1)])


def edit_body(har: Path, change: Any) -> None:
    """Apply `change` to the first entry's recorded JSON body, in the file."""
    document = json.loads(har.read_text())
    content = document["log"]["entries"][0]["response"]["content"]
    body = json.loads(content["text"])
    change(body)
    content["text"] = json.dumps(body)
    har.write_text(json.dumps(document))


# -- replaying -------------------------------------------------------------------------------


def test_replaying_against_the_same_server_is_all_same(url: str, tmp_path: Path) -> None:
    logged_in = login(url)
    headers = {"jwt-auth": logged_in.headers["jwt-auth"]}
    entries = [
        har_entry(logged_in, 0),
        har_entry(requests.get(url + PROVIDERS, headers=headers, timeout=TIMEOUT), 1),
        har_entry(requests.get(url + CATALOG, headers=headers, timeout=TIMEOUT), 2),
        har_entry(requests.get(url + CATALOG, headers={"jwt-auth": "x"}, timeout=TIMEOUT), 3),
        har_entry(requests.get(url + "/nowhere?a=1", timeout=TIMEOUT), 4),
    ]
    # A request body recorded as base64 (as the fuzzer does for bytes that are not UTF-8).
    post = entries[0]["request"]["postData"]
    post.update(text=base64.b64encode(post["text"].encode()).decode(), _encoding="base64")
    assert [e["response"]["status"] for e in entries] == [200, 200, 200, 401, 404]
    har = write_har(tmp_path / "traffic.har", entries)

    result = run(har, "--base-url", url)

    assert result.exit_code == 0, result.output
    lines = exchange_lines(result)
    assert len(lines) == 5
    assert all(line.startswith("same") for line in lines), result.output
    assert lines[1].split()[1:6] == ["#1", "GET", PROVIDERS, "200", "->"]
    assert result.stdout.splitlines()[-1] == f"5 replayed against {url}: 5 same, 0 differ"


def test_a_body_recorded_in_part_is_compared_by_its_size_and_kept_bytes(
    url: str, tmp_path: Path
) -> None:
    response = requests.get(url + CATALOG, headers=auth(url), timeout=TIMEOUT)
    entry = har_entry(response, 1)
    content = entry["response"]["content"]
    assert content["size"] > 16_384
    content["text"] = content["text"][:16_384]  # the fuzzer keeps the first 16 KiB
    har = write_har(tmp_path / "traffic.har", [entry])
    assert run(har, "--base-url", url).exit_code == 0

    content["text"] = content["text"][:100] + "#" + content["text"][101:]
    content["size"] += 1
    write_har(har, [entry])
    result = run(har, "--base-url", url)

    assert result.exit_code == 1, result.output
    assert "    body size: changed: " in result.stdout
    assert '    body byte 100: changed: recorded "#' in result.stdout


def test_an_injected_500_differs_in_status_and_exits_1(url: str, providers_har: Path) -> None:
    fault(url, {"path": "/vendors/*", "method": "GET", "status": 500,
                "body": {"errMsg": "boom"}, "probability": 1.0})

    result = run(providers_har, "--base-url", url)

    assert result.exit_code == 1, result.output
    assert exchange_lines(result)[0].startswith(f"DIFFERS #1 GET {PROVIDERS}  200 -> 500")
    assert "    status: changed: recorded 200, now 500" in result.stdout
    assert "0 same, 1 differ" in result.stdout


def test_an_altered_recorded_body_is_reported_by_json_path(
    url: str, providers_har: Path
) -> None:
    def alter(body: Any) -> None:
        body[1]["name"] = "Someone Else"
        del body[2]["organization_name"]
        body[0]["id"] = str(body[0]["id"])

    edit_body(providers_har, alter)

    result = run(providers_har, "--base-url", url)

    assert result.exit_code == 1, result.output
    assert '$[1].name: changed value: recorded "Someone Else", now "' in result.stdout
    assert "$[2].organization_name: added (" in result.stdout
    assert "$[0].id: changed type: recorded string, now number" in result.stdout


def test_ignore_silences_a_changed_key(url: str, providers_har: Path) -> None:
    edit_body(providers_har, lambda body: body[1].update(name="Someone Else"))

    assert run(providers_har, "--base-url", url).exit_code == 1
    assert run(providers_har, "--base-url", url, "--ignore", "name").exit_code == 0
    assert run(providers_har, "--base-url", url, "--ignore", "$[1].name").exit_code == 0
    assert run(providers_har, "--base-url", url, "--ignore", "$[2].name").exit_code == 1


def test_compare_shape_ignores_values_but_not_types(url: str, providers_har: Path) -> None:
    edit_body(providers_har, lambda body: body[1].update(name="Someone Else"))
    assert run(providers_har, "--base-url", url, "--compare", "shape").exit_code == 0
    edit_body(providers_har, lambda body: body[1].update(name=7))
    result = run(providers_har, "--base-url", url, "--compare", "shape")
    assert result.exit_code == 1
    assert "$[1].name: changed type: recorded number, now string" in result.stdout
    assert run(providers_har, "--base-url", url, "--compare", "status").exit_code == 0


def test_header_replaces_a_recorded_header_and_no_value_is_printed(
    url: str, providers_har: Path, tmp_path: Path
) -> None:
    stale = "stale-token-that-must-not-be-printed"
    document = json.loads(providers_har.read_text())
    for header in document["log"]["entries"][0]["request"]["headers"]:
        if header["name"] == "jwt-auth":
            header["value"] = stale
    providers_har.write_text(json.dumps(document))
    fresh = auth(url)["jwt-auth"]

    stale_run = run(providers_har, "--base-url", url)
    fresh_run = run(
        providers_har, "--base-url", url, "--header", f"JWT-Auth: {fresh}",
        "--out", tmp_path / "report.json",
    )

    assert stale_run.exit_code == 1, stale_run.output
    assert "status: changed: recorded 200, now 401" in stale_run.stdout
    assert fresh_run.exit_code == 0, fresh_run.output
    report = (tmp_path / "report.json").read_text()
    for text in (stale_run.output, fresh_run.output, report):
        assert stale not in text and fresh not in text
    exchange = json.loads(report)["exchanges"][0]
    assert "JWT-Auth" in exchange["request"]["headers"]
    assert (exchange["recorded"]["status"], exchange["new"]["status"]) == (200, 200)


def test_a_findings_file_replays_only_the_chosen_finding(url: str, tmp_path: Path) -> None:
    headers = auth(url)
    first = har_entry(requests.get(url + PROVIDERS, headers=headers, timeout=TIMEOUT), 3)
    second = har_entry(requests.get(url + CATALOG, headers={"jwt-auth": "x"}, timeout=TIMEOUT), 9)
    findings = {
        "api": "sinatra", "base_url": url, "seed": 42, "mode": "all", "requests": 10,
        "findings": [
            {"key": "GET /vendors/{version}/view/available|server_error|500", "entry": first},
            {"key": "GET /games/{version}/view/detailed|status_code_conformance|401",
             "entry": second},
        ],
    }
    path = tmp_path / "findings.json"
    path.write_text(json.dumps(findings))

    by_number = run(path, "--base-url", url, "--finding", "2")
    by_key = run(path, "--base-url", url, "--finding", findings["findings"][1]["key"])
    unknown = run(path, "--base-url", url, "--finding", "3")

    for result in (by_number, by_key):
        # The same 401 came back: the contract finding still reproduces.
        assert result.exit_code == 1, result.output
        lines = finding_lines(result)
        assert len(lines) == 1
        assert lines[0].startswith(
            f"REPRODUCES   finding 2 status_code_conformance GET {CATALOG}  401 -> 401"
        )
        assert result.stdout.splitlines()[-1] == (
            "verdict: still reproduces: 1 of 1 finding (finding 2); 0 fixed (exit 1)"
        )
    assert unknown.exit_code == 2
    assert unknown.output == "error: no finding 3: the findings with an entry are 1, 2\n"
    both = run(path, "--base-url", url)
    assert [line.split()[:3] for line in finding_lines(both)] == [
        ["fixed", "finding", "1"], ["REPRODUCES", "finding", "2"]]


def findings_file(path: Path, url: str, *found: tuple[str, dict[str, Any]],
                  budget: float | None = None) -> Path:
    """A findings.json of `pepharness fuzz` holding (key, entry) findings."""
    document: dict[str, Any] = {"api": "sinatra", "base_url": url, "seed": 1, "mode": "all",
                                "findings": [{"key": k, "entry": e} for k, e in found]}
    if budget is not None:
        document["latency_budget_ms"] = budget
    path.write_text(json.dumps(document))
    return path


def test_the_verdict_says_whether_a_server_error_still_reproduces(
    url: str, tmp_path: Path
) -> None:
    fault(url, {"path": "/vendors/*", "method": "GET", "status": 500,
                "body": {"errMsg": "boom"}, "probability": 1.0})
    broken = requests.get(url + PROVIDERS, headers=auth(url), timeout=TIMEOUT)
    key = "GET /vendors/{version}/view/available|server_error|500"
    path = findings_file(tmp_path / "findings.json", url, (key, har_entry(broken, 4)))

    still = run(path, "--base-url", url, "--out", tmp_path / "still.json")
    requests.delete(f"{url}/__admin/faults", timeout=TIMEOUT).raise_for_status()
    fixed = run(path, "--base-url", url)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        unreachable = run(path, "--base-url", f"http://127.0.0.1:{unused.getsockname()[1]}")

    assert still.exit_code == 1, still.output
    lines = still.stdout.splitlines()
    assert len(lines) == 3 and lines[2] == f"wrote {tmp_path / 'still.json'}"
    assert lines[0].startswith(f"REPRODUCES   finding 1 server_error GET {PROVIDERS}  500 -> 500  ")
    assert " ms: a server error again (500 in " in lines[0]
    assert lines[1] == "verdict: still reproduces: 1 of 1 finding (finding 1); 0 fixed (exit 1)"
    exchange = json.loads((tmp_path / "still.json").read_text())["exchanges"][0]
    assert exchange["verdict"] == "reproduces" and exchange["reason"].startswith("a server")
    assert fixed.exit_code == 0, fixed.output
    assert finding_lines(fixed)[0].startswith("fixed        finding 1 server_error GET ")
    assert "no server error now (200 in " in fixed.stdout
    assert fixed.stdout.splitlines()[-1] == (
        "verdict: fixed: none of the 1 finding reproduces; 1 fixed (exit 0)")
    assert unreachable.exit_code == 2, unreachable.output
    assert finding_lines(unreachable)[0].startswith("NOT REPLAYED finding 1 server_error ")
    assert "the target could not be reached (Connection refused)" in unreachable.stdout
    assert unreachable.stdout.splitlines()[-1] == (
        "verdict: could not replay 1 of 1 finding; 0 fixed, 1 not replayed (exit 2)")


def test_a_slow_finding_is_judged_by_the_files_latency_budget(url: str, tmp_path: Path) -> None:
    fault(url, {"path": "/vendors/*", "method": "GET", "latency_ms": 400, "probability": 1.0})
    slow = requests.get(url + PROVIDERS, headers=auth(url), timeout=TIMEOUT)
    key = "GET /vendors/{version}/view/available|slow|-"
    entry = har_entry(slow, 2)
    path = findings_file(tmp_path / "findings.json", url, (key, entry), budget=300)

    still = run(path, "--base-url", url)
    requests.delete(f"{url}/__admin/faults", timeout=TIMEOUT).raise_for_status()
    # A generous budget: the test judges the verdict, not the machine's speed.
    findings_file(path, url, (key, entry), budget=60_000)
    fixed = run(path, "--base-url", url)

    assert still.exit_code == 1, still.output
    assert "REPRODUCES   finding 1 slow GET " in still.stdout
    assert ": over the 300 ms budget again (200 in " in still.stdout
    assert fixed.exit_code == 0, fixed.output
    assert ": within the 60,000 ms budget now (200 in " in fixed.stdout


def test_index_picks_the_entries_of_one_planned_item(url: str, tmp_path: Path) -> None:
    headers = auth(url)
    entries = [
        har_entry(requests.get(url + PROVIDERS, headers=headers, timeout=TIMEOUT), 5, step)
        for step in range(2)
    ] + [har_entry(requests.get(url + CATALOG, headers={"jwt-auth": "x"}, timeout=TIMEOUT), 6)]
    har = write_har(tmp_path / "traffic.har", entries)

    result = run(har, "--base-url", url, "--index", "5")

    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in exchange_lines(result)] == ["#5", "#5.1"]
    assert run(har, "--base-url", url, "--index", "7").exit_code == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read "),
        ("{not json", " is not JSON: "),
        ('{"entries": []}', " is neither a HAR file (log.entries) nor a findings.json"),
        ('{"log": {"entries": []}}', " holds no HAR entries"),
        ('{"log": {"entries": [{"request": {"method": "GET"}, "response": {"status": 200}}]}}',
         "entry 1 has no request.url"),
        ('{"findings": [{"key": "k"}]}', " holds no findings with a recorded entry"),
    ],
)
def test_a_file_that_cannot_be_replayed_exits_2_with_one_line(
    url: str, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_text(content)

    result = run(path, "--base-url", url)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--base-url", "ftp://example.com"], "is not an http(s) URL"),
        (["--base-url", "http://"], "is not an http(s) URL"),
        (["--base-url", "{url}", "--finding", "1"], "--finding picks from a findings.json"),
        (["--base-url", "{url}", "--header", "a-bare-secret-token"], "one has no colon"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    url: str, providers_har: Path, arguments: list[str], message: str
) -> None:
    result = run(providers_har, *[a.format(url=url) for a in arguments])

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "a-bare-secret-token" not in result.output


def test_a_recorded_timeout_matches_a_replay_that_times_out(url: str, tmp_path: Path) -> None:
    fault(url, {"path": "/vendors/*", "method": "GET", "latency_ms": 1500, "probability": 1.0})
    entry = timeout_entry(url + PROVIDERS, auth(url), 1, 0.2)
    har = write_har(tmp_path / "traffic.har", [entry])

    timed_out = run(har, "--base-url", url, "--timeout", "0.2")
    with socket.socket() as unused:  # a port nothing listens on: refused, not a timeout
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
        refused = run(har, "--base-url", closed, "--timeout", "0.2")
    requests.delete(f"{url}/__admin/faults", timeout=TIMEOUT).raise_for_status()
    answered = run(har, "--base-url", url, "--timeout", "0.2")

    assert timed_out.exit_code == 0, timed_out.output
    line = exchange_lines(timed_out)[0]
    assert line.startswith(f"same    #1 GET {PROVIDERS}  timeout -> timeout")
    assert refused.exit_code == 2, refused.output
    assert exchange_lines(refused)[0].startswith(f"NOT REPLAYED #1 GET {PROVIDERS}  timeout")
    assert "    the target could not be reached (Connection refused)" in refused.stdout
    assert refused.stdout.splitlines()[-1].endswith("0 same, 0 differ, 1 not replayed")
    assert answered.exit_code == 1, answered.output
    assert "answer: changed: recorded timeout, now 200" in answered.stdout


def test_the_installed_command_runs_the_replay(url: str, providers_har: Path) -> None:
    from pepharness.cli import cli

    if "replay" not in cli.commands:
        pytest.skip("`replay` is not registered in pepharness.cli yet")
    command = [sys.executable, "-m", "pepharness", "replay", str(providers_har), "--base-url", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"1 replayed against {url}: 1 same, 0 differ"


# -- the library, without a server -----------------------------------------------------------


def test_rebase_replaces_the_recorded_base_url_or_else_the_origin() -> None:
    recorded = "http://10.0.0.1:8101/api/games/1.0/view?operator_id=1"
    assert rebase(recorded, "https://new.example/v2/", "http://10.0.0.1:8101/api") == (
        "https://new.example/v2/games/1.0/view?operator_id=1"
    )
    assert rebase(recorded, "https://new.example", None) == (
        "https://new.example/api/games/1.0/view?operator_id=1"
    )
    assert rebase(recorded, "https://new.example", "http://elsewhere") == (
        "https://new.example/api/games/1.0/view?operator_id=1"
    )
    assert rebase("http://h/apix/a", "http://n", "http://h/api") == "http://n/apix/a"


def test_recorded_headers_are_sent_again_without_hop_by_hop_ones() -> None:
    entry = {"request": {"headers": [
        {"name": "Host", "value": "old:1"}, {"name": "Content-Length", "value": "3"},
        {"name": "Connection", "value": "keep-alive"}, {"name": "jwt-auth", "value": "old"},
        {"name": "Cookie", "value": "a=1"}, {"name": "Cookie", "value": "b=2"},
        {"name": "X-Drop", "value": "1"},
    ]}}
    sent = request_headers(entry, [("JWT-AUTH", "new"), ("x-drop", "")])
    assert sent == {"JWT-AUTH": "new", "Cookie": "a=1; b=2"}


def test_diff_json_reports_each_kind_of_difference_by_path() -> None:
    recorded = {"a": {"b": [1, 2, 3]}, "gone": True, "t": "x", "token": "old", "k y": 1}
    new = {"a": {"b": [1, 5]}, "t": None, "token": "new", "new": {}, "k y": 1.0}
    assert [d.describe() for d in diff_json(recorded, new)] == [
        "$.a.b[1]: changed value: recorded 2, now 5",
        "$.a.b[2]: missing (recorded 3)",
        "$.gone: missing (recorded true)",
        "$.t: changed type: recorded string, now null",
        "$.new: added ({})",
    ]
    assert diff_json(recorded, new, DEFAULT_IGNORED | {"b", "gone", "t", "new"}) == []
    assert [d.where for d in diff_json(recorded, new, {"$.a", "gone"})][-2:] == ["$.token", "$.new"]
    assert [d.where for d in diff_json(recorded, new, values=False)] == ["$.gone", "$.t", "$.new"]


def test_answers_without_json_are_compared_as_text_and_by_kind_of_silence() -> None:
    old = Answer(200, "text/plain", b"one\ntwo\n")
    assert compare(old, Answer(200, "text/plain", b"one\ntwo\n")) == []
    assert compare(old, Answer(200, "text/html", b"one\n2\n")) == [
        Difference("content-type", "changed", "text/plain", "text/html"),
        Difference("line 2", "changed", '"two"', '"2"'),
    ]
    timeout = Answer(0, error="timeout")
    assert compare(timeout, Answer(0, error="timeout")) == []
    assert compare(timeout, Answer(0, error="connection_error"))[0].where == "answer"


def test_select_refuses_what_the_file_does_not_hold() -> None:
    entry = {"request": {"method": "GET", "url": "http://h/x"}, "response": {"status": 200}}
    findings = parse({"findings": [{"key": "k1", "entry": entry}, {"key": "k2", "entry": entry}]})
    assert [e.finding for e in select(findings, "k2")] == ["k2"]
    with pytest.raises(ReplayError, match="no finding has the key 'k3'"):
        select(findings, "k3")
    with pytest.raises(ReplayError, match="is not an http"):
        parse({"log": {"entries": [{**entry, "request": {"method": "GET", "url": "/x"}}]}})
