"""`pepharness replay FILE --base-url URL`: send recorded fuzz traffic again, diff the answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pepharness.options import CONTEXT, env_option
from pepharness.outputs import file_problem
from pepharness.suites.fuzz.diff import COMPARE_MODES, DEFAULT_IGNORED, CompareMode
from pepharness.suites.fuzz.recording import (
    ReplayError,
    check_base_url,
    load,
    parse_header,
    select,
)
from pepharness.suites.fuzz.replay import DEFAULT_TIMEOUT, Outcome, report
from pepharness.suites.fuzz.replay import replay as replay_exchanges
from pepharness.suites.fuzz.verdict import Verdict, exit_code, judge, kind_of, summary_line

MAX_DIFFERENCES_SHOWN = 20


class ReplayAborted(click.ClickException):
    """The replay could not start (unreadable file, unknown finding, bad URL): exit 2, one line."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class OneALine(click.types.StringParamType):
    """A repeatable option whose environment variable holds one value a line (header values
    hold spaces)."""

    def split_envvar_value(self, rv: str) -> list[str]:
        return [line.strip() for line in rv.splitlines() if line.strip()]


def header_values(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    try:
        return [parse_header(value) for value in values]
    except ReplayError as error:
        raise ReplayAborted(str(error)) from None




@click.command("replay", context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@env_option("--base-url", required=True, help="Where to send the requests again.")
@env_option(
    "--finding",
    metavar="N|KEY",
    default=None,
    help="Replay one finding of a findings.json: its 1-based number or its key.",
)
@env_option(
    "--index",
    type=click.IntRange(min=0),
    default=None,
    help="Replay only the entries of this planned item (_pepharness.index).",
)
@env_option(
    "--header",
    "headers",
    type=OneALine(),
    metavar="'NAME: VALUE'",
    multiple=True,
    callback=header_values,
    help="'Name: value' replacing the recorded header of that name (any case), e.g. a fresh "
    "token; an empty value drops it. Repeatable.",
)
@env_option(
    "--compare",
    "mode",
    type=click.Choice(COMPARE_MODES),
    default="body",
    show_default=True,
    help="status: the status only; shape: also the media type and the JSON keys and value "
    "types; body: also the values (text bodies line by line).",
)
@env_option(
    "--ignore",
    multiple=True,
    metavar="NAME",
    help="A JSON key (at any depth) or path ($.a.b) left out of the comparison; added to the "
    f"defaults ({', '.join(sorted(DEFAULT_IGNORED, key=str.lower))}). Repeatable.",
)
@env_option(
    "--timeout",
    type=click.FloatRange(min=0.001),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for each answer (a recorded timeout matches a new one).",
)
@env_option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a JSON report of every exchange (header values left out).",
)
def replay(
    file: Path,
    base_url: str,
    finding: str | None,
    index: int | None,
    headers: list[tuple[str, str]],
    mode: CompareMode,
    ignore: tuple[str, ...],
    timeout: float,
    out: Path | None,
) -> None:
    """Send the requests recorded in FILE again to --base-url and compare each answer with the
    recorded one: status, media type and body (JSON structurally, by path). FILE is the
    traffic.har or the findings.json of `pepharness fuzz` (each finding replays its smallest
    reproducing request).

    \b
    Example: did the fix of finding 2 work, with a fresh token?
      pepharness replay out/findings.json --base-url http://127.0.0.1:8101 \\
          --finding 2 --header "jwt-auth: $TOKEN"

    Keys whose values change on every answer (tokens, dates, request ids) are ignored; add
    more with --ignore. Header values are never printed: they may hold credentials.

    A findings.json answers "does this finding still reproduce?": one line per finding
    (REPRODUCES, fixed or NOT REPLAYED, and why) and a verdict line. A server error reproduces
    on any 5xx, a timeout on no answer, a slow finding over the file's latency budget, a
    contract check's finding when the same answer comes back. Exit 0: fixed (none reproduces);
    1: still reproduces; 2: could not replay (unreadable file, unknown finding, bad URL, the
    target unreachable).

    A traffic.har answers "are the answers the same?": exit 0 when every answer matches the
    recording, 1 when any differs, 2 when the replay cannot run (as above).
    """
    problem = file_problem(out) if out is not None else None
    if problem is not None:
        # Before the replay, not after it: the report is what --out asked for.
        raise ReplayAborted(problem)
    try:
        target = check_base_url(base_url)
        recording = load(file)
        exchanges = select(recording, finding, index)
    except ReplayError as error:
        raise ReplayAborted(str(error)) from None
    outcomes: list[Outcome] = []
    verdicts: list[Verdict] = []
    findings = recording.kind == "findings"
    for outcome in replay_exchanges(
        exchanges,
        target,
        recorded_base_url=recording.base_url,
        headers=headers,
        timeout=timeout,
        mode=mode,
        ignore=DEFAULT_IGNORED | set(ignore),
    ):
        verdict = judge(outcome, budget_ms=recording.latency_budget_ms)
        outcomes.append(outcome)
        verdicts.append(verdict)
        for line in describe(outcome, verdict):
            click.echo(line)
    if findings:
        click.echo(summary_line(verdicts, [o.exchange.position for o in outcomes]))
    else:
        same = sum(v.state == "same" for v in verdicts)
        unsent = sum(v.state == "not_replayed" for v in verdicts)
        click.echo(
            f"{len(outcomes)} replayed against {target}: {same} same, "
            f"{len(outcomes) - same - unsent} differ"
            + (f", {unsent} not replayed" if unsent else "")
        )
    if out is not None:
        document = report(
            outcomes,
            file=str(file),
            base_url=target,
            recorded_base_url=recording.base_url,
            compare=mode,
            ignore=sorted(DEFAULT_IGNORED | set(ignore)),
            verdicts=[verdict.to_json() for verdict in verdicts],
        )
        try:
            out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        except OSError as error:
            raise ReplayAborted(f"cannot write {out}: {error.strerror or error}") from None
        click.echo(f"wrote {out}")
    sys.exit(exit_code(verdicts))


def describe(outcome: Outcome, verdict: Verdict) -> list[str]:
    """A finding's one line (its verdict and why); a recorded exchange's line, then its
    differences indented (at most MAX_DIFFERENCES_SHOWN)."""
    exchange = outcome.exchange
    answers = (f"{outcome.recorded.describe()} -> {outcome.new.describe()}  "
               f"{outcome.elapsed_ms:.0f} ms")
    if exchange.finding is not None:
        kind = kind_of(exchange.finding) or "finding"
        return [f"{verdict.mark(True)} finding {exchange.position} {kind} {exchange.method} "
                f"{outcome.path}  {answers}: {verdict.reason}"]
    lines = [f"{verdict.mark(False)} {exchange.label} {exchange.method} {outcome.path}  {answers}"]
    if verdict.state == "not_replayed":
        return [*lines, f"    {verdict.reason}"]
    shown = outcome.differences[:MAX_DIFFERENCES_SHOWN]
    lines += [f"    {difference.describe()}" for difference in shown]
    if len(outcome.differences) > len(shown):
        lines.append(f"    … {len(outcome.differences) - len(shown)} more")
    return lines
