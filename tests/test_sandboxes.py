"""Sandboxes (issue 14 item 5, D124 to D131): two CI jobs sharing one `serve all` do not see each
other's state, clock, faults, rate windows, journal or traffic.

One `serve all`, built by the code `serve` runs (`serving.served`) on free loopback ports with a
traffic file, serves the whole module; each test makes its own sandboxes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from click.testing import CliRunner
from conftest import conforms_to

from pepharness.cli import cli
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.mocks.core.sandbox import MAX_SANDBOXES, SANDBOX_HEADER
from pepharness.mocks.core.server import ThreadedServers
from pepharness.mocks.core.traffic import TrafficWriter, read_traffic
from pepharness.mocks.pep import DEMO_CLIENT_ID
from pepharness.serving import MOCKS, ServeOptions, served

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sinatra_client.py"
LOGS_IN_PER_REQUEST = ROOT / "tests" / "planted" / "sinatra_login_per_request_client.py"
HISTORY = "/transactions/1.0/games/history/api"
CATALOG = "/vendors/1.0/view/available"
GAMES = "/games/1.0/view/detailed"
TIMEOUT = 10
CLIENT_TIMEOUT = 120


@dataclass
class Serve:
    urls: dict[str, str]
    traffic: Path
    writer: TrafficWriter


@pytest.fixture(scope="module")
def serve_all(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    traffic = tmp_path_factory.mktemp("sandboxes") / "traffic.jsonl"
    options = ServeOptions(rounds=300)
    with (
        TrafficWriter.open(traffic) as writer,
        served(list(MOCKS.values()), options, "127.0.0.1", 0, writer) as mocks,
        ThreadedServers(mocks.apps, threads=8) as servers,
    ):
        mocks.ready(servers.urls)
        yield Serve(dict(zip(mocks.names, servers.urls, strict=True)), traffic, writer)


class Admin:
    """The sandboxes' admin API on one mock's port, every answer held to admin.yaml."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.hooks["response"].append(lambda response, **_: conforms_to("admin")(response))

    def request(self, method: str, path: str = "", **kwargs: Any) -> requests.Response:
        return self.http.request(
            method, f"{self.url}/__admin/sandboxes{path}", timeout=TIMEOUT, **kwargs
        )

    def create(self, **body: Any) -> dict[str, Any]:
        answer = self.request("POST", json=body) if body else self.request("POST")
        assert answer.status_code == 201, answer.text
        return answer.json()


@pytest.fixture
def admin(serve_all: Serve) -> Iterator[Admin]:
    admin = Admin(serve_all.urls["pep"])
    yield admin
    for sandbox in admin.request("GET").json()["sandboxes"]:
        admin.request("DELETE", f"/{sandbox['id']}")
    admin.http.close()


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, url, timeout=TIMEOUT, **kwargs)


def is_admin_404(answer: requests.Response, sandbox_id: str) -> bool:
    return (
        answer.status_code == 404
        and answer.headers["Content-Type"] == "application/json"
        and list(answer.json()) == ["error"]
        and f"no sandbox {sandbox_id!r}" in answer.json()["error"]
    )


def test_a_sandbox_is_created_listed_read_and_ended(serve_all: Serve, admin: Admin) -> None:
    sandbox = admin.create()
    sandbox_id = sandbox["id"]
    assert sandbox["header"] == SANDBOX_HEADER and sandbox["idle_seconds"] == 3600
    assert sandbox["urls"] == {
        name: f"{url}/__sandbox/{sandbox_id}" for name, url in serve_all.urls.items()
    }
    # Any mock's port serves the same registry.
    listed = Admin(serve_all.urls["sinatra"]).request("GET").json()["sandboxes"]
    assert [s["id"] for s in listed] == [sandbox_id]
    assert admin.request("GET", f"/{sandbox_id}").json()["id"] == sandbox_id
    health = call("GET", f"{sandbox['urls']['operator']}/__admin/health")
    assert health.json() == {"status": "ok", "service": "operator"}
    database = call("GET", f"{sandbox['urls']['pep']}/__admin/sessions").json()["database"]
    folder = Path(database.removeprefix("sqlite:///")).parent
    assert folder.is_dir() and folder.name.startswith(f"pepharness-sandbox-{sandbox_id}-")
    assert admin.request("DELETE", f"/{sandbox_id}").json()["id"] == sandbox_id
    assert not folder.exists()  # its PEP's database is gone with it
    assert is_admin_404(call("GET", f"{sandbox['urls']['operator']}/__admin/health"), sandbox_id)
    assert is_admin_404(admin.request("GET", f"/{sandbox_id}"), sandbox_id)
    assert is_admin_404(admin.request("DELETE", f"/{sandbox_id}"), sandbox_id)
    # Inside a sandbox there are no sandboxes.
    inner = admin.create()["urls"]["sinatra"]
    assert call("POST", f"{inner}/__admin/sandboxes").status_code == 404


def test_two_sandboxes_share_no_state(serve_all: Serve, admin: Admin) -> None:
    a, b = admin.create()["urls"], admin.create()["urls"]
    default = serve_all.urls
    # A programmed Sinatra user.
    user = {"email": "job-a@example.com", "password": "job-a-secret"}
    assert call("POST", f"{a['sinatra']}/__admin/users", json=user).status_code == 201
    assert call("POST", f"{a['sinatra']}/1.0/login/", json=user).status_code == 200
    unknown = call("POST", f"{default['sinatra']}/1.0/login/", json=user).status_code
    assert unknown != 200
    assert call("POST", f"{b['sinatra']}/1.0/login/", json=user).status_code == unknown
    # A token of the seeded user A issued opens A only (each sandbox signs with a key of its own).
    seeded_user = {"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD}
    issued = call("POST", f"{a['sinatra']}/1.0/login/", json=seeded_user)
    jwt = {"jwt-auth": issued.headers["jwt-auth"]}
    assert call("GET", f"{a['sinatra']}{GAMES}", headers=jwt).status_code == 200
    assert call("GET", f"{b['sinatra']}{GAMES}", headers=jwt).status_code == 401
    assert call("GET", f"{default['sinatra']}{GAMES}", headers=jwt).status_code == 401
    # The clock.
    moved = call("POST", f"{a['sinatra']}/__admin/clock", json={"set": "2031-05-01T00:00:00Z"})
    assert moved.json() == {"now": "2031-05-01T00:00:00.000Z"}
    for other in (b["sinatra"], default["sinatra"]):
        assert not call("GET", f"{other}/__admin/clock").json()["now"].startswith("2031")
    # A fault.
    fault = {"path": CATALOG, "status": 503, "body": {"errMsg": "down"}}
    assert call("POST", f"{a['sinatra']}/__admin/faults", json=fault).status_code == 201
    assert call("GET", f"{a['sinatra']}{CATALOG}").status_code == 503
    assert call("GET", f"{b['sinatra']}{CATALOG}").status_code == 401  # no token: the mock's own
    assert call("GET", f"{b['sinatra']}/__admin/faults").json() == {"faults": []}
    # A programmed operator token: the sandbox's PEP asks the sandbox's operator.
    seeded = call("GET", f"{a['operator']}/__admin/tokens").json()["tokens"][0]["playerId"]
    token = {"identityToken": "job-a-identity", "playerId": seeded}
    assert call("POST", f"{a['operator']}/__admin/tokens", json=token).status_code == 201
    login = {"identityToken": "job-a-identity", "clientId": DEMO_CLIENT_ID}
    assert call("POST", f"{a['pep']}/api/auth/v1/player", json=login).status_code == 200
    assert call("POST", f"{b['pep']}/api/auth/v1/player", json=login).status_code == 401
    sessions = call("GET", f"{a['pep']}/__admin/sessions").json()
    assert [s["playerId"] for s in sessions["sessions"]] == [seeded]
    assert call("GET", f"{b['pep']}/__admin/sessions").json()["sessions"] == []
    assert sessions["database"] != call("GET", f"{b['pep']}/__admin/sessions").json()["database"]
    # A rate window: 5 per second on the history, exhausted in A, still open in B.
    for other in (a["sinatra"], b["sinatra"]):
        slow = {"limit": 5, "period_seconds": 3600}  # no window ends during the test
        assert call("POST", f"{other}/__admin/rate-limit", json=slow).status_code == 200
    basic = (OPERATOR_EMAIL, OPERATOR_PASSWORD)
    query = {"time_period": "last 30 days", "page_size": 10, "page_number": 1}
    statuses = [
        call("GET", f"{a['sinatra']}{HISTORY}", params=query, auth=basic).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    assert call("GET", f"{b['sinatra']}{HISTORY}", params=query, auth=basic).status_code == 200
    # The journal.
    journal_a = call("GET", f"{a['sinatra']}/__admin/requests").json()["requests"]
    journal_b = call("GET", f"{b['sinatra']}/__admin/requests").json()["requests"]
    assert sum(e["path"] == HISTORY for e in journal_a) == 6
    assert sum(e["path"] == HISTORY for e in journal_b) == 1
    assert not any(e["path"] == "/__admin/users" for e in journal_b)
    default_journal = call("GET", f"{default['sinatra']}/__admin/requests").json()["requests"]
    assert not any(e["path"] in (HISTORY, "/__admin/users") for e in default_journal)


def test_the_header_routes_to_a_sandbox_and_an_unknown_id_is_404(
    serve_all: Serve, admin: Admin
) -> None:
    sandbox = admin.create()
    url = serve_all.urls["sinatra"]
    moved = {"set": "2031-05-01T00:00:00Z"}
    assert call("POST", f"{sandbox['urls']['sinatra']}/__admin/clock", json=moved).ok
    header = {SANDBOX_HEADER: sandbox["id"]}
    assert call("GET", f"{url}/__admin/clock", headers=header).json()["now"].startswith("2031-05")
    assert not call("GET", f"{url}/__admin/clock").json()["now"].startswith("2031-05")
    nope = {SANDBOX_HEADER: "nope"}
    assert is_admin_404(call("GET", f"{url}/__admin/clock", headers=nope), "nope")
    assert is_admin_404(call("GET", f"{url}/__sandbox/nope{CATALOG}"), "nope")
    assert is_admin_404(call("GET", f"{url}/__sandbox/"), "")


def test_without_the_admin_api_there_are_no_sandboxes() -> None:
    options = ServeOptions(rounds=10, admin=False)
    with (
        served([MOCKS["operator"]], options, "127.0.0.1", 0) as mocks,
        ThreadedServers(mocks.apps) as servers,
    ):
        mocks.ready(servers.urls)
        assert mocks.sandboxes is None
        url = servers.urls[0]
        assert call("POST", f"{url}/__admin/sandboxes").status_code == 404
        assert call("GET", f"{url}/__sandbox/x/__admin/health").status_code == 404


def test_an_unused_sandbox_ends_after_its_idle_seconds(admin: Admin) -> None:
    sandbox = admin.create(idle_seconds=1)
    assert sandbox["idle_seconds"] == 1
    deadline = time.monotonic() + 30
    while admin.request("GET", f"/{sandbox['id']}").status_code == 200:
        assert time.monotonic() < deadline, "the idle sandbox never ended"
        time.sleep(0.1)
    assert is_admin_404(call("GET", f"{sandbox['urls']['sinatra']}{CATALOG}"), sandbox["id"])


def test_the_cap_is_429_until_one_is_deleted(admin: Admin) -> None:
    ids = [admin.create()["id"] for _ in range(MAX_SANDBOXES)]
    refused = admin.request("POST")
    assert refused.status_code == 429
    assert "DELETE /__admin/sandboxes/<id>" in refused.json()["error"]
    admin.request("DELETE", f"/{ids[0]}")
    assert admin.request("POST").status_code == 201


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[]", "must be a JSON object"),
        ("{", "not valid JSON"),
        ('{"idle": 5}', "unknown key(s): idle"),
        ('{"idle_seconds": "60"}', "idle_seconds must be a number"),
        ('{"idle_seconds": true}', "idle_seconds must be a number"),
        ('{"idle_seconds": 0}', "idle_seconds must be a number from 1"),
        ('{"idle_seconds": 0.5}', "idle_seconds must be a number from 1"),
        ("\f", "the body is not valid JSON"),
        ('{"idle_seconds": 604801}', "from 1 to 604800"),
    ],
)
def test_a_bad_body_is_400(admin: Admin, body: str, reason: str) -> None:
    answer = admin.request("POST", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert reason in answer.json()["error"]


def test_socketio_connects_under_the_sandbox_prefix(serve_all: Serve, admin: Admin) -> None:
    sandbox = admin.create()
    pep = sandbox["urls"]["pep"]
    identity = call("GET", f"{sandbox['urls']['operator']}/__admin/tokens").json()["tokens"][0]
    login = {"identityToken": identity["identityToken"], "clientId": DEMO_CLIENT_ID}
    jwt = call("POST", f"{pep}/api/auth/v1/player", json=login).json()["accessToken"]
    browser = socketio.Client(reconnection=False)
    browser.connect(
        serve_all.urls["pep"], auth={"token": jwt}, wait_timeout=TIMEOUT,
        socketio_path=f"/__sandbox/{sandbox['id']}/socket.io",
    )
    try:
        assert browser.connected
    finally:
        browser.disconnect()
    connects = [line for line in lines(serve_all) if line.get("socketio")]
    assert connects[-1]["sandbox"] == sandbox["id"]
    assert connects[-1]["socketio"] == {"event": "connect", "accepted": True}


def lines(serve: Serve) -> list[dict[str, Any]]:
    assert serve.writer.sync()
    return list(read_traffic(serve.traffic))


def test_two_clients_at_once_in_two_sandboxes_get_their_own_verdicts(
    serve_all: Serve, admin: Admin, tmp_path: Path
) -> None:
    """issue 14, "Done when": the example client in A and a client that logs in per request in
    B, at the same time against one `serve all`; each sandbox's traffic is judged alone."""
    a, b = admin.create(), admin.create()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}

    def start(script: Path, url: str) -> subprocess.Popen[str]:
        env = {
            **base,
            "PEPHARNESS_SINATRA_URL": url,
            "PEPHARNESS_SINATRA_EMAIL": OPERATOR_EMAIL,
            "PEPHARNESS_SINATRA_PASSWORD": OPERATOR_PASSWORD,
            "PEPHARNESS_SINATRA_PAGE_SIZE": "1000",
        }
        return subprocess.Popen(
            [sys.executable, str(script)], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )

    jobs = [start(EXAMPLE, a["urls"]["sinatra"]), start(LOGS_IN_PER_REQUEST, b["urls"]["sinatra"])]
    for job in jobs:
        output, _ = job.communicate(timeout=CLIENT_TIMEOUT)
        assert job.returncode == 0, output

    by_sandbox: dict[Any, list[dict[str, Any]]] = {}
    for line in lines(serve_all):
        by_sandbox.setdefault(line.get("sandbox"), []).append(line)
    mine, theirs = by_sandbox[a["id"]], by_sandbox[b["id"]]
    assert any(line["path"] == HISTORY for line in mine)
    assert not any(line["path"] == HISTORY for line in theirs)
    assert [line["path"] for line in theirs].count("/1.0/login/") == 2
    assert [line["path"] for line in mine].count("/1.0/login/") == 1
    assert {line["credential"] for line in theirs}.isdisjoint(
        {line["issued"] for line in mine if line["issued"]}
    )
    assert all(line["mock"] == "sinatra" for line in mine + theirs)

    def verify(sandbox: str | None, report: str) -> Any:
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
        args = ["verify-client", "--traffic", str(serve_all.traffic),
                "--report-dir", str(tmp_path / report)]
        if sandbox is not None:
            args += ["--sandbox", sandbox]
        return CliRunner(env=env).invoke(cli, args, catch_exceptions=False)

    passed = verify(a["id"], "a")
    assert passed.exit_code == 0, passed.output
    failed = verify(b["id"], "b")
    assert failed.exit_code == 1, failed.output
    assert "a MUST client rule failed: check_client_reuses_its_token" in failed.output
    summary = json.loads((tmp_path / "b" / "summary.json").read_text(encoding="utf-8"))
    assert [f["rule"] for f in summary["failures"]] == ["check_client_reuses_its_token"]
    assert summary["sandbox"] == b["id"] and summary["apis"] == ["sinatra"]
    page = (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    assert "/1.0/login/" in page and HISTORY not in page  # B's timeline holds B's lines only
    seqs_b = {line["seq"] for line in theirs}
    rules = {r["rule"]: r for r in summary["rules"]}
    for breach in rules["check_client_reuses_its_token"]["breaches"]:
        assert set(breach["seqs"]) <= seqs_b
    # Without --sandbox: only the lines outside every sandbox.
    verify(None, "default")
    summary = json.loads((tmp_path / "default" / "summary.json").read_text(encoding="utf-8"))
    assert "sandbox" not in summary
    outside = {line["seq"] for line in by_sandbox.get(None, [])}
    for rule in summary["rules"]:
        for breach in rule["breaches"]:
            assert set(breach["seqs"]) <= outside, (rule["rule"], breach)
    # Through the serve's feed: a sandbox URL, or the serve's URL and --sandbox, judge B alone.
    for source in (b["urls"]["sinatra"], a["urls"]["sinatra"].split("/__sandbox/")[0]):
        env = {k: None for k in os.environ if k.startswith("PEPHARNESS_")}
        fed = CliRunner(env=env).invoke(
            cli,
            ["verify-client", "--admin", source, "--sandbox", b["id"],
             "--report-dir", str(tmp_path / "fed")],
            catch_exceptions=False,
        )
        assert fed.exit_code == 1, fed.output
        summary = json.loads((tmp_path / "fed" / "summary.json").read_text(encoding="utf-8"))
        assert [f["rule"] for f in summary["failures"]] == ["check_client_reuses_its_token"]
        assert summary["sandbox"] == b["id"]
