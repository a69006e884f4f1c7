"""`pepharness demo`: serve the mocks on loopback, tour Sinatra, check all three APIs, leave the
reports."""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from pepharness import contracts, fixtures, validation
from pepharness.mocks import operator, pep
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.sinatra import create_app

Echo = Callable[[str], None]
EXPIRED_TOKEN = "demo-expired-1"


@dataclass
class Step:
    """One request of the tour: what was expected, what came back, what broke."""

    name: str
    method: str
    path: str
    expected: int
    status: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Tour:
    """Requests against one mock, each checked for its expected status and for its contract."""

    def __init__(self, base_url: str, contract: str, echo: Echo) -> None:
        self.base_url = base_url
        self.contract = contract
        self.echo = echo
        self.session = requests.Session()
        self.steps: list[Step] = []

    def call(
        self,
        name: str,
        method: str,
        path: str,
        expected: int,
        *,
        check: Callable[[requests.Response], str | None] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        response = self.session.request(method, self.base_url + path, timeout=30, **kwargs)
        step = Step(name, method, path.split("?")[0], expected, response.status_code)
        if response.status_code != expected:
            step.problems.append(f"expected {expected}, got {response.status_code}")
        template = path.split("?")[0]
        step.problems.extend(
            contracts.response_problems(
                self.contract, method, template, response.status_code, response.headers,
                response.content,
            )
        )
        if check is not None and not step.problems and (reason := check(response)):
            step.problems.append(reason)
        self.steps.append(step)
        mark = "ok  " if step.ok else "FAIL"
        self.echo(f"{mark} {name:<58} {method} {step.path} → {response.status_code}")
        for problem in step.problems:
            self.echo(f"       {problem}")
        return response

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}/__admin{path}", timeout=30,
                                        **kwargs)
        response.raise_for_status()
        return response.json()


def _all(predicate: Callable[[Any], bool], what: str) -> Callable[[requests.Response], str | None]:
    def check(response: requests.Response) -> str | None:
        body = response.json()
        return None if body and all(predicate(item) for item in body) else what

    return check


def _equals(key: str, value: Any) -> Callable[[requests.Response], str | None]:
    def check(response: requests.Response) -> str | None:
        got = response.json().get(key)
        return None if got == value else f"{key}: expected {value!r}, got {got!r}"

    return check


def sinatra_tour(tour: Tour) -> None:
    """Every documented operation of Sinatra and the behaviours the seeds fix."""
    credentials = {"email": fixtures.OPERATOR_EMAIL, "password": fixtures.OPERATOR_PASSWORD}
    basic = (fixtures.OPERATOR_EMAIL, fixtures.OPERATOR_PASSWORD)
    login = tour.call("login: token in the jwt-auth header", "POST", "/1.0/login/", 200,
                      json=credentials)
    token = {"jwt-auth": login.headers.get("jwt-auth", "")}
    tour.call("login with a bad password is 400 (the seed's quirk)", "POST", "/1.0/login/", 400,
              json={**credentials, "password": "wrong"},
              check=_equals("errMsg", "Username or Password incorrect"))
    tour.call("any {version} behaves as 1.0", "POST", "/7.3/login/", 200, json=credentials)
    tour.call("providers", "GET", "/vendors/1.0/view/available", 200, headers=token)
    catalog = tour.call("catalog", "GET", "/games/1.0/view/detailed", 200, headers=token)
    tour.call("catalog, game_name=mega (case-insensitive substring)", "GET",
              "/games/1.0/view/detailed?game_name=mega", 200, headers=token,
              check=_all(lambda g: "mega" in g["gameName"].lower(), "a name without mega"))
    tour.call("catalog without a token is 401", "GET", "/games/1.0/view/detailed", 401,
              check=_equals("errMsg", "unauthorized"))
    tour.call("catalog with a forged token is 401", "GET", "/games/1.0/view/detailed", 401,
              headers={"jwt-auth": token["jwt-auth"][:-4] + "AAAA"})
    restricted = tour.call(
        "login as the user without permissions", "POST", "/1.0/login/", 200,
        json={"email": fixtures.RESTRICTED_EMAIL, "password": fixtures.RESTRICTED_PASSWORD},
    )
    tour.call("catalog without the permission is 403", "GET", "/games/1.0/view/detailed", 403,
              headers={"jwt-auth": restricted.headers.get("jwt-auth", "")},
              check=_equals("errMsg", "forbidden_operation"))
    game = catalog.json()[0]["gameId"] if catalog.ok and catalog.json() else "1"
    tour.call("marketing assets, seven categories", "GET", f"/games/1.0/assets/{game}", 200,
              headers=token)
    tour.call("history metadata", "GET", "/transactions/1.0/games/history/metadata", 200,
              headers=token)
    page = tour.call(
        "paginated history with Basic auth, last 30 days", "GET",
        "/transactions/1.0/games/history/api?time_period=last%2030%20days&page_size=25", 200,
        auth=basic,
    )
    tour.call("paginated history without Basic is 401", "GET",
              "/transactions/1.0/games/history/api", 401, headers=token)
    tour.call("page_size 0 is 422", "GET", "/transactions/1.0/games/history/api?page_size=0",
              422, auth=basic)
    tour.call("plain history, last 7 days", "GET",
              "/transactions/1.0/games/history?time_period=last%207%20days", 200, headers=token)
    rounds = page.json().get("responses", []) if page.ok else []
    if rounds:
        first = rounds[0]["transactions"]["good_transactions"] or rounds[0]["transactions"][
            "bad_transactions"]
        casino = first[0]["operator_id"]
        path = f"/transactions/1.0/games/round/details/{casino}/{rounds[0]['game_id']}/"
        tour.call("round details", "GET", path + rounds[0]["round_id"], 200, headers=token)
        tour.call("round details of an unknown round is 422", "GET", path + "0", 422,
                  headers=token)
    tour.admin("POST", "/rate-limit", json={"limit": 5, "period_seconds": 1})
    statuses = [
        tour.session.get(f"{tour.base_url}/transactions/1.0/games/history/api", auth=basic,
                         timeout=30).status_code
        for _ in range(5)
    ]
    tour.echo(f"     (a burst of 5 paginated requests: {statuses})")
    burst = tour.call("the 6th request within a second is 429 slow down", "GET",
                      "/transactions/1.0/games/history/api", 429, auth=basic,
                      check=_equals("errMsg", "slow down"))
    wait = burst.headers.get("Retry-After", "1")
    tour.admin("POST", "/clock", json={"advance_seconds": int(wait) if wait.isdigit() else 1})
    tour.call(f"recovered after Retry-After ({wait}s, on the mock's clock)", "GET",
              "/transactions/1.0/games/history/api", 200, auth=basic)
    fresh = tour.call("a fresh token", "POST", "/1.0/login/", 200, json=credentials)
    token = {"jwt-auth": fresh.headers.get("jwt-auth", "")}
    tour.admin("POST", "/clock", json={"advance_seconds": 19 * 60 + 59})
    tour.call("the token is accepted at 19:59", "GET", "/vendors/1.0/view/available", 200,
              headers=token)
    tour.admin("POST", "/clock", json={"advance_seconds": 2})
    tour.call("and refused at 20:01", "GET", "/vendors/1.0/view/available", 401, headers=token)
    tour.admin("POST", "/reset")


CHECK_RATE_LIMIT = (50, 1.0)
"""The served Sinatra mock's limit (D185): the tour shows the seed's 5 a second on its own, and
`check sinatra`, told the limit, verifies it without waiting a fifth of a second per request."""


@contextmanager
def served(config: dict[str, Any]) -> Iterator[str]:
    with ThreadedServer(create_app(config)) as server:
        yield server.url


def _mock_app(kind: str, config: dict[str, Any]) -> tuple[Flask, dict[str, str]]:
    """The app a demo step serves, and what the step must know of it (the operator's tokens)."""
    if kind == "sinatra":
        return create_app(config), {}
    if kind == "pep":
        return pep.create_app(config), {}
    app = operator.create_app(config)
    backend = operator.backend_of(app)
    valid = next(rule.identity_token for rule in backend.rules() if rule.seeded)
    backend.program(
        {"identityToken": EXPIRED_TOKEN, "playerId": "131918",
         "expiresAt": "2020-01-01T00:00:00Z"}
    )
    return app, {"valid": valid}


def _serve_child(kind: str, config: dict[str, Any], channel: Connection) -> None:
    """In a child process: serve the mock, send its URL (and facts), serve until told to stop."""
    try:
        app, facts = _mock_app(kind, config)
        with ThreadedServer(app, threads=16) as server:
            channel.send((server.url, facts))
            channel.recv()  # a message or the parent gone: stop
    except EOFError:
        pass
    except Exception as error:
        channel.send((None, {"error": f"{kind} mock: {error}"}))


def _served_apart(
    stack: ExitStack, kind: str, config: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    """The mock served by its own process until `stack` closes (D186: the checks run side by
    side, and one process serving every mock would be their bottleneck); its URL and facts."""
    context = multiprocessing.get_context()  # the platform's: fork on Linux, before any thread
    mine, theirs = context.Pipe()
    child = context.Process(target=_serve_child, args=(kind, config, theirs), daemon=True,
                            name=f"pepharness-demo-{kind}")
    child.start()
    theirs.close()

    def stop() -> None:
        with suppress(OSError):
            mine.send(None)
        child.join(10)
        if child.is_alive():
            child.terminate()
            child.join()
        mine.close()

    stack.callback(stop)
    url, facts = mine.recv()
    if url is None:
        raise RuntimeError(facts["error"])
    return str(url), facts


def run(seed: int, report_dir: Path, echo: Echo, *, max_examples: int = 25) -> bool:
    """The demo: contracts validated, the Sinatra mock served, toured and checked, the operator
    mock and the reference PEP checked. True when all passed."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pepharness-demo-") as folder, ExitStack() as stack:
        # Every mock up first, each in its own process, before this one starts any thread.
        url, _ = _served_apart(stack, "sinatra", {"SEED": seed, "RATE_LIMIT": CHECK_RATE_LIMIT})
        commands = _player_auth_commands(stack, Path(folder), seed, report_dir, max_examples)
        echo("1. the contracts are valid OpenAPI 3.1 and the seeds' examples fit them")
        outcomes = [*_spec_outcomes(), _golden_outcome()]
        for outcome in outcomes:
            echo(f"{'ok  ' if outcome['ok'] else 'FAIL'} {outcome['step']}")
        echo("2. the Sinatra mock, served on loopback, answers every documented operation")
        limit, period = CHECK_RATE_LIMIT
        echo(f"     serving on {url} (seed {seed})")
        tour = Tour(url, "sinatra", echo)
        sinatra_tour(tour)
        echo("3. the four checks, side by side, each on its own served mock: "
             f"`check sinatra` on the toured mock (its limit back to {limit}/{period:g} s), "
             "`check operator` on the operator mock, `check pep-frontend` and "
             "`check pep-platform` each on a reference PEP; the reports in "
             + ", ".join(str(report_dir / api) for api in CHECKED))
        commands = {"sinatra": _sinatra_command(url, seed, report_dir, max_examples), **commands}
        codes = _run_side_by_side(commands, echo)
    checked = codes["sinatra"]
    player_auth = {api: codes[api] for api in CHECKED[1:]}
    passed = (
        all(o["ok"] for o in outcomes)
        and all(s.ok for s in tour.steps)
        and checked == 0
        and all(code == 0 for code in player_auth.values())
    )
    summary = {
        "verdict": "pass" if passed else "fail",
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
        "contracts": outcomes,
        "sinatra": [{**asdict(s), "ok": s.ok} for s in tour.steps],
        "check_sinatra_exit_code": checked,
        "check_exit_codes": {"sinatra": checked, **player_auth},
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    target = report_dir / "demo-summary.json"
    target.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    failed = sum(not s.ok for s in tour.steps)
    echo(f"{'PASS' if passed else 'FAIL'}: {len(tour.steps) - failed}/{len(tour.steps)} requests "
         f"as documented, contracts {'valid' if all(o['ok'] for o in outcomes) else 'INVALID'}, "
         f"check sinatra {'passed' if checked == 0 else 'FAILED'}, "
         + "".join(f"check {api} {'passed' if code == 0 else 'FAILED'}, "
                   for api, code in player_auth.items())
         + f"{summary['seconds']}s; "
         f"summary in {target}")
    return passed


CHECKED = ("sinatra", "operator", "pep-frontend", "pep-platform")


def _check_command(api: str, url: str, seed: int, report_dir: Path, max_examples: int,
                   *options: str) -> list[str]:
    """`pepharness check API` as a user runs it."""
    return [
        sys.executable, "-m", "pepharness", "check", api, "--base-url", url, *options,
        "--report-dir", str(report_dir / api), "--seed", str(seed),
        "--max-examples", str(max_examples),
    ]


def _sinatra_command(url: str, seed: int, report_dir: Path, max_examples: int) -> list[str]:
    limit, period = CHECK_RATE_LIMIT
    return _check_command(
        "sinatra", url, seed, report_dir, max_examples,
        "--clock-control", f"{url}/__admin", "--expect-rate-limit", f"{limit}/{period:g}",
        "--workers", "1",
    )


def _run_side_by_side(commands: dict[str, list[str]], echo: Echo) -> dict[str, int]:
    """Every command at once, each one's output shown whole, in order, as it ends; the exit
    codes."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        running = {
            api: pool.submit(subprocess.run, command, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, check=False)
            for api, command in commands.items()
        }
        codes = {}
        for api, future in running.items():
            done = future.result()
            for line in done.stdout.splitlines():
                echo(line)
            codes[api] = done.returncode
    return codes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _player_auth_commands(stack: ExitStack, folder: Path, seed: int, report_dir: Path,
                          max_examples: int) -> dict[str, list[str]]:
    """The operator mock served (a seeded token, and one programmed to have expired) for `check
    operator`; a reference PEP whose operator `check pep-frontend` plays; another reference PEP
    whose clock `check pep-platform` moves. The servers stay up until `stack` closes."""
    url, facts = _served_apart(stack, "operator", {"SEED": seed})
    commands = {"operator": _check_command(
        "operator", url, seed, report_dir, max_examples,
        "--valid-token", facts["valid"], "--expired-token", EXPIRED_TOKEN,
    )}
    credentials = ("--client-id", "pep-demo-client", "--client-secret", "pep-demo-secret")
    for api in ("pep-frontend", "pep-platform"):
        harness_port = _free_port()
        url, _ = _served_apart(stack, "pep", {
            "SEED": seed, "OPERATOR_URL": f"http://127.0.0.1:{harness_port}",
            "DATABASE": str(folder / f"{api}.sqlite3"),
        })
        options: tuple[str, ...]
        if api == "pep-frontend":
            options = ("--operator-port", str(harness_port))
        else:
            options = ("--clock-control", f"{url}/__admin", "--expect-rate-limit", "100/60")
        commands[api] = _check_command(api, url, seed, report_dir, max_examples,
                                       *credentials, *options)
    return commands


def _spec_outcomes() -> list[dict[str, Any]]:
    return [
        {"step": o.step, "ok": o.ok, "problems": o.problems} for o in validation.validate_specs()
    ]


def _golden_outcome() -> dict[str, Any]:
    outcome = validation.validate_golden()
    return {"step": outcome.step, "ok": outcome.ok, "problems": outcome.problems}
