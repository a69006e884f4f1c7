"""`pepharness check`: its help, and exit 2 with one line when it cannot run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from planted.variants import base_app

from pepharness.mocks.core import ThreadedServer


def pepharness(*arguments: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    return subprocess.run(
        [sys.executable, "-m", "pepharness", *arguments],
        capture_output=True, text=True, env=env, timeout=120,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with ThreadedServer(base_app()) as server:
        yield server.url


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def test_help_lists_the_apis() -> None:
    result = pepharness("check", "--help")
    assert result.returncode == 0
    for api in ("sinatra", "operator", "pep-frontend", "pep-platform"):
        assert api in result.stdout
    assert "Exit 2" in result.stdout


def test_sinatra_help_lists_the_options() -> None:
    result = pepharness("check", "sinatra", "--help")
    assert result.returncode == 0
    for option in ("--base-url", "--email", "--password", "--report-dir", "--max-examples",
                   "--workers", "--seed", "--clock-control", "--expect-rate-limit",
                   "--include-slow", "--strict", "--rules", "PEPHARNESS_BASE_URL"):
        assert option in result.stdout
    assert "check" in pepharness("--help").stdout


def test_unreachable_target_is_exit_2() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(pepharness("check", "sinatra", "--base-url", url))
    assert line == f"error: cannot reach {url}: connection refused"


def test_wrong_credentials_are_exit_2(target: str) -> None:
    line = one_line_error(
        pepharness("check", "sinatra", "--base-url", target, "--password", "not-the-password")
    )
    assert "refused the credentials of operator@example.com" in line
    assert "400" in line


def test_credentials_from_the_environment(target: str) -> None:
    env = {**os.environ, "PEPHARNESS_BASE_URL": target, "PEPHARNESS_PASSWORD": "wrong"}
    result = subprocess.run(
        [sys.executable, "-m", "pepharness", "check", "sinatra"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert "refused the credentials" in one_line_error(result)


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (("--expect-rate-limit", "five per second"), "is not N/SECONDS"),
        (("--clock-control", "somewhere"), "neither an http(s) URL nor 'none'"),
        (("--workers", "0"), "--workers '0'"),
        (("--rules", "check_nothing_like_this"), "no rule matches --rules"),
        (("--base-url", "ftp://example.com"), "is not an http(s) URL"),
    ],
)
def test_bad_options_are_exit_2(arguments: tuple[str, ...], reason: str, target: str) -> None:
    result = pepharness("check", "sinatra", "--base-url", target, *arguments)
    assert reason in one_line_error(result)


def test_unreachable_clock_control_is_exit_2(target: str) -> None:
    clock = f"http://127.0.0.1:{free_port()}/__admin"
    result = pepharness("check", "sinatra", "--base-url", target, "--clock-control", clock)
    assert "clock control" in one_line_error(result)


def test_unknown_api_is_a_usage_error() -> None:
    line = one_line_error(pepharness("check", "pep-backoffice"))
    assert line.startswith("error: No such command 'pep-backoffice' (see `"), line


def test_without_xdist_the_checks_run_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from pepharness.checks import common as check

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "xdist" else found(name, *a)
    )
    assert check._workers("auto") == "1"
    assert check._workers("1") == "1"


def test_the_checks_dependencies_are_the_packages_own() -> None:
    """A newcomer's `pip install -e .` (README's first command) must be enough to run every
    check: pytest and pytest-xdist are runtime dependencies, not only the test extra's."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads(
        (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )["project"]
    names = {dependency.split(">")[0].split("<")[0].strip() for dependency in
             project["dependencies"]}
    assert {"pytest", "pytest-xdist", "schemathesis", "hypothesis"} <= names
