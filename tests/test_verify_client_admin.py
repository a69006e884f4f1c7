"""`GET /__admin/traffic` and `pepharness verify-client --admin URL [--since …]` (issue 14
item 2, D135-D140): a serve recording its traffic (in-process, real HTTP on a loopback port)
streams every line to any of its mocks' admin, and verify-client judges it as it judges the
file: same verdict, same rule named, same exit codes."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from planted import clients_sinatra

from pepharness import contracts
from pepharness.cli import cli
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.admin import SANDBOX_ENVIRON
from pepharness.mocks.core.traffic import NO_TRAFFIC, TrafficWriter
from pepharness.serving import MOCKS, ServeOptions, record_traffic

OPTIONS = ServeOptions(rounds=50)
TIMEOUT = 10
RULE = "check_client_reuses_its_token"


def invoke(*args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def conforms(answer: requests.Response) -> None:
    """The answer holds to admin.yaml's GET /__admin/traffic: status, header, each line."""
    problems = contracts.response_problems(
        "admin", "GET", "/__admin/traffic", answer.status_code, answer.headers, answer.content
    )
    if answer.status_code == 200:
        for line in answer.text.splitlines():
            problems += contracts.record_errors("admin", "TrafficLine", json.loads(line))
    assert not problems, problems


def seqs(answer: requests.Response) -> list[int]:
    return [json.loads(line)["seq"] for line in answer.text.splitlines()]


def well_behaved(url: str) -> None:
    token = clients_sinatra.login(url)
    for path in (clients_sinatra.CATALOG, clients_sinatra.GAMES):
        assert clients_sinatra.catalog(url, token, path).ok


def next_millisecond() -> datetime:
    """The next whole millisecond of the wall clock, once it has come: every line recorded
    before it is stamped before it, every line after at or after it (stamps are cut to ms)."""
    now = datetime.now(UTC)
    mark = now.replace(microsecond=now.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
    while datetime.now(UTC) < mark:
        pass
    return mark


class Served:
    """A sinatra mock recording to `path`: a client that logs in per request, then (after
    `cut_seq` and `cut_time`) a well-behaved one."""

    def __init__(
        self, server: ThreadedServer, operator: ThreadedServer, writer: TrafficWriter, path: Path
    ) -> None:
        self.writer, self.path = writer, path
        self.url, self.operator_url = server.url, operator.url

        def admin(method: str, path_: str, body: Any) -> Any:
            return requests.request(method, f"{self.url}/__admin{path_}", json=body).json()

        clients_sinatra.logs_in_per_request(self.url, admin)
        self.cut_seq = int(self.feed().headers["X-Pepharness-Traffic-Seq"])
        self.cut_time = next_millisecond()
        well_behaved(self.url)

    def feed(self, query: str = "", **headers: str) -> requests.Response:
        return requests.get(f"{self.url}/__admin/traffic{query}", headers=headers, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    path = tmp_path_factory.mktemp("feed") / "traffic.jsonl"
    spec, operator_spec = MOCKS["sinatra"], MOCKS["operator"]
    with TrafficWriter.open(path) as writer, ThreadedServer(
        record_traffic(spec.build(OPTIONS), spec, writer)
    ) as server, ThreadedServer(
        record_traffic(operator_spec.build(OPTIONS), operator_spec, writer)
    ) as operator:
        yield Served(server, operator, writer, path)


def test_the_feed_holds_every_exchange_answered_before_it(served: Served) -> None:
    answer = served.feed()
    assert answer.status_code == 200, answer.text
    conforms(answer)
    assert answer.headers["Content-Type"] == "application/x-ndjson"
    upto = int(answer.headers["X-Pepharness-Traffic-Seq"])
    lines = [json.loads(line) for line in answer.text.splitlines()]
    # Every line numbered before the GET, in order, none missing: the writer had settled.
    assert [line["seq"] for line in lines] == list(range(1, upto + 1))
    assert {line["path"] for line in lines} >= {"/1.0/login/", clients_sinatra.GAMES}
    served.writer.settle()
    on_file = [json.loads(line) for line in served.path.read_text().splitlines()[:upto]]
    assert on_file == lines


def test_any_mock_of_the_process_serves_every_mock_s_lines(served: Served) -> None:
    health = requests.get(f"{served.operator_url}/__admin/health", timeout=TIMEOUT)
    assert health.ok
    by_sinatra = served.feed()
    by_operator = requests.get(f"{served.operator_url}/__admin/traffic", timeout=TIMEOUT)
    conforms(by_operator)
    lines = by_sinatra.text.splitlines()
    assert by_operator.text.splitlines()[: len(lines)] == lines
    assert {json.loads(line)["mock"] for line in lines} == {"sinatra", "operator"}


class Gate(io.StringIO):
    """A stream whose writes wait until the gate opens: a writer stalled on its disk."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def write(self, text: str) -> int:
        self.open.wait()
        return super().write(text)


def test_settle_waits_for_the_lines_numbered_before_it_and_no_longer_than_told() -> None:
    gate = Gate()
    with TrafficWriter(gate) as writer:
        numbered = [writer.record({"mock": "sinatra", "n": n}) for n in range(3)]
        assert writer.settle(timeout=0.05) == 3  # the disk stalls: the bound holds
        settled: list[int] = []
        waiting = threading.Thread(target=lambda: settled.append(writer.settle(timeout=60)))
        waiting.start()
        gate.open.set()
        waiting.join()
        assert settled == [3]
        assert [json.loads(line)["seq"] for line in gate.getvalue().splitlines()] == numbered


def test_since_and_limit_page_the_feed(served: Served) -> None:
    assert seqs(served.feed("?since=2&limit=3")) == [3, 4, 5]
    assert seqs(served.feed("?since=0005&limit=1")) == [6]
    assert seqs(served.feed(f"?since={served.cut_seq}"))[0] == served.cut_seq + 1
    assert seqs(served.feed("?since=999999999999999999")) == []


@pytest.mark.parametrize(
    "query",
    ["since=-1", "since=x", "since=", "since=1.5", "since=1000000000000000000", "limit=0",
     "limit=-3", "limit=ten", "limit=" + "9" * 5000],
)
def test_bad_since_or_limit_is_a_400(served: Served, query: str) -> None:
    answer = served.feed("?" + query)
    assert answer.status_code == 400
    conforms(answer)
    name = query.split("=")[0]
    assert answer.json()["error"].startswith(f"{name} must be an integer from ")


def test_verify_client_admin_judges_as_the_file_does(served: Served, tmp_path: Path) -> None:
    by_file = invoke("verify-client", "--traffic", str(served.path), "--report-dir",
                     str(tmp_path / "file"))
    by_admin = invoke("verify-client", "--admin", served.url, "--report-dir",
                      str(tmp_path / "admin"))
    for result in (by_file, by_admin):
        assert result.exit_code == 1, result.output
        assert f"a MUST client rule failed: {RULE}" in result.output
    outcomes = [
        {r["rule"]: r["outcome"] for r in json.loads((tmp_path / d / "summary.json").read_text())
         ["rules"]}
        for d in ("file", "admin")
    ]
    assert outcomes[0] == outcomes[1]
    copy = (tmp_path / "admin" / "traffic.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in copy][:3] == [1, 2, 3]
    assert f"into {tmp_path / 'admin' / 'traffic.jsonl'}" in by_admin.output


def test_since_cuts_the_run_by_seq_or_time(served: Served, tmp_path: Path) -> None:
    cuts = {
        "admin-seq": ("--admin", f"{served.url}/__admin/", "--since", str(served.cut_seq)),
        "admin-time": ("--admin", served.url, "--since", served.cut_time.isoformat()),
        "file-seq": ("--traffic", str(served.path), "--since", str(served.cut_seq)),
        "file-time": ("--traffic", str(served.path), "--since",
                      served.cut_time.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"),
    }
    for name, args in cuts.items():
        result = invoke("verify-client", *args, "--report-dir", str(tmp_path / name))
        assert result.exit_code == 0, (name, result.output)
        judged = [json.loads(line) for line in (tmp_path / name / "traffic.jsonl").open()]
        assert judged and all(line["seq"] > served.cut_seq for line in judged), name
        report = json.loads((tmp_path / name / "summary.json").read_text())
        assert {r["rule"]: r["outcome"] for r in report["rules"]}[RULE] == "passed"


def test_a_serve_without_traffic_is_exit_2_with_the_message(tmp_path: Path) -> None:
    with ThreadedServer(MOCKS["sinatra"].build(OPTIONS)) as bare:
        url = bare.url
        answer = requests.get(f"{url}/__admin/traffic", timeout=TIMEOUT)
        assert answer.status_code == 404 and answer.json() == {"error": NO_TRAFFIC}
        conforms(answer)
        result = invoke("verify-client", "--admin", url, "--report-dir", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {url}: {NO_TRAFFIC}"


def test_no_pepharness_or_nothing_there_is_exit_2(tmp_path: Path) -> None:
    no_admin = ServeOptions(rounds=50, admin=False)
    with ThreadedServer(MOCKS["sinatra"].build(no_admin)) as other:
        url = other.url
        result = invoke("verify-client", "--admin", url, "--report-dir", str(tmp_path))
    assert result.exit_code == 2
    assert f"{url} is not a pepharness serve: GET /__admin/traffic answered 404" \
        in result.output
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = invoke("verify-client", "--admin", closed, "--report-dir", str(tmp_path))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert f"cannot read the traffic of {closed}: " in result.output
    result = invoke("verify-client", "--admin", "ftp://x", "--report-dir", str(tmp_path))
    assert result.exit_code == 2 and "is not an http(s) URL" in result.output


def test_exactly_one_source_and_a_readable_since(served: Served, tmp_path: Path) -> None:
    report = ("--report-dir", str(tmp_path))
    for args in ((), ("--traffic", str(served.path), "--admin", served.url)):
        result = invoke("verify-client", *args, *report)
        assert result.exit_code == 2
        assert "give exactly one of --traffic FILE or --admin URL" in result.output
    for since in ("yesterday", "-1", "2026-12-07T10:00:00", "1" * 19):
        result = invoke("verify-client", "--admin", served.url, "--since", since, *report)
        assert result.exit_code == 2 and "Invalid value for '--since'" in result.output


def _sandboxed(app: Callable[..., Any]) -> Callable[..., Any]:
    """The sandbox branch's selection, reduced to a header: `X-Sandbox` sets the environ key."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "HTTP_X_SANDBOX" in environ:
            environ[SANDBOX_ENVIRON] = environ["HTTP_X_SANDBOX"]
        return app(environ, start_response)

    return wsgi


def test_a_sandbox_sees_only_its_own_lines(tmp_path: Path) -> None:
    spec = MOCKS["operator"]
    with TrafficWriter.open(tmp_path / "traffic.jsonl") as writer:
        app = record_traffic(spec.build(OPTIONS), spec, writer)
        app.wsgi_app = _sandboxed(app.wsgi_app)  # type: ignore[method-assign]
        with ThreadedServer(app) as server:
            line = {"mock": "operator", "method": "GET", "path": "/x", "status": 200}
            ours = [writer.record({**line, "sandbox": "job-1"}) for _ in range(2)]
            theirs = writer.record({**line, "sandbox": "job-2"})
            health = requests.get(f"{server.url}/__admin/health", timeout=TIMEOUT)
            assert health.ok

            def feed(**headers: str) -> list[dict[str, Any]]:
                answer = requests.get(
                    f"{server.url}/__admin/traffic", headers=headers, timeout=TIMEOUT
                )
                assert answer.status_code == 200
                return [json.loads(text) for text in answer.text.splitlines()]

            assert [e["seq"] for e in feed(**{"X-Sandbox": "job-1"})] == ours
            assert [e["seq"] for e in feed(**{"X-Sandbox": "job-2"})] == [theirs]
            default = feed()
            assert default and all("sandbox" not in e for e in default)
            assert "/__admin/health" in {e["path"] for e in default}
