"""`pepharness fuzz` on a Locust cluster: one master and two workers on loopback against the
Sinatra mock, and the settings, plans and sub-seeds the processes share."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from pepharness.mocks.core import ThreadedServer
from pepharness.suites.fuzz.apis import APIS
from pepharness.suites.fuzz.model import Settings
from pepharness.suites.fuzz.runner import Runner
from pepharness.suites.fuzz.swarm import (
    MODULE,
    free_port,
    launch,
    plan_of,
    settings_from_json,
    settings_to_json,
    sub_seed,
    worker_settings,
)
from pepharness.suites.fuzz.swarm_master import HAR_NOTE
from pepharness.suites.options import SuiteOptions

CATALOG = "GET /games/{version}/view/detailed"
# Only the catalog: `/games/*` would also match the games' assets, a second operation.
FAULT = {"path": "/games/*/view/detailed", "method": "GET", "status": 500,
         "body": {"errMsg": "injected"}, "probability": 0.05}
TIMEOUT = 10


def swarm_processes() -> list[psutil.Process]:
    """This test process's Locust master and workers still alive."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if MODULE in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fails a test that leaves a master or worker running, and kills them (by pid)."""
    yield
    left = swarm_processes()
    for process in left:
        process.kill()
    assert not left, f"processes left running: {[p.pid for p in left]}"


# -- settings, plans and sub-seeds -------------------------------------------------------------


def full_settings() -> Settings:
    suite = SuiteOptions(
        base_url="http://127.0.0.1:1", seed=3, expect_rate_limit=(5, 1.0),
        report_dir=Path("/tmp/reports"), rules=("a", "b"), valid_tokens=("t1",),
        client_secret="secret", include_slow=True,
    )
    return Settings(
        api="sinatra", base_url="http://127.0.0.1:1", seed=7, mode="negative",
        profile={"catalog": 2.0, "generated": 1.0}, duration=3.5, requests=10, rate=2.5,
        concurrency=3, variety=8, har="findings", suite=suite,
    )


def test_settings_survive_json() -> None:
    settings = full_settings()
    data = json.loads(json.dumps(settings_to_json(settings)))
    assert settings_from_json(data) == settings
    assert settings_from_json(settings_to_json(Settings(api="operator", base_url="x"))) == \
        Settings(api="operator", base_url="x")


def test_settings_of_another_version_are_refused() -> None:
    data = settings_to_json(full_settings())
    with pytest.raises(ValueError, match="unknown Settings field"):
        settings_from_json({**data, "colour": "blue"})
    with pytest.raises(ValueError, match="unknown SuiteOptions field"):
        settings_from_json({**data, "suite": {**data["suite"], "colour": "blue"}})


def test_sub_seeds_differ_per_worker_and_are_stable() -> None:
    seeds = [sub_seed(7, index) for index in range(16)]
    assert len(set(seeds)) == 16
    assert seeds == [sub_seed(7, index) for index in range(16)]
    assert sub_seed(8, 0) != sub_seed(7, 0)
    # The same in another process (str hashes are salted per process; these must not be).
    other = subprocess.run(
        [sys.executable, "-c", f"from {MODULE} import sub_seed; print(sub_seed(7, 1))"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert int(other.stdout) == seeds[1]


def test_each_worker_plans_its_own_share_with_its_own_credentials() -> None:
    master = Settings(api="sinatra", base_url="http://master:1", seed=7, requests=601,
                      rate=10.0, variety=4, suite=SuiteOptions(password="master-secret"))
    own = Settings(api="sinatra", base_url="http://127.0.0.1:9", seed=99,
                   suite=SuiteOptions(base_url="http://127.0.0.1:9", password="own"))
    plan = json.loads(json.dumps(plan_of(master, 2)))
    assert "suite" not in plan["settings"]
    assert "master-secret" not in json.dumps(plan)
    first, second = (worker_settings(own, plan, index) for index in (0, 1))
    assert (first.seed, second.seed) == (sub_seed(7, 0), sub_seed(7, 1))
    assert first.requests == second.requests == 301
    assert first.rate == second.rate == 5.0
    assert first.base_url == own.base_url and first.suite == own.suite
    assert first.har == "none" and first.variety == 4

    def planned(settings: Settings) -> list[tuple[Any, ...]]:
        planner = Runner(settings, APIS["sinatra"](settings.suite)).planner
        return [(i.flow, i.operation, i.mode, i.number, i.seed)
                for i in (planner.next() for _ in range(40))]

    assert planned(first) == planned(worker_settings(own, plan, 0))
    assert planned(first) != planned(second)


# -- a cluster on loopback ------------------------------------------------------------------


@pytest.fixture
def faulty_catalog(sinatra_server: ThreadedServer) -> Iterator[str]:
    """The module's Sinatra mock answering 5 % of catalog reads with an injected 500."""
    url = sinatra_server.url
    answer = requests.post(f"{url}/__admin/faults", json=[FAULT], timeout=TIMEOUT)
    assert answer.status_code == 201, answer.text
    try:
        yield url
    finally:
        requests.delete(f"{url}/__admin/faults", timeout=TIMEOUT).raise_for_status()


def test_two_workers_merge_their_findings(
    faulty_catalog: str, tmp_path: Path, no_leftovers: None
) -> None:
    url = faulty_catalog
    settings = Settings(api="sinatra", base_url=url, seed=7, requests=600, concurrency=4,
                        variety=8, suite=SuiteOptions(base_url=url))
    lines: list[str] = []
    started = time.monotonic()
    code = launch(settings, workers=2, out=tmp_path, echo=lines.append, progress_every=2)
    took = time.monotonic() - started
    printed = "\n".join(lines)
    assert code == 1, printed
    assert took < 60, printed

    document = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    [finding] = document["findings"]
    assert (finding["kind"], finding["status"], finding["operation"]) == \
        ("server_error", 500, CATALOG), printed
    assert json.loads(finding["entry"]["response"]["content"]["text"]) == {"errMsg": "injected"}

    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["stopped_by"] == "requests"
    assert summary["seed"] == 7 and summary["api"] == "sinatra"
    workers = {row["index"]: row for row in summary["workers"]}
    assert set(workers) == {0, 1}
    assert [workers[i]["seed"] for i in (0, 1)] == [sub_seed(7, 0), sub_seed(7, 1)]
    # Each worker spent its share (300; a 429's retry counts as a request too).
    assert all(row["requests"] >= 300 for row in workers.values()), workers
    assert summary["requests"] == sum(row["requests"] for row in workers.values())
    assert document["requests"] == summary["requests"]
    counts = [row["findings"].get(finding["key"], 0) for row in workers.values()]
    assert finding["count"] == sum(counts) >= 1
    assert {op["operation"] for op in summary["operations"]} >= {CATALOG}
    assert HAR_NOTE in summary["notes"]
    assert finding["entry"]["_pepharness"]["worker"] in (0, 1)

    har = json.loads((tmp_path / "traffic.har").read_text(encoding="utf-8"))
    assert [entry["_pepharness"]["findings"] for entry in har["log"]["entries"]] == \
        [finding["entry"]["_pepharness"]["findings"]]
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!")

    assert "2 worker(s), 4 users, seed 7" in printed
    assert any(line.startswith("worker 0: ") for line in lines), printed
    assert any(line.startswith("worker 1: ") for line in lines), printed
    assert "from 2 Locust worker(s), stopped by requests: 1 finding(s)" in printed
    assert not any("Traceback" in line or "Warning" in line for line in lines), printed


def test_a_master_without_workers_is_a_setup_error(tmp_path: Path, no_leftovers: None) -> None:
    settings = Settings(api="sinatra", base_url="http://127.0.0.1:9", requests=10)
    lines: list[str] = []
    code = launch(settings, workers=1, out=tmp_path, role="master", master_host="127.0.0.1",
                  master_port=free_port(), connect_timeout=1, echo=lines.append)
    assert code == 2
    assert lines[-1].startswith("error: 0 of 1 Locust worker(s) connected to 127.0.0.1:"), lines
    assert lines[-1].endswith("within 1 s"), lines
    assert not any("Traceback" in line for line in lines), lines
    assert not (tmp_path / "findings.json").exists()
