"""The one runner of `check`, `run` and `verify-client` (issue 14): what every run shares.

A run prepares its report dir before any work (an unwritable one is one line and exit 2), prints
its header, hands the results it collected to the one report writer (suites/report.py: the same
summary.json shape, junit conventions and report.html skeleton for every command), prints the
console summary (the failures, the counts, every NOT VERIFIED rule and why, the verdict) and
maps the verdict to the exit code: 0 conforms, 1 a rule (or run's command) failed, 2 the user
must fix something (`CannotRun`, D141).
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from pepharness.options import Decorated, env_option

# suites/report.py imports the contract machinery (a second): imported when a run finishes, so
# every command of the CLI starts as fast as before.

REPORTS = ("junit.xml", "summary.json", "report.html")
"""What the report writer leaves in a report dir (suites/report.py's JUNIT, SUMMARY, HTML)."""


class CannotRun(click.ClickException):
    """What the user must fix (unreachable target, refused credentials, a bad option, an
    unwritable report dir, a command not found): one line `error: …` and exit 2 (D141)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class OneLineErrors(click.Command):
    """A command whose parse errors (an unknown option, a bad value) are one `error:` line too,
    with the hint to its --help, instead of click's usage block and `Error:` (D141)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            path = error.ctx.command_path if error.ctx is not None else info_name
            message = error.format_message().rstrip(".")
            raise CannotRun(f"{message} (see `{path} --help`)") from None


def writable(report_dir: Path) -> Path:
    """`report_dir`, created and proven writable before any work; else `CannotRun`."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        probe = report_dir / ".pepharness-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise CannotRun(f"cannot write to {report_dir}: {error.strerror or error}") from None
    return report_dir


def resolvable(base_url: str) -> None:
    """A base URL whose host name does not resolve says so (before any connection is tried)."""
    host = urlsplit(base_url).hostname
    if not host:
        return
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        raise CannotRun(f"cannot resolve {host} (the host of {base_url})") from None


def report_dir_option(default: Path, help: str) -> Callable[[Decorated], Decorated]:
    """--report-dir (PEPHARNESS_REPORT_DIR), a folder, with the command's own default."""
    return env_option(
        "--report-dir", type=click.Path(file_okay=False, path_type=Path), default=default,
        show_default=True, help=help,
    )


class Runner:
    """One run of a command: its report dir (proven writable), its header line, its end."""

    def __init__(self, command: str, report_dir: Path) -> None:
        self.command = command
        self.started = time.monotonic()
        self.report_dir = writable(report_dir.resolve())

    def clear(self) -> None:
        """Remove an earlier run's reports: a run that stops early leaves no stale verdict."""
        for name in REPORTS:
            (self.report_dir / name).unlink(missing_ok=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, text: str) -> None:
        click.echo(f"pepharness {self.command}: {text}")

    def finish(
        self,
        summary: dict[str, Any],
        results: Sequence[dict[str, Any]],
        page: str,
        *,
        details: bool = True,
        after: Iterable[str] = (),
    ) -> int:
        """Write the reports, print the console summary (then `after`), return the exit code."""
        from pepharness.suites import report

        paths = report.write_reports(self.report_dir, summary, results, page)
        click.echo("")
        for line in report.summary_lines(summary, details=details):
            click.echo(line)
        click.echo(f"reports: {', '.join(str(path) for path in paths)}")
        for line in after:
            click.echo(line)
        return 0 if summary["verdict"] == "pass" else 1

    @staticmethod
    def exit(code: int) -> NoReturn:
        sys.exit(code)
