"""`pepharness fuzz API`: seeded, rate-controlled fuzzed traffic from an API's contract, with
live progress, findings and a replayable HAR; on this machine or on a Locust cluster."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import requests

from pepharness.checks.common import DEFAULT_BASE_URLS, PROBE_TIMEOUT_SECONDS, CheckAborted, reach
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD
from pepharness.options import CONTEXT, Decorated, env_option
from pepharness.suites.options import (
    DEFAULT_CLIENT_ID,
    DEFAULT_OPERATOR_PORT,
    OptionError,
    SuiteOptions,
    parse_base_url,
)

DEFAULT_DURATION_SECONDS = 60.0
APIS = ("sinatra", "operator", "pep-platform", "pep-frontend")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m|min|h))?\s*$")




def parse_duration(value: str) -> float:
    """`90`, `90s`, `1.5m`, `2h`, `500ms` in seconds."""
    match = _DURATION.match(value)
    if match is None or float(match.group(1)) <= 0:
        raise OptionError(f"--duration {value!r} is not a positive time such as 30s, 5m or 1h")
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[match.group(2)]
    return float(match.group(1)) * scale


def parse_rate(value: str) -> float:
    """`50`, `50/s`, `600/m`, `3600/h` in requests a second."""
    match = _RATE.match(value)
    if match is None or float(match.group(1)) <= 0:
        raise OptionError(f"--rate {value!r} is not a positive rate such as 50/s or 600/m")
    per = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[match.group(2)]
    return float(match.group(1)) / per


def _checked(parse: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except OptionError as error:
            raise click.BadParameter(str(error)) from None

    return callback


def _common(api: str) -> Callable[[Decorated], Decorated]:
    options = [
        env_option("--base-url", default=DEFAULT_BASE_URLS[api], show_default=True,
                    callback=_checked(parse_base_url), help="The target's base URL."),
        env_option("--duration", callback=_checked(parse_duration), metavar="TIME",
                    help="Stop after this long (30s, 5m, 1h). Without --requests: 60s."),
        env_option("--requests", "request_count", type=click.IntRange(min=1), metavar="N",
                    help="Stop after N planned requests (429 retries come on top)."),
        env_option("--rate", callback=_checked(parse_rate), metavar="N/s",
                    help="At most N requests a second (50/s, 600/m). Default: as fast as the "
                    "target answers."),
        env_option("--concurrency", type=click.IntRange(1, 512), default=8, show_default=True,
                    help="Requests in flight at once (worker threads)."),
        env_option("--seed", type=int, default=42, show_default=True,
                    help="Seed of the plan: the same seed and contract send the same requests "
                    "in the same order."),
        env_option("--mode", type=click.Choice(["positive", "negative", "all"]), default="all",
                    show_default=True,
                    help="Generated requests: valid ones, ones that break the contract, or both."),
        env_option("--profile", metavar="FLOW=W,…",
                    help="The mix of realistic flows and generated requests, by weight (e.g. "
                    "catalog=3,generated=1; 0 leaves one out). See the API's --help for its "
                    "flows and default."),
        env_option("--timeout", type=click.FloatRange(min=0.1), default=10.0,
                    show_default=True, help="Seconds to wait for an answer (then: a timeout "
                    "finding)."),
        env_option("--latency-budget", type=click.FloatRange(min=1), default=1000.0,
                    show_default=True, metavar="MS",
                    help="An answer slower than this many ms is a `slow` finding."),
        env_option("--out", type=click.Path(file_okay=False, path_type=Path),
                    default=Path("reports") / "fuzz" / api, show_default=True,
                    help="Folder for findings.json, traffic.har, summary.json, report.html."),
        env_option("--har", type=click.Choice(["all", "findings", "none"]), default="all",
                    show_default=True,
                    help="What traffic.har holds: every exchange, the findings' only, none."),
        env_option("--variety", type=click.IntRange(min=1), default=64, show_default=True,
                    metavar="N", help="Distinct generated requests per operation and mode "
                    "before they are drawn again (generation costs more than sending)."),
        env_option("--quiet", is_flag=True, default=False,
                    help="No live progress line; the final summary only."),
        env_option("--locust-workers", type=click.IntRange(min=1), metavar="N",
                    help="Run as a Locust cluster on this machine: one master and N worker "
                    "processes on loopback, each with its own sub-seed. Needs Locust: "
                    "pip install 'pep-harness[locust]'."),
        env_option("--locust-role", type=click.Choice(["master", "worker"]),
                    help="One part of a Locust cluster across machines: the master (with "
                    "--expect-workers) or a worker (with --master-host)."),
        env_option("--master-host", default="127.0.0.1", show_default=True,
                    help="Locust worker: the master's address."),
        env_option("--master-port", type=click.IntRange(1, 65535), default=5557,
                    show_default=True, help="Locust: the master's port."),
        env_option("--expect-workers", type=click.IntRange(min=1), default=1,
                    show_default=True, help="Locust master: workers to wait for."),
    ]

    def decorate(function: Decorated) -> Decorated:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@click.group("fuzz", context_settings=CONTEXT)
def fuzz() -> None:
    """Send seeded, fuzzed traffic to an API and keep what broke it.

    \b
    pepharness fuzz sinatra --duration 30s             the Sinatra mock, 30 seconds
    pepharness fuzz pep-platform --rate 50/s --requests 5000 --seed 7
    pepharness fuzz sinatra --locust-workers 2         a Locust master and 2 workers

    Requests come from the API's contract (schemathesis and Hypothesis, positive and negative)
    mixed with realistic flows (--profile), authenticated as `pepharness check` does. Every
    answer is checked against the contract; 5xx, contract breaks, timeouts, connection errors
    and answers over --latency-budget are findings, deduplicated by (operation, kind, status),
    each with its smallest reproducing request as a curl line. A 429 pauses its operation for
    its Retry-After; other operations go on. Exit 0: no findings; 1: findings; 2: the run
    could not start. Re-send a recording with `pepharness replay`.
    """


def _run(api: str, suite: SuiteOptions, **given: Any) -> None:
    from pepharness.suites.fuzz.apis import APIS as FACTORIES
    from pepharness.suites.fuzz.apis import FuzzSetupError
    from pepharness.suites.fuzz.model import Settings
    from pepharness.suites.fuzz.plan import parse_profile

    if given["locust_workers"] or given["locust_role"]:
        from pepharness.suites.fuzz.swarm import LOCUST_HINT, locust_installed

        if not locust_installed():
            option = "--locust-workers" if given["locust_workers"] else "--locust-role"
            raise CheckAborted(f"fuzz {option} {LOCUST_HINT}")
    base_url: str = given["base_url"]
    duration = given["duration"]
    if duration is None and given["request_count"] is None:
        duration = DEFAULT_DURATION_SECONDS
    settings = Settings(
        api=api, base_url=base_url, seed=given["seed"], mode=given["mode"],
        duration=duration, requests=given["request_count"], rate=given["rate"],
        concurrency=given["concurrency"], timeout=given["timeout"],
        latency_budget_ms=given["latency_budget"], variety=given["variety"], har=given["har"],
        suite=suite,
    )
    out: Path = given["out"]
    try:
        # Before the run, not after it: the reports are what the run is for.
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CheckAborted(f"cannot write to {out}: {error}") from None
    if given["locust_workers"] or given["locust_role"]:
        _swarm(settings, out, given)
        return
    reach(base_url, lambda: requests.get(base_url + "/", timeout=PROBE_TIMEOUT_SECONDS))
    try:
        factory = FACTORIES[api]
        target = factory(suite)
    except FuzzSetupError as error:
        raise CheckAborted(str(error)) from None
    try:
        if given["profile"]:
            try:
                profile = parse_profile(given["profile"], [*target.flows, "generated"])
            except ValueError as error:
                raise click.BadParameter(str(error), param_hint="--profile") from None
            settings = Settings(**{**settings.__dict__, "profile": profile})
        _local(settings, target, out, quiet=given["quiet"])
    finally:
        target.close()


def _local(settings: Any, target: Any, out: Path, *, quiet: bool) -> None:
    from pepharness.suites.fuzz import output
    from pepharness.suites.fuzz.apis import FuzzSetupError
    from pepharness.suites.fuzz.runner import Runner

    live = Progress(enabled=not quiet)
    try:
        runner = Runner(settings, target, progress=live.show,
                        progress_every=1.0 if live.tty else 5.0)
        profile = ", ".join(f"{k}={v:g}" for k, v in (runner.settings.profile or {}).items())
        limit = (f"{settings.requests:,} requests" if settings.requests else "") + (
            " or " if settings.requests and settings.duration else "") + (
            f"{settings.duration:g} s" if settings.duration else "")
        click.echo(
            f"fuzzing {settings.api} at {settings.base_url}: seed {settings.seed}, mode "
            f"{settings.mode}, {limit}, concurrency {settings.concurrency}"
            + (f", rate {settings.rate:g}/s" if settings.rate else "") + f"\nprofile: {profile}",
            err=True,
        )
        runner.generating = live.generating
        result = runner.run()
    except FuzzSetupError as error:
        live.end()
        raise CheckAborted(str(error)) from None
    live.end()
    try:
        paths = output.write_result(out, result)
    except OSError as error:
        raise CheckAborted(f"cannot write to {out}: {error}") from None
    report(result.summary(), paths, click.echo)
    sys.exit(1 if len(result.findings) else 0)


def _swarm(settings: Any, out: Path, given: dict[str, Any]) -> None:
    from pepharness.suites.fuzz import swarm

    role = given["locust_role"] or "local"
    code = swarm.launch(
        settings, workers=given["locust_workers"] or 0, out=out, role=role,
        master_host=given["master_host"], master_port=given["master_port"],
        expect_workers=given["expect_workers"], echo=click.echo,
    )
    sys.exit(code)


class Progress:
    """The live line: rewritten in place on a terminal, a new line every 5 s otherwise."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._width = 0

    def show(self, snapshot: Any) -> None:
        if not self.enabled:
            return
        classes: dict[str, int] = {}
        for status, count in snapshot.statuses.items():
            name = "err" if status == "error" else "429" if status == "429" else f"{status[0]}xx"
            classes[name] = classes.get(name, 0) + count
        histogram = " ".join(f"{k} {v:,}" for k, v in sorted(classes.items()))
        line = (f"{snapshot.elapsed:7.1f} s  {snapshot.requests:>8,} req  {snapshot.rate:7.1f} "
                f"req/s  {histogram}  findings {snapshot.findings}")
        if snapshot.waiting > 0:
            line += f"  (429: waiting {snapshot.waiting:.1f} s)"
        if self.tty:
            padding = " " * max(0, self._width - len(line))
            sys.stderr.write("\r" + line + padding)
            sys.stderr.flush()
            self._width = len(line)
        else:
            click.echo(line, err=True)

    def generating(self, done: int, total: int) -> None:
        """Before the clock starts: the requests of each operation and mode generated."""
        if not self.enabled:
            return
        line = f"generating requests from the contract: {done} of {total} operation/mode pools"
        if self.tty:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
            self._width = len(line)
            if done == total:
                sys.stderr.write("\n")
                self._width = 0
        elif done == total:
            click.echo(line, err=True)

    def end(self) -> None:
        if self.enabled and self.tty and self._width:
            sys.stderr.write("\n")
            sys.stderr.flush()


def report(summary: dict[str, Any], paths: dict[str, Path], echo: Callable[[str], None]) -> None:
    """The closing lines: figures, one line per finding with its curl, and the files."""
    from pepharness.suites.fuzz.findings import one_line

    statuses = " · ".join(f"{k} {v:,}" for k, v in summary["statuses"].items())
    echo(f"{summary['api']} at {summary['base_url']}: {summary['requests']:,} requests in "
         f"{summary['duration_seconds']:.1f} s ({summary['rate']:,.1f} req/s), stopped by "
         f"{summary['stopped_by']}")
    echo(f"statuses: {statuses or 'none'}")
    findings = summary["findings"]
    if not findings:
        echo("findings: none")
    else:
        echo(f"findings ({len(findings)}):")
        for finding in findings:
            status = finding["status"]
            if status is None:
                status = finding.get("answer_status") or "-"
            echo(f"  {finding['kind']:<28} {status!s:<4} {finding['operation']}  "
                 f"x{finding['count']:,}")
            echo(f"      {finding['curl']}")
            if finding.get("excerpt"):
                echo(f"      body: {one_line(finding['excerpt'])}")
    for note in summary.get("notes", [])[:5]:
        echo(f"note: {note}")
    echo("reports: " + ", ".join(str(p) for p in paths.values()))


# -- one command per API ---------------------------------------------------------------------


@fuzz.command("sinatra", context_settings=CONTEXT)
@_common("sinatra")
@env_option("--email", default=OPERATOR_EMAIL, show_default=True,
             help="The user the requests log in as (the mock's seeded operator by default).")
@env_option("--password", default=OPERATOR_PASSWORD, show_default="the seeded operator's",
             help="That user's password.")
def fuzz_sinatra(email: str, password: str, **given: Any) -> None:
    """Fuzz a Sinatra game-catalog API.

    \b
    Flows (--profile, default login=1,catalog=3,history=0.5,rounds=1,generated=4,
    boundary=1):
      login      POST /1.0/login/ with the user's credentials
      catalog    providers, games (maybe of one provider), one game's assets
      history    pages of the paginated history, Basic auth (rate limited: 429s)
      rounds     history metadata, the last 7 days, one round's details
      generated  a request generated from contracts/sinatra.yaml (--mode)
      boundary   one boundary value (dates, int64, text that cannot be encoded, ...) as exact bytes
    """
    suite = SuiteOptions(base_url=given["base_url"], email=email, password=password,
                         seed=given["seed"])
    _run("sinatra", suite, **given)


@fuzz.command("operator", context_settings=CONTEXT)
@_common("operator")
@env_option("--valid-token", "valid_tokens", multiple=True, metavar="TOKEN",
             help="An identity token the operator answers 200 for (repeatable). Against a "
             "pep-harness operator mock it may be left out: a seeded one is used.")
def fuzz_operator(valid_tokens: tuple[str, ...], **given: Any) -> None:
    """Fuzz an operator's identity-validation endpoint.

    \b
    Flows (--profile, default validate=5,generated=5,boundary=1):
      validate   a PEP validating a valid token (one in ten: a token never issued)
      generated  a request generated from contracts/operator-identity.yaml (--mode)
      boundary   one boundary value (dates, int64, text that cannot be encoded, ...) as exact bytes
    """
    suite = SuiteOptions(base_url=given["base_url"], valid_tokens=valid_tokens,
                         seed=given["seed"])
    _run("operator", suite, **given)


@fuzz.command("pep-platform", context_settings=CONTEXT)
@_common("pep-platform")
@env_option("--client-id", default=DEFAULT_CLIENT_ID, show_default=True,
             help="The platform client the requests get their OAuth tokens as.")
@env_option("--client-secret", default=None, show_default="the reference PEP's demo secret",
             help="That client's secret.")
def fuzz_pep_platform(client_id: str, client_secret: str | None, **given: Any) -> None:
    """Fuzz a PEP's Platform gateway (OAuth client credentials, events, sync, data fetch).

    \b
    Flows (--profile, default token=1,bets=4,sync=1,fetch=0.2,generated=4,
    boundary=1):
      token      a client_credentials token, a random scope
      bets       a player's session: a login event, then 2-6 bets and wins
      sync       a bulk sync of 1-5 players, then its task
      fetch      a page of players or transactions and the next (100 a minute: 429s)
      generated  a request generated from contracts/pep-platform.yaml (--mode)
      boundary   one boundary value (dates, int64, text that cannot be encoded, ...) as exact bytes
    Event ids are made of the seed and the item: the same seed twice sends duplicates.
    """
    suite = SuiteOptions(base_url=given["base_url"], client_id=client_id,
                         client_secret=client_secret, seed=given["seed"])
    _run("pep-platform", suite, **given)


@fuzz.command("pep-frontend", context_settings=CONTEXT)
@_common("pep-frontend")
@env_option("--client-id", default=DEFAULT_CLIENT_ID, show_default=True,
             help="The API client the casino front end sends.")
@env_option("--operator-port", type=click.IntRange(1, 65535), default=DEFAULT_OPERATOR_PORT,
             show_default=True, help="The loopback port the fuzzer plays the PEP's operator on "
             "(or where a pep-harness operator mock already runs).")
def fuzz_pep_frontend(client_id: str, operator_port: int, **given: Any) -> None:
    """Fuzz a PEP's Frontend gateway, playing its operator as `check pep-frontend` does.

    \b
    Flows (--profile, default play=5,generated=5,boundary=1):
      play       a player logs in with a fresh identity token, reads the session, profile,
                 missions, leaderboard and notifications, and now and then logs out
      generated  a request generated from contracts/pep-frontend.yaml (--mode), with one
                 logged-in player's token
      boundary   one boundary value (dates, int64, text that cannot be encoded, ...) as exact bytes
    """
    suite = SuiteOptions(base_url=given["base_url"], client_id=client_id,
                         operator_port=operator_port, seed=given["seed"])
    _run("pep-frontend", suite, **given)
