"""Fixtures for an integrator's own pytest suite (issue 14 item 6, D120, D121).

Session-scoped and lazy: a mock starts the first time a test asks for it and stops at the end
of the session (one per xdist worker). Each yields a small handle: `.url`, `.admin` (the
`/__admin` API) and the seeded credentials.

    def test_catalog(pepharness_sinatra):
        response = requests.post(f"{pepharness_sinatra.url}/1.0/login/", json={
            "email": pepharness_sinatra.email, "password": pepharness_sinatra.password})

With `--pepharness-judge-clients` (or the ini option `pepharness_judge_clients = true`) every
request the mocks receive is recorded, judged by the client judges at the end of the session,
the table printed in the terminal summary, and the session fails (exit 1) when a MUST client
rule failed. Off by default.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD, generate

if TYPE_CHECKING:
    from pepharness.serving import ServeOptions

# D188: this plugin is loaded by every pytest process of the environment (each check's and its
# workers): the mocks (Flask, SQLAlchemy: ~1.5 s) are imported when a fixture serves one.
DEMO_CLIENT_ID = "pep-demo-client"
"""pepharness.mocks.pep.DEMO_CLIENT_ID (tests/test_pytest_fixtures.py keeps them equal)."""
DEMO_CLIENT_SECRET = "pep-demo-secret"

OPTION = "--pepharness-judge-clients"
INI = "pepharness_judge_clients"
TRAFFIC_DIR = "PEPHARNESS_FIXTURE_TRAFFIC_DIR"
"""Where each worker writes its mocks' traffic; set by the controller for its xdist workers."""
SEED = 42
"""ServeOptions().seed (tests/test_pytest_fixtures.py keeps them equal)."""
_results_key = pytest.StashKey[list[dict[str, Any]]]()
_dir_key = pytest.StashKey[tuple[Path, str | None]]()


@dataclass(frozen=True)
class Admin:
    """The mock's `/__admin` API; each call raises `requests.HTTPError` on an error answer."""

    url: str

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.url}/__admin{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def clock_advance(self, seconds: float) -> str:
        """Move the mock's clock forward; returns its new time (RFC 3339)."""
        now: str = self._call("POST", "/clock", {"advance_seconds": seconds})["now"]
        return now

    def faults(self, rules: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add fault rules (the `POST /__admin/faults` format)."""
        added: list[dict[str, Any]] = self._call("POST", "/faults", rules)["faults"]
        return added

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def rate_limit(self, limit: int, period_seconds: float) -> None:
        self._call("POST", "/rate-limit", {"limit": limit, "period_seconds": period_seconds})

    def reset(self) -> None:
        """State, clock, faults and journal back to the seed's."""
        self._call("POST", "/reset")

    def requests(self) -> list[dict[str, Any]]:
        """The request journal, newest last as the mock keeps it."""
        journal: list[dict[str, Any]] = self._call("GET", "/requests")["requests"]
        return journal


@dataclass(frozen=True)
class MockHandle:
    url: str
    admin: Admin


@dataclass(frozen=True)
class SinatraHandle(MockHandle):
    email: str = OPERATOR_EMAIL
    password: str = OPERATOR_PASSWORD


@dataclass(frozen=True)
class OperatorHandle(MockHandle):
    identity_tokens: tuple[str, ...] = field(default=())

    def identity_token(self, index: int = 0) -> str:
        """A seeded player's identity token (the first by default)."""
        return self.identity_tokens[index]


@dataclass(frozen=True)
class PepHandle(MockHandle):
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pepharness")
    group.addoption(
        OPTION, action="store_true", default=None, dest="pepharness_judge_clients",
        help="Judge the requests the pepharness_* fixtures' mocks received by the client rules "
        "at the end of the session; a failed MUST rule fails the session.",
    )
    parser.addini(INI, "as --pepharness-judge-clients", type="bool", default=False)


def _judging(config: pytest.Config) -> bool:
    flag = config.getoption("pepharness_judge_clients", None)
    return bool(config.getini(INI) if flag is None else flag)


def pytest_configure(config: pytest.Config) -> None:
    if not _judging(config):
        return
    if hasattr(config, "workerinput"):  # an xdist worker: the controller's folder
        config.stash[_dir_key] = (Path(os.environ[TRAFFIC_DIR]), None)
        return
    directory = Path(tempfile.mkdtemp(prefix="pepharness-traffic-"))
    config.stash[_dir_key] = (directory, os.environ.get(TRAFFIC_DIR))
    os.environ[TRAFFIC_DIR] = str(directory)


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or _dir_key not in config.stash:
        return
    directory, previous = config.stash[_dir_key]
    if previous is None:
        os.environ.pop(TRAFFIC_DIR, None)
    else:
        os.environ[TRAFFIC_DIR] = previous
    shutil.rmtree(directory, ignore_errors=True)


def _serve(config: pytest.Config, name: str, options: ServeOptions) -> Iterator[str]:
    from pepharness.mocks.core import ThreadedServer
    from pepharness.mocks.core.traffic import TrafficWriter
    from pepharness.serving import MOCKS, record_traffic

    spec = MOCKS[name]
    app = spec.build(options)
    writer = None
    if _dir_key in config.stash:
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        writer = TrafficWriter.open(config.stash[_dir_key][0] / f"{worker}-{name}.jsonl")
        record_traffic(app, spec, writer)
    try:
        with ThreadedServer(app) as server:
            yield server.url
    finally:
        if writer is not None:
            writer.close()


@pytest.fixture(scope="session")
def pepharness_sinatra(pytestconfig: pytest.Config) -> Iterator[SinatraHandle]:
    """The Sinatra mock (seed 42), its admin API and the seeded user's login."""
    from pepharness.serving import ServeOptions

    for url in _serve(pytestconfig, "sinatra", ServeOptions()):
        yield SinatraHandle(url, Admin(url))


@pytest.fixture(scope="session")
def pepharness_operator(pytestconfig: pytest.Config) -> Iterator[OperatorHandle]:
    """The operator identity mock and the seeded players' identity tokens."""
    players = generate(SEED, anchor=datetime.now(UTC), rounds=0).players
    tokens = tuple(p.identity_token for p in players)
    from pepharness.serving import ServeOptions

    for url in _serve(pytestconfig, "operator", ServeOptions()):
        yield OperatorHandle(url, Admin(url), tokens)


@pytest.fixture(scope="session")
def pepharness_pep(
    pytestconfig: pytest.Config, pepharness_operator: OperatorHandle
) -> Iterator[PepHandle]:
    """The reference PEP (Platform and Frontend), calling the `pepharness_operator` mock."""
    from pepharness.serving import ServeOptions

    options = ServeOptions(operator_url=pepharness_operator.url)
    for url in _serve(pytestconfig, "pep", options):
        yield PepHandle(url, Admin(url))


def _merged(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per rule over every worker's traffic: failed beats passed beats not verified."""
    rank = {"failed": 2, "passed": 1, "not_verified": 0}
    merged: dict[str, dict[str, Any]] = {}
    for result in results:
        kept = merged.get(result["rule"])
        if kept is None:
            merged[result["rule"]] = {**result, "breaches": list(result["breaches"])}
            continue
        kept["breaches"].extend(result["breaches"])
        if rank[result["outcome"]] > rank[kept["outcome"]]:
            kept["outcome"] = result["outcome"]
    levels = ["MUST", "SHOULD", "INFO"]
    return sorted(merged.values(), key=lambda r: (levels.index(r["level"]), r["rule"]))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or _dir_key not in config.stash:
        return
    from pepharness.run import APIS, judge_file

    results: list[dict[str, Any]] = []
    for path in sorted(config.stash[_dir_key][0].glob("*.jsonl")):
        mock = path.stem.rsplit("-", 1)[1]
        apis = [api for api in APIS if api.mock == mock]
        results.extend(v.result() for v in judge_file(path, apis, SEED))
    merged = _merged(results)
    config.stash[_results_key] = merged
    failed = [r for r in merged if r["outcome"] == "failed" and r["level"] == "MUST"]
    if failed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(_results_key, None)
    if results is None:
        return
    from pepharness.run import _table

    terminalreporter.section("pepharness client verdict")
    if not results:
        terminalreporter.write_line("  no pepharness_* mock with a client judge was used")
        return
    _table(results, echo=terminalreporter.write_line, rest="")
    failed = [r["rule"] for r in results if r["outcome"] == "failed" and r["level"] == "MUST"]
    if failed:
        terminalreporter.write_line(f"a MUST client rule failed: {', '.join(failed)}")
