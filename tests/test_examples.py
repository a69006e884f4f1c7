"""The example clients of examples/ run, as an integrator would run them, against the real mocks
on loopback: each exits 0 with its summary line, also when the mock misbehaves once (a 429, a
5xx, a 401 programmed through `/__admin/faults`), and what the mock's journal recorded is the
behaviour the examples promise (pages in order, the same event resent, no token per call)."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any  # the clients of tests/conftest.py (SinatraClient, MockClient)

import pytest

from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.mocks.core import ThreadedServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUN_TIMEOUT = 60


def run_example(name: str, **env: str) -> str:
    """Runs examples/NAME as a subprocess configured by `env` alone (no PEPHARNESS_* of the
    caller's environment leaks in); asserts exit 0 and returns its summary line."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    clean["NO_PROXY"] = clean["no_proxy"] = "127.0.0.1,localhost"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return lines[0]


def fields(summary: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", summary))


def journal(client: Any, path_prefix: str) -> list[dict[str, Any]]:
    """The requests the mock received (oldest first) whose path starts with `path_prefix`."""
    entries = client.admin("GET", "/requests?limit=200")["requests"]
    entries.sort(key=lambda entry: entry["id"])
    return [entry for entry in entries if entry["path"].startswith(path_prefix)]


def fault(client: Any, path: str, status: int) -> None:
    client.admin("POST", "/faults", json={"path": path, "status": status, "times": 1})


# -- Sinatra -----------------------------------------------------------------------------------

HISTORY = "/transactions/1.0/games/history/api"


def test_sinatra_client_reads_the_catalog_and_walks_every_page(sinatra: Any) -> None:
    summary = run_example(
        "sinatra_client.py",
        PEPHARNESS_SINATRA_URL=sinatra.base_url,
        PEPHARNESS_SINATRA_PAGE_SIZE="90",
    )
    assert summary.startswith("sinatra_client: OK "), summary
    got = fields(summary)
    assert got["logins"] == "1" and got["retries"] == "0"

    pages = journal(sinatra, HISTORY)
    total = sinatra.get(
        HISTORY,
        params={"time_period": "last 30 days", "page_size": 90},
        auth=(OPERATOR_EMAIL, OPERATOR_PASSWORD),
    ).json()["total_count"]
    last = math.ceil(total / 90)
    assert last >= 2 and got["history_pages"] == str(last)
    answered = [int(entry["query"]["page_number"]) for entry in pages if entry["status"] == 200]
    assert answered == list(range(1, last + 1))
    asked = [int(entry["query"]["page_number"]) for entry in pages]
    assert asked == sorted(asked)  # a page the rate limit refused (5 a second) is asked again
    assert {entry["auth"] for entry in pages} == {"basic"}
    catalog = [e for e in journal(sinatra, "/") if not e["path"].startswith(("/__admin", HISTORY))]
    assert [e["auth"] for e in catalog] == [None, "jwt-auth", "jwt-auth", "jwt-auth"]


def test_sinatra_client_survives_a_429_a_500_and_a_401(sinatra: Any) -> None:
    fault(sinatra, "/transactions/*/games/history/api", 429)
    fault(sinatra, "/games/*/view/detailed", 500)
    fault(sinatra, "/vendors/*/view/available", 401)
    summary = run_example("sinatra_client.py", PEPHARNESS_SINATRA_URL=sinatra.base_url)
    assert summary.startswith("sinatra_client: OK "), summary
    got = fields(summary)
    assert (got["logins"], got["retries"], got["rate_limited"]) == ("2", "1", "1"), summary
    history = journal(sinatra, HISTORY)
    asked = [int(entry["query"]["page_number"]) for entry in history]
    assert asked[:2] == [1, 1] and asked == sorted(asked)  # the 429'd page again, then on
    answered = [int(e["query"]["page_number"]) for e in history if e["status"] == 200]
    assert answered == list(range(1, int(got["history_pages"]) + 1))
    catalog = journal(sinatra, "/vendors/")
    assert [e["status"] for e in catalog] == [401, 200]


# -- PEP Platform and Frontend -----------------------------------------------------------------

MONEY = "/rx-api/transactions/v1/money-transaction"


def test_platform_client_resends_the_same_event_and_pages_to_the_end(pep: Any) -> None:
    fault(pep, MONEY, 503)
    fault(pep, "/rx-api/players-data/v1/login", 401)
    env = {"PEPHARNESS_PEP_URL": pep.base_url, "PEPHARNESS_PEP_FETCH_LIMIT": "2"}
    summary = run_example("platform_client.py", **env)
    assert summary.startswith("platform_client: OK "), summary
    got = fields(summary)
    assert (got["tokens"], got["retries"], got["duplicates"]) == ("2", "1", "0"), summary
    assert (got["fetch_pages"], got["fetch_items"], got["bulk_stored"]) == ("2", "3", "2/2")
    sent = journal(pep, MONEY)
    assert [e["status"] for e in sent] == [503, 202]
    fetches = journal(pep, "/api/data-fetch/")
    assert "next" not in fetches[0]["query"] and "next" in fetches[1]["query"]

    again = fields(run_example("platform_client.py", **env))  # the same job once more
    # the deposit and the round again: duplicates, counted once (the login is one too when
    # both runs fall in the same second: its key is the player and the date)
    assert again["duplicates"] in ("3", "4") and again["fetch_items"] == "3", again


def test_platform_client_never_retries_a_400(pep: Any) -> None:
    fault(pep, MONEY, 400)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "platform_client.py")],
        env={**clean, "PEPHARNESS_PEP_URL": pep.base_url, "NO_PROXY": "127.0.0.1,localhost"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "platform_client: FAILED" in done.stderr and "HTTP 400" in done.stderr
    assert [e["status"] for e in journal(pep, MONEY)] == [400]


def test_frontend_client_logs_in_again_and_hears_its_deposit(
    pep: Any, operator_server: ThreadedServer
) -> None:
    fault(pep, "/api/players/v1/me", 401)
    summary = run_example(
        "frontend_client.py",
        PEPHARNESS_PEP_URL=pep.base_url,
        PEPHARNESS_OPERATOR_URL=operator_server.url,
        PEPHARNESS_PEP_CLIENT_SECRET="pep-demo-secret",
        PEPHARNESS_FRONTEND_DEPOSIT="1",
        PEPHARNESS_EVENT_WAIT="30",  # an upper bound only: it returns once a push came
    )
    assert summary.startswith("frontend_client: OK "), summary
    got = fields(summary)
    assert got["logins"] == "2" and got["deposit"] == "sent"
    assert int(got["pushed"]) >= 1, summary
    player_calls = [e for e in journal(pep, "/api/") if not e["path"].startswith("/api/oauth")]
    assert {e["auth"] for e in player_calls if e["path"] != "/api/auth/v1/player"} == {
        "x-authorization"
    }


@pytest.mark.parametrize("name", ["sinatra_client.py", "platform_client.py", "frontend_client.py"])
def test_every_example_documents_its_environment(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    readme = (EXAMPLES / "README.md").read_text()
    for variable in set(re.findall(r'env\("(PEPHARNESS_\w+)"', text)):
        assert variable in text.split('"""')[1], f"{name}: {variable} not in its docstring"
        assert variable in readme, f"examples/README.md: {variable} missing"


# -- the Sinatra client's token, in process (no subprocess: the token's lifetime is 20 minutes) --


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sinatra_client_renews_its_token_and_logs_in_after_expiry(sinatra: Any) -> None:
    example = load_example("sinatra_client")
    client = example.Sinatra(sinatra.base_url, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    try:
        client.get("/vendors/1.0/view/available")
        first = client.token
        assert example.lifetime(first) == 20 * 60  # read from the token's iat/exp
        client.get("/vendors/1.0/view/available")
        assert (client.logins, client.token) == (1, first)  # reused
        sinatra.advance(60)  # (a token issued in the same second would be the same token)
        client.renew_at = 0.0  # the renewal time has come (a minute before the 20 minutes)
        client.get("/vendors/1.0/view/available")
        second = client.token
        assert client.logins == 2 and second != first
        sinatra.advance(20 * 60 + 1)  # expired on the mock's clock: a 401, then a new login
        client.get("/vendors/1.0/view/available")
        assert client.logins == 3 and client.token not in (first, second)
    finally:
        client.http.close()
    statuses = [e["status"] for e in journal(sinatra, "/vendors/")]
    assert statuses == [200, 200, 200, 401, 200]
