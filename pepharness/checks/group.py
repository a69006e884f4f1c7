"""The `check` command: one subcommand per API, each from its own module."""

from __future__ import annotations

import click

from pepharness.checks.common import SUITES, CheckAborted
from pepharness.checks.operator import check_operator
from pepharness.checks.pep_frontend import check_pep_frontend
from pepharness.checks.pep_platform import check_pep_platform
from pepharness.checks.sinatra import check_sinatra
from pepharness.options import CONTEXT

PLANNED: tuple[str, ...] = ()


class CheckGroup(click.Group):
    """`check API`: an unknown API, or one without a suite yet, is one line and exit 2, not
    click's usage error."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in PLANNED:
            available = ", ".join(SUITES)
            raise CheckAborted(f"no conformance suite for {cmd_name} yet (available: {available})")
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """An unknown API is one `error:` line too (D141)."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            message = error.format_message().rstrip(".")
            raise CheckAborted(f"{message} (see `{ctx.command_path} --help`)") from None


@click.group("check", cls=CheckGroup, context_settings=CONTEXT)
def check() -> None:
    """Check that a service conforms to an API's contract and documented rules.

    Every rule is MUST (the vendor's documents or an RFC require it), SHOULD (best practice) or
    INFO. Each API's check writes junit.xml (one testcase per rule and operation),
    summary.json and a self-contained report.html in --report-dir (reports/API by default);
    --list-rules prints its rules.

    \b
    Exit 0: every MUST rule passed (and every SHOULD one, with --strict).
    Exit 1: a MUST rule failed (or a SHOULD one, with --strict).
    Exit 2: the target is unreachable, a credential is refused, an option is wrong, or the
            report dir cannot be written.
    """


for command in (check_sinatra, check_operator, check_pep_frontend, check_pep_platform):
    check.add_command(command)
