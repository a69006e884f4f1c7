"""`pepharness serve operator` and `serve pep` as real subprocesses, on ports the OS picks."""

from __future__ import annotations

import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
import requests

from pepharness.mocks import pep

STARTUP_SECONDS = 60
URL = re.compile(r"^(\w+) on (http://\S+)")


class Served:
    """A `pepharness serve` subprocess whose stdout is read line by line in a thread."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pepharness", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.stdout: list[str] = []
        assert self.process.stdout is not None
        stream = self.process.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.stdout.append(line)
            self.lines.put(line)

    def url(self) -> str:
        """The base URL the server printed once it listened."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    pytest.fail(f"serve exited with {self.process.returncode}")
                continue
            if match := URL.match(line):
                return match.group(2)
        pytest.fail(f"no URL printed within {STARTUP_SECONDS}s")

    def stop(self) -> tuple[int, str]:
        """SIGINT, then (exit code, stderr)."""
        # The core's shutdown closes waitress's trigger before the worker threads are done: a
        # task still ending its last request then logs EBADF. Let them end first.
        time.sleep(0.2)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, stderr = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr


@contextmanager
def served(*args: str, env: dict[str, str]) -> Iterator[Served]:
    server = Served(*args, env=env)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without PEPHARNESS_* settings, plus `extra`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    return {**kept, **extra}


def test_serve_operator_and_pep_run_the_player_auth_process(tmp_path: Path) -> None:
    database = tmp_path / "state" / "pep.sqlite3"
    database.parent.mkdir()
    with served("operator", "--port", "0", env=environment()) as operator:
        operator_url = operator.url()
        env = environment(PEPHARNESS_OPERATOR_URL=operator_url, PEPHARNESS_DATABASE=str(database))
        with served("pep", "--port", "0", env=env) as gateway:
            pep_url = gateway.url()
            health = requests.get(f"{operator_url}/__admin/health", timeout=5).json()
            assert health == {"status": "ok", "service": "operator"}
            assert requests.get(f"{pep_url}/__admin/health", timeout=5).json()["service"] == "pep"
            token = requests.get(f"{operator_url}/__admin/tokens", timeout=5).json()["tokens"][0]
            started = requests.post(
                f"{pep_url}/api/auth/v1/player",
                json={"identityToken": token["identityToken"], "clientId": pep.DEMO_CLIENT_ID},
                timeout=10,
            )
            assert started.status_code == 200, started.text
            access = started.json()["accessToken"]
            me = requests.get(
                f"{pep_url}/api/players/v1/me", headers={"x-authorization": access}, timeout=5
            )
            assert me.json()["playerId"] == token["playerId"]
            pep_code, pep_log = gateway.stop()
        operator_code, operator_log = operator.stop()
    assert (pep_code, operator_code) == (0, 0), pep_log + operator_log
    banner = "".join(gateway.stdout)
    assert pep.DEMO_CLIENT_ID in banner and operator_url in banner and str(database) in banner
    assert "identityToken" in "".join(operator.stdout)
    assert (
        "POST /api/auth/v1/player 200" in pep_log and "POST /api/auth/v1/player 200" in operator_log
    )
    assert "Traceback" not in pep_log + operator_log, pep_log + operator_log
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT count(*) FROM player_sessions").fetchone()
    assert count == 1


def test_a_bad_engine_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "engine.yaml"
    config.write_text("segments: 5\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pepharness", "serve", "pep", "--port", "0",
         "--engine-config", str(config)],
        capture_output=True, text=True, env=environment(), timeout=60,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "engine config" in result.stderr and "Traceback" not in result.stderr


def test_a_custom_engine_config_is_served(tmp_path: Path) -> None:
    from pepharness.mocks.pep.engine import DEFAULT_CONFIG

    config = tmp_path / "engine.yaml"
    config.write_text(
        Path(DEFAULT_CONFIG).read_text(encoding="utf-8").replace("xp: 100", "xp: 120"),
        encoding="utf-8",
    )
    with served("pep", "--port", "0", "--engine-config", str(config),
                env=environment()) as gateway:
        url = gateway.url()
        grant = requests.post(
            f"{url}/api/oauth/v1/token", data={"grant_type": "client_credentials"},
            auth=(pep.DEMO_CLIENT_ID, pep.DEMO_CLIENT_SECRET), timeout=10,
        )
        deposit = {
            "playerId": "custom-1", "amount": 80, "exchangeRate": 1, "currency": "EUR",
            "date": "2026-11-20T10:00:00Z", "transactionStatus": "APPROVED",
            "transactionType": "DEPOSIT", "transactionId": "custom-d1", "realMoneyBalance": 80,
            "bonusMoneyBalance": 0,
        }
        headers = {"Authorization": f"Bearer {grant.json()['access_token']}"}
        answer = requests.post(f"{url}/rx-api/transactions/v1/money-transaction", json=deposit,
                               headers=headers, timeout=10)
        assert answer.status_code == 202
        state: dict[str, object] = {}
        for _ in range(100):
            found = requests.get(f"{url}/__admin/engine/players/custom-1", timeout=5)
            if found.status_code == 200:
                state = found.json()
                break
            time.sleep(0.05)
        gateway.stop()
    assert state["xpBalance"] == 120
    assert str(config) in "".join(gateway.stdout)


def test_quiet_serves_without_a_line_per_request() -> None:
    with served("pep", "--port", "0", "--quiet", env=environment()) as gateway:
        url = gateway.url()
        assert requests.get(f"{url}/__admin/health", timeout=5).status_code == 200
        code, log = gateway.stop()
    assert code == 0
    assert "GET /__admin/health" not in log
