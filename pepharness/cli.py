"""The one command line, `pepharness`: contracts, fixtures, serve."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import click

from pepharness import contracts as contract_docs
from pepharness import fixtures as fixture_data
from pepharness import validation

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def env_option(*names: str, **kwargs: Any) -> Any:
    """A click option that also reads PEPHARNESS_<OPTION> (DESIGN.md: for CI secrets)."""
    long_name = next(n for n in names if n.startswith("--"))
    envvar = "PEPHARNESS_" + long_name[2:].replace("-", "_").upper()
    return click.option(*names, envvar=envvar, show_envvar=True, **kwargs)


seed_option = env_option(
    "--seed", type=int, default=42, show_default=True, help="Seed of the generated data."
)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="pep-harness", prog_name="pepharness")
def cli() -> None:
    """Mocks, contracts and conformance suites for Groove's Sinatra game-catalog API and the
    Player Engagement Platform (PEP).

    \b
    pepharness contracts validate      the contracts are valid and the data fits them
    pepharness fixtures dump --out D   write the seeded data the mocks serve as JSON
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
    bytes."""
    day = anchor.date() if anchor is not None else date.today()
    data = fixture_data.generate(seed, anchor=datetime.combine(day, time(), UTC), rounds=rounds)
    try:
        written = fixture_data.dump(data, out)
    except OSError as error:
        raise click.ClickException(f"cannot write to {out}: {error.strerror or error}") from None
    for path in written:
        click.echo(f"wrote {path}")


def main() -> None:
    """Console-script entry point."""
    try:
        cli()
    except contract_docs.UnknownContract as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
