"""Shared fixtures: the Sinatra mock over real HTTP, and the one client all HTTP tests go through.

Every response an HTTP test receives passes through the hooks of `response_hooks` (session
scoped, empty by default): a contract validator plugs in there, in one place, e.g.

    @pytest.fixture(scope="session")
    def response_hooks() -> list[ResponseHook]:
        return [validate_against_contract]
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask

from pepharness import contracts
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD, Dataset
from pepharness.mocks.core import ThreadedServer, parse_rfc3339, to_rfc3339
from pepharness.mocks.sinatra import backend_of, create_app

ResponseHook = Callable[[requests.Response], None]

SERVER_ROUNDS = 1500
"""Rounds of the module servers: enough for every window, quick to generate."""

TIMEOUT = 10


class SinatraClient:
    """A `requests.Session` on one Sinatra mock; paths are relative to `base_url`.

    Every response goes through each hook of `on_response` before the test sees it.
    """

    def __init__(self, base_url: str, on_response: Sequence[ResponseHook] = ()) -> None:
        self.base_url = base_url
        self.on_response = list(on_response)
        self.session = requests.Session()

    def clone(self) -> SinatraClient:
        """Another client (its own connection pool, for another thread), same hooks."""
        return SinatraClient(self.base_url, self.on_response)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        response = self.session.request(method, self.base_url + path, **kwargs)
        for hook in self.on_response:
            hook(response)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # -- the API's credentials -------------------------------------------------------------

    def login(self, email: str = OPERATOR_EMAIL, password: str = OPERATOR_PASSWORD) -> str:
        """A fresh `jwt-auth` token."""
        response = self.post("/1.0/login/", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.headers["jwt-auth"]

    def as_user(
        self, email: str = OPERATOR_EMAIL, password: str = OPERATOR_PASSWORD
    ) -> dict[str, str]:
        """`jwt-auth` headers of a fresh login."""
        return {"jwt-auth": self.login(email, password)}

    # -- the control API -------------------------------------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, "/__admin" + path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def reset(self) -> None:
        self.admin("POST", "/reset")

    def now(self) -> datetime:
        return parse_rfc3339(self.admin("GET", "/clock")["now"])

    def set_clock(self, when: datetime) -> datetime:
        return parse_rfc3339(self.admin("POST", "/clock", json={"set": to_rfc3339(when)})["now"])

    def advance(self, seconds: float) -> datetime:
        return parse_rfc3339(self.admin("POST", "/clock", json={"advance_seconds": seconds})["now"])

    def rate_limit(self, limit: int, period_seconds: float) -> None:
        self.admin("POST", "/rate-limit", json={"limit": limit, "period_seconds": period_seconds})

    def add_user(
        self,
        email: str,
        password: str,
        permissions: Sequence[int | str] = (),
        operators: Sequence[int] = (),
    ) -> Any:
        body = {
            "email": email,
            "password": password,
            "permissions": list(permissions),
            "available_operators": list(operators),
        }
        return self.admin("POST", "/users", json=body)


def conforms_to_contract(response: requests.Response) -> None:
    """Every answer of a documented operation validates against its contract: the status is
    documented, the body fits its schema, the declared headers are there and well formed.
    Paths of no operation (unknown routes, login without its slash) are the tests' own
    business."""
    path = urlsplit(response.url).path
    contract = "admin" if path.startswith("/__admin") else "sinatra"
    method = response.request.method or "GET"
    if contracts.match_operation(contract, method, path) is None:
        return
    problems = contracts.response_problems(
        contract, method, path, response.status_code, response.headers, response.content
    )
    assert not problems, "\n".join(problems)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than there are cores. A good part of the suite waits on
    servers, rate-limit windows and the clock rather than computing (measured on 2 cores:
    7 min 52 s with 3 workers, 8 min 40 s with 2)."""
    return (os.cpu_count() or 1) + 1


LONGEST_FIRST = (
    "tests/test_demo.py::",
    "passes_every_rule",
    "pass_every_rule_under_every_builtin",
    "test_operator_mock_already_there",
    "survives_a_restart",
)
"""The tests that take the longest (each a whole `check` or the demo; `--durations`): started
first, so that no worker starts one of them near the end while the others sit idle."""


def pytest_configure(config: pytest.Config) -> None:
    """`-n` hands out work by stealing rather than in fixed chunks (pytest-xdist's `worksteal`):
    the first chunk holds the longest tests, and idle workers take what a busy one has not
    started (an explicit `--dist` other than `load` is kept)."""
    if getattr(config.option, "numprocesses", None) and config.option.dist == "load":
        config.option.dist = "worksteal"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        found = (i for i, part in enumerate(LONGEST_FIRST) if part in item.nodeid)
        return next(found, len(LONGEST_FIRST))

    items.sort(key=rank)


@pytest.fixture(scope="session")
def response_hooks() -> list[ResponseHook]:
    """Called with every response of the HTTP tests."""
    return [conforms_to_contract]


@pytest.fixture(scope="module")
def sinatra_app() -> Flask:
    """A Sinatra mock of SERVER_ROUNDS rounds ending now, shared by one test module."""
    return create_app({"SEED": 42, "ROUNDS": SERVER_ROUNDS, "ANCHOR": datetime.now(UTC)})


@pytest.fixture(scope="module")
def sinatra_server(sinatra_app: Flask) -> Iterator[ThreadedServer]:
    with ThreadedServer(sinatra_app, threads=8) as server:
        yield server


@pytest.fixture(scope="module")
def sinatra_data(sinatra_app: Flask) -> Dataset:
    """The served dataset, as the oracle of the HTTP tests."""
    return backend_of(sinatra_app).data


@pytest.fixture
def sinatra(
    sinatra_server: ThreadedServer, response_hooks: list[ResponseHook]
) -> Iterator[SinatraClient]:
    """A client of the module's server, whose state is reset first."""
    client = SinatraClient(sinatra_server.url, response_hooks)
    client.reset()
    yield client
    client.session.close()


# -- the operator identity mock and the reference PEP, over real HTTP --------------------------

PEP_OPERATOR_TIMEOUT = 1.0
"""The module PEP's connect and read timeouts towards the operator: short, so a slow operator
is a 504 within about a second."""


def conforms_to(contract: str) -> ResponseHook:
    """A hook holding every answer of `contract`'s operations (and `/__admin`'s, of admin.yaml)
    to its contract; paths of no operation are the tests' own business."""

    def hook(response: requests.Response) -> None:
        path = urlsplit(response.url).path
        name = "admin" if path.startswith("/__admin") else contract
        method = response.request.method or "GET"
        if contracts.match_operation(name, method, path) is None:
            return
        problems = contracts.response_problems(
            name, method, path, response.status_code, response.headers, response.content
        )
        assert not problems, "\n".join(problems)

    return hook


class MockClient(SinatraClient):
    """A client of the operator or PEP mock: the same HTTP and /__admin plumbing, every
    response checked by `contract`'s hook."""

    def __init__(self, base_url: str, contract: str) -> None:
        super().__init__(base_url, [conforms_to(contract)])
        self.contract = contract
        self.session.trust_env = False


@pytest.fixture(scope="module")
def operator_app() -> Flask:
    """An operator identity mock (seed 42), shared by one test module."""
    from pepharness.mocks import operator

    return operator.create_app({"SEED": 42})


@pytest.fixture(scope="module")
def operator_server(operator_app: Flask) -> Iterator[ThreadedServer]:
    with ThreadedServer(operator_app, threads=8) as server:
        yield server


@pytest.fixture
def operator(operator_server: ThreadedServer) -> Iterator[MockClient]:
    """A client of the module's operator mock, whose state is reset first."""
    client = MockClient(operator_server.url, "operator-identity")
    client.reset()
    yield client
    client.session.close()


@pytest.fixture(scope="module")
def pep_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SQLite file of the module's PEP."""
    return str(tmp_path_factory.mktemp("pep") / "pep.sqlite3")


@pytest.fixture(scope="module")
def pep_app(operator_app: Flask, operator_server: ThreadedServer, pep_database: str) -> Flask:
    """A reference PEP calling the module's operator mock, with the operator's players."""
    from pepharness.mocks import operator, pep

    config = {
        "SEED": 42,
        "ANCHOR": operator.backend_of(operator_app).data.anchor,
        "OPERATOR_URL": operator_server.url,
        "OPERATOR_CONNECT_TIMEOUT": PEP_OPERATOR_TIMEOUT,
        "OPERATOR_READ_TIMEOUT": PEP_OPERATOR_TIMEOUT,
        "DATABASE": pep_database,
    }
    return pep.create_app(config)


@pytest.fixture(scope="module")
def pep_server(pep_app: Flask) -> Iterator[ThreadedServer]:
    # A long-polling Socket.IO client holds a worker thread for its poll (up to 25 s); a WebSocket
    # runs on its own thread and holds none (D86).
    with ThreadedServer(pep_app, threads=32) as server:
        yield server


@pytest.fixture
def pep(pep_server: ThreadedServer, operator: MockClient) -> Iterator[MockClient]:
    """A client of the module's PEP (state reset first; its operator's too)."""
    client = MockClient(pep_server.url, "pep-frontend")
    client.reset()
    yield client
    client.session.close()


# -- PostgreSQL -------------------------------------------------------------------------------
# A real server for the PEP's database tests on PostgreSQL: initdb + pg_ctl from the
# distribution's packages (.ci/run installs them) in a temporary folder, on a free loopback
# port, for the whole session (one per xdist worker). As root, it runs as the `postgres` user
# (initdb refuses root).


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found is None:
        versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        found = versions[-1] if versions else None
    return found


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    """The SQLAlchemy URL of the session's PostgreSQL server (its `postgres` database);
    skipped with the reason when initdb, pg_ctl or psycopg is missing."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (the `test` extra has it)")
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)")
    as_user: list[str] = []
    folder = tempfile.mkdtemp(prefix="pepharness-pg-")
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a `postgres` user for initdb")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(folder, "data")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = os.path.join(folder, "log")

    def run(command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            said = (done.stderr or done.stdout).strip()
            if os.path.exists(log):
                said += "\n" + Path(log).read_text(encoding="utf-8", errors="replace")[-2000:]
            shutil.rmtree(folder, ignore_errors=True)
            pytest.fail(f"{command[len(as_user)]} failed: {said}")

    run([*as_user, initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
         "--no-sync", "--no-instructions"])
    options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
               " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    run([*as_user, pg_ctl, "-D", data, "-l", log, "-o", options,
         "-w", "-t", "60", "start"])
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgresql(postgresql_server: str) -> str:
    """`postgresql_server`'s URL with none of the PEP's tables: a test starts empty."""
    from sqlalchemy import create_engine

    from pepharness.mocks.pep import engine as _tables  # noqa: F401 (its tables)
    from pepharness.mocks.pep.store import metadata

    engine = create_engine(postgresql_server)
    metadata.drop_all(engine)
    engine.dispose()
    return postgresql_server
