"""`pepharness serve` as a real subprocess: it serves, logs, stops on Ctrl-C, fails in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from click.testing import CliRunner

from pepharness.cli import cli
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.serving import MOCKS, default_workers

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pepharness(*args: str) -> list[str]:
    return [sys.executable, "-m", "pepharness", *args]


def environment() -> dict[str, str]:
    """The test's environment without PEPHARNESS_* settings that would change the options."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}


def wait_for_health(url: str, process: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}: {process.communicate()}")
        try:
            return dict(requests.get(f"{url}/__admin/health", timeout=1).json())
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer within {STARTUP_SECONDS}s")


def test_serve_sinatra_answers_then_stops_cleanly_on_sigint() -> None:
    port = free_port()
    process = subprocess.Popen(
        pepharness("serve", "sinatra", "--port", str(port), "--rounds", "200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environment(), "PEPHARNESS_RATE_LIMIT": "7/2"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_health(url, process) == {"status": "ok", "service": "sinatra"}
        login = requests.post(
            f"{url}/1.0/login/",
            json={"email": OPERATOR_EMAIL, "password": OPERATOR_PASSWORD},
            timeout=5,
        )
        assert login.status_code == 200
        limit = requests.get(f"{url}/__admin/rate-limit", timeout=5).json()
        assert limit == {"limit": 7, "period_seconds": 2.0}  # read from the environment
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert url in stdout and OPERATOR_EMAIL in stdout and OPERATOR_PASSWORD in stdout
    # Without --workers: the cores this process may use (D220), said in the banner.
    cores = default_workers([MOCKS["sinatra"]])
    # ... and the threads: 8 in one process, 4 in each of several (D225)
    assert (
        "One process serves (8 threads" if cores == 1
        else f"{cores} worker processes serve each port (4 threads each)"
    ) in stdout
    assert "POST /1.0/login/ 200" in stderr  # one log line per request
    assert "Traceback" not in stderr


def test_a_taken_port_is_a_one_line_error_with_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            pepharness("serve", "sinatra", "--port", str(port), "--rounds", "0"),
            capture_output=True,
            text=True,
            timeout=60,
            env=environment(),
        )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0]


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "sinatra", "--rate-limit", "5"),
        ("serve", "sinatra", "--rate-limit", "0/1"),
        ("serve", "sinatra", "--port", "70000"),
        ("serve", "sinatra", "--threads", "0"),
        ("serve", "nothing"),
        ("serve", "all", "--port", "8101"),
    ],
)
def test_a_bad_option_is_exit_2_without_traceback(args: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, args, env={"PEPHARNESS_PORT": None})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Error" in result.output
