"""The one command line, `pepharness`: demo, serve, contracts, fixtures.

The contract machinery (jsonschema's format checkers) takes a second to import: the commands
that need it import it when they run, so `serve` starts fast.
"""

from __future__ import annotations

import math
import sys
from contextlib import nullcontext
from datetime import UTC, date, datetime, time
from pathlib import Path

import click

from pepharness import fixtures as fixture_data
from pepharness.checks.group import check as check_command
from pepharness.fuzz import fuzz as fuzz_command
from pepharness.mocks.core import ServeError, serve_many
from pepharness.mocks.core.state_traffic import SharedTrafficWriter
from pepharness.mocks.core.traffic import TrafficWriter
from pepharness.options import CONTEXT, env_option
from pepharness.outputs import folder_problem
from pepharness.replay import replay as replay_command
from pepharness.run import run as run_command
from pepharness.run import verify_client as verify_client_command
from pepharness.runner import CannotRun, OneLineErrors, writable
from pepharness.serving import (
    MOCKS,
    SINGLE_PROCESS_THREADS,
    WORKER_MOCKS,
    WORKER_THREADS,
    ServeOptions,
    access_log,
    default_workers,
    served,
)

seed_option = env_option(
    "--seed", type=int, default=42, show_default=True, help="Seed of the generated data."
)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="pep-harness", prog_name="pepharness")
def cli() -> None:
    """Mocks, contracts and conformance suites for Groove's Sinatra game-catalog API and the
    Player Engagement Platform (PEP).

    \b
    pepharness demo                    serve the mocks, exercise them, validate every answer
    pepharness serve sinatra           run the Sinatra mock on http://127.0.0.1:8101
    pepharness serve all               run every mock, each on its default port
    pepharness check sinatra --base-url URL    conformance of any Sinatra implementation
    pepharness check operator --valid-token T  an operator's identity-validation endpoint
    pepharness check pep-frontend              a PEP's Frontend gateway (plays its operator)
    pepharness check pep-platform              a PEP's Platform gateway (OAuth, events, data)
    pepharness fuzz sinatra --duration 30s     seeded, fuzzed traffic; findings, HAR, report
    pepharness fuzz operator                   the same for an operator's identity endpoint
    pepharness fuzz pep-platform --requests N  ... and a PEP's Platform gateway
    pepharness replay FILE --base-url URL      re-send a recorded HAR or finding, diff answers
    pepharness run -- CMD              serve the mocks to CMD, then judge its requests
    pepharness verify-client --admin URL       judge the client traffic a serve recorded
    pepharness contracts validate      the contracts are valid and the data fits them
    pepharness fixtures dump --out D   write the seeded data the mocks serve as JSON

    Every command and option: docs/commands.md.
    """


@cli.group(context_settings=CONTEXT)
def contracts() -> None:
    """The OpenAPI 3.1 contracts in contracts/."""


@contracts.command("validate", context_settings=CONTEXT)
@seed_option
@env_option(
    "--records",
    type=click.IntRange(min=0),
    default=None,
    help="Validate only the first N generated records (default: every one).",
)
def contracts_validate(seed: int, records: int | None) -> None:
    """Check every contract is valid OpenAPI 3.1, every example in it and every golden example
    of the seeds fits its schema, and every record the seeded generator makes fits its schema.

    Exit 0 when everything validates, 1 when anything does not (each problem is listed).
    """
    from pepharness import validation

    anchor = datetime.now(UTC)
    outcomes = validation.validate_specs()
    outcomes.append(validation.validate_golden())

    interactive = sys.stderr.isatty()

    def progress(done: int) -> None:
        click.echo(f"\r  generated records validated: {done}", nl=False, err=True)

    outcomes.append(
        validation.validate_generated(seed, anchor, records, progress if interactive else None)
    )
    if interactive:
        click.echo("\r\033[K", nl=False, err=True)
    failed = 0
    for outcome in outcomes:
        mark = "ok  " if outcome.ok else "FAIL"
        click.echo(f"{mark} {outcome.step}: {outcome.checked} checked")
        for problem in outcome.problems[:20]:
            click.echo(f"       {problem}")
        if len(outcome.problems) > 20:
            click.echo(f"       … and {len(outcome.problems) - 20} more")
        failed += not outcome.ok
    checked = sum(o.checked for o in outcomes)
    if failed:
        click.echo(f"{failed} of {len(outcomes)} steps failed ({checked} documents checked)")
        sys.exit(1)
    click.echo(f"all {len(outcomes)} steps passed ({checked} documents checked)")


@cli.group(context_settings=CONTEXT)
def fixtures() -> None:
    """The seeded data the mocks serve."""


@fixtures.command("dump", context_settings=CONTEXT)
@seed_option
@env_option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the JSON files to (created if missing).",
)
@env_option(
    "--anchor",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The date the data ends at (00:00 UTC); history spans the eight months before it."
    "  [default: today]",
)
@env_option(
    "--rounds",
    type=click.IntRange(min=1),
    default=4000,
    show_default=True,
    help="Number of game rounds (each 1-6 transactions).",
)
def fixtures_dump(seed: int, out: Path, anchor: datetime | None, rounds: int) -> None:
    """Write the data generated from SEED as JSON files: the same seed and anchor give the same
    bytes. Exit 2 when --out cannot be written (checked before generating anything)."""
    problem = folder_problem(out)
    if problem is not None:
        raise CannotRun(problem)
    day = anchor.date() if anchor is not None else date.today()
    data = fixture_data.generate(seed, anchor=datetime.combine(day, time(), UTC), rounds=rounds)
    try:
        written = fixture_data.dump(data, out)
    except OSError as error:
        raise CannotRun(f"cannot write to {out}: {error.strerror or error}") from None
    for path in written:
        click.echo(f"wrote {path}")


def rate_limit_value(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, float]:
    """`N/SECONDS` (N requests per SECONDS seconds, e.g. 5/1 or 100/60) as (N, SECONDS)."""
    limit, slash, period = value.partition("/")
    try:
        parsed = (int(limit), float(period))
    except ValueError:
        parsed = (0, 0.0)
    if not slash or parsed[0] < 1 or not math.isfinite(parsed[1]) or parsed[1] < 0.001:
        raise click.BadParameter(f"{value!r} is not N/SECONDS with N >= 1 and SECONDS >= 0.001")
    return parsed


class ServeFailure(click.ClickException):
    """A server could not start: one line, exit 2 (a usage problem, like a taken port)."""

    exit_code = 2


@cli.command(context_settings=CONTEXT)
@click.argument("mock", type=click.Choice([*MOCKS, "all"]))
@env_option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@env_option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on (0: any free port). [default: "
    + ", ".join(f"{mock.name} {mock.default_port}" for mock in MOCKS.values())
    + "; not with `all`]",
)
@seed_option
@env_option(
    "--rounds",
    type=click.IntRange(min=0),
    default=4000,
    show_default=True,
    help="Number of generated game rounds.",
)
@env_option(
    "--rate-limit",
    metavar="N/SECONDS",
    default="5/1",
    callback=rate_limit_value,
    show_default=True,
    help="Rate limit per credential where the API has one (Sinatra's paginated history).",
)
@env_option(
    "--operator-url",
    default=None,
    help="The operator identity API the reference PEP calls.  [default: http://127.0.0.1:8102]",
)
@env_option(
    "--database",
    default=None,
    help="The reference PEP's state: a SQLite file path or an SQLAlchemy URL.  [default: a new "
    "temporary SQLite file]",
)
@env_option(
    "--engine-config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The reference PEP's reactive engine: a YAML file of segments, missions, levels, "
    "ranks and notification triggers.  [default: the shipped mocks/pep/engine.yaml]",
)
@env_option("--no-admin", is_flag=True, default=False, help="Do not serve the /__admin API.")
@env_option(
    "--quiet", is_flag=True, default=False,
    help="No line per request (warnings and errors only): for load tests.",
)
@env_option(
    "--threads",
    type=click.IntRange(1, 256),
    default=None,
    show_default="8 with one process, 4 per worker process with several",
    help="Threads answering requests, per mock and per worker process.",
)
@env_option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    show_default="the cores this process may use",
    help="Processes serving each mock, sharing its state (clock, faults, journal, rate "
    "limit, users, tokens, sandboxes, the PEP's database and Socket.IO, --traffic). 1: one "
    "process.",
)
@env_option(
    "--traffic",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append every exchange of every mock served to FILE as JSON Lines (started afresh; "
    "no secret written), for a judge that must see the whole run.",
)
def serve(
    mock: str,
    host: str,
    port: int | None,
    seed: int,
    rounds: int,
    rate_limit: tuple[int, float],
    operator_url: str | None,
    database: str | None,
    engine_config: str | None,
    no_admin: bool,
    quiet: bool,
    threads: int | None,
    workers: int | None,
    traffic: Path | None,
) -> None:
    """Serve MOCK (or all of them) on waitress until Ctrl-C, logging one line per request.

    The data is generated from --seed; the /__admin control API (clock, faults, journal,
    reset, rate limit, users) is served on the same port unless --no-admin.
    With --traffic FILE, every exchange of every mock served is also written to FILE, one JSON
    line each (secrets never), for a judge that must see the whole run.
    Jobs sharing one serve each take a sandbox (POST /__admin/sandboxes on any mock): their own
    copy of every mock served, at the URLs it answers (D124).
    """
    if mock == "all" and port is not None:
        raise click.UsageError("--port names one mock's port; `serve all` uses each default")
    chosen = list(MOCKS.values()) if mock == "all" else [MOCKS[mock]]
    if workers is None:  # the machine's cores, when every mock chosen can share (D220)
        workers = default_workers(chosen)
    if workers > 1 and any(spec.name not in WORKER_MOCKS for spec in chosen):
        raise ServeFailure(f"--workers {workers} serves {', '.join(WORKER_MOCKS)} only (D212)")
    if threads is None:  # fewer per process with several: the GIL's hand-offs cost (D225)
        threads = SINGLE_PROCESS_THREADS if workers == 1 else WORKER_THREADS
    options = ServeOptions(
        seed, rounds, rate_limit, not no_admin, operator_url, database, engine_config,
        workers=workers,
    )
    def ready(urls: list[str]) -> None:
        for spec, url in zip(chosen, urls, strict=True):
            click.echo(f"{spec.name} on {url}" + ("" if no_admin else f"  (admin: {url}/__admin)"))
            for line in spec.banner(options):
                click.echo(f"  {line}")
        if not no_admin:
            click.echo(f"Sandboxes for parallel jobs: POST {urls[0]}/__admin/sandboxes")
        click.echo(
            f"{workers} worker processes serve each port ({threads} threads each), sharing each"
            " mock's state"
            if workers > 1 else f"One process serves ({threads} threads, --workers 1)"
        )
        click.echo("Press Ctrl-C to stop.")

    try:
        # Several workers write one file in seq order, each its own exchanges (D206).
        kind = TrafficWriter if workers == 1 else SharedTrafficWriter
        writer = None if traffic is None else kind.open(traffic)
    except OSError as error:
        reason = error.strerror or error
        raise ServeFailure(f"cannot write traffic to {traffic}: {reason}") from None
    try:
        with (
            access_log(sys.stderr, quiet=quiet),
            writer or nullcontext(),
            served(chosen, options, host, port, writer) as mocks,
        ):

            def started(urls: list[str]) -> None:
                mocks.ready(urls)
                ready(urls)

            serve_many(mocks.apps, threads=threads, on_ready=started, workers=workers)
    except ServeError as error:
        raise ServeFailure(str(error)) from None
    except ValueError as error:  # a configuration the mock refuses (the engine's YAML)
        raise ServeFailure(str(error).splitlines()[0]) from None
    except KeyboardInterrupt:
        pass  # Ctrl-C before the servers were up: nothing to clean, a clean exit all the same
    click.echo("stopped")


@cli.command(cls=OneLineErrors, context_settings=CONTEXT)
@seed_option
@env_option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Where the demo's summary and the checks' reports are written.",
)
@env_option(
    "--max-examples",
    type=click.IntRange(min=1),
    default=25,
    show_default=True,
    help="Examples per generated test in each check the demo runs.",
)
def demo(seed: int, report_dir: Path, max_examples: int) -> None:
    """The main job on its embedded defaults, with nothing else running: validate the contracts,
    serve the Sinatra mock on a free loopback port, send it every documented operation and the
    behaviours the seeds fix (bad login, 401/403, the 20-minute token on the mock's clock, the
    paginated history, 429 and recovery), check every answer against contracts/sinatra.yaml,
    then run `check sinatra` against it and, side by side, `check operator`, `check pep-frontend`
    and `check pep-platform` against the operator mock and two reference PEPs, each mock served
    by its own process. Writes demo-summary.json to --report-dir and each check's reports to
    --report-dir/API. Exit 0 when everything conforms, 1 otherwise, 2 when --report-dir cannot
    be written.
    """
    from pepharness import demo as tour

    writable(report_dir)  # before any work: an unwritable place is one line and exit 2
    try:
        passed = tour.run(seed, report_dir, click.echo, max_examples=max_examples)
    except OSError as error:
        raise CannotRun(f"cannot write to {report_dir}: {error.strerror or error}") from None
    sys.exit(0 if passed else 1)


cli.add_command(check_command)
cli.add_command(fuzz_command)
cli.add_command(replay_command)
cli.add_command(run_command)
cli.add_command(verify_client_command)


def main() -> None:
    """Console-script entry point."""
    cli()
