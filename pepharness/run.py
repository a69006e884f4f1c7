"""`pepharness run -- CMD` and `pepharness verify-client`: judge an integrator's client (issue 14).

`run` serves the chosen mocks in this process on free loopback ports, every exchange written to
one traffic file in the report dir (D103), hands CMD their URLs and the seeded credentials in
the examples' environment variables, runs CMD with its output streaming through, then judges
the traffic with the client judges of the mocks served (suites/clients, D105 to D110).
`verify-client` judges a traffic file a long-running `serve --traffic FILE` wrote (D112), or
reads it through any of its mocks' `GET /__admin/traffic` (--admin URL, D137).
Both print a per-rule table and write summary.json, junit.xml and report.html (run_report.py);
exit 0 when every MUST rule held (and CMD exited 0), 1 when a rule or CMD failed, 2 when they
could not run (D113).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import requests

from pepharness import scenarios
from pepharness.fixtures import OPERATOR_EMAIL, OPERATOR_PASSWORD, generate
from pepharness.mocks.core import ServeError, ThreadedServer
from pepharness.mocks.core.clock import parse_rfc3339
from pepharness.mocks.core.traffic import (
    FEED_MEDIA_TYPE,
    FEED_SEQ_HEADER,
    NO_TRAFFIC,
    TrafficFileError,
    TrafficWriter,
    read_traffic,
)
from pepharness.options import CONTEXT, env_option
from pepharness.runner import CannotRun, OneLineErrors, Runner, report_dir_option
from pepharness.serving import MOCKS, ServeOptions, record_traffic
from pepharness.suites.options import DEFAULT_CLIENT_ID

if TYPE_CHECKING:
    from pepharness.suites.clients import Verdict
    from pepharness.suites.rules import Rule

# The judges import the contract machinery and pytest (a second and more): imported when a
# command runs, so every other command of the CLI starts as fast as before.

TRAFFIC = "traffic.jsonl"
SCENARIO = "scenario.jsonl"
SHOWN_BREACHES = 5
"""Breaches printed per failed rule; summary.json holds them all."""
DEFAULT_MOCKS = ("sinatra", "operator", "pep")

ENVIRONMENT: dict[str, tuple[str, str]] = {
    "PEPHARNESS_SINATRA_URL": ("sinatra", "the Sinatra mock's base URL"),
    "PEPHARNESS_SINATRA_EMAIL": ("sinatra", f"the seeded Sinatra user ({OPERATOR_EMAIL})"),
    "PEPHARNESS_SINATRA_PASSWORD": ("sinatra", "its password (also HTTP Basic on the history)"),
    "PEPHARNESS_OPERATOR_URL": ("operator", "the operator identity mock's base URL"),
    "PEPHARNESS_IDENTITY_TOKEN": ("operator", "the first seeded player's identity token"),
    "PEPHARNESS_PEP_URL": ("pep", "the reference PEP's base URL (Platform and Frontend)"),
    "PEPHARNESS_PEP_CLIENT_ID": ("pep", f"the PEP's API client ({DEFAULT_CLIENT_ID})"),
    "PEPHARNESS_PEP_CLIENT_SECRET": ("pep", "its secret (Platform OAuth client credentials)"),
}
"""What CMD finds in its environment, by the mock that must be served for it to be set."""


@dataclass(frozen=True)
class Api:
    """One client judge: the mock whose lines it reads, and how it is called."""

    name: str
    mock: str
    module: str
    """pepharness.suites.clients.<module>: its CATALOG and judge."""

    def catalog(self) -> Iterable[Rule]:
        catalog: Iterable[Rule] = import_module(f"pepharness.suites.clients.{self.module}").CATALOG
        return catalog

    def judge(self, entries: Iterable[dict[str, Any]], seed: int) -> list[Verdict]:
        judge: Callable[..., list[Verdict]] = import_module(
            f"pepharness.suites.clients.{self.module}"
        ).judge
        if self.mock != "pep":
            return judge(entries)
        from pepharness.mocks import pep  # D187: SQLAlchemy and the rest, when judging the PEP

        return judge(
            entries,
            identity_tokens=_identity_tokens(seed),
            client_secrets=[pep.DEMO_CLIENT_SECRET],
        )


def _identity_tokens(seed: int) -> list[str]:
    return [p.identity_token for p in generate(seed, anchor=datetime.now(UTC), rounds=0).players]


APIS = (
    Api("sinatra", "sinatra", "sinatra"),
    Api("pep_platform", "pep", "pep_platform"),
    Api("pep_frontend", "pep", "pep_frontend"),
)
"""Every client judge; a mock without one (the operator's identity API) is served, not judged."""


def _mocks_value(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in MOCKS]
    if unknown or not names:
        raise click.BadParameter(
            f"{value!r}: name one or more of {', '.join(MOCKS)}, separated by commas"
        )
    return names


def _entries_of(path: Path, mock: str, sandbox: str | None = None) -> Iterator[dict[str, Any]]:
    return (
        e for e in read_traffic(path) if e.get("mock") == mock and e.get("sandbox") == sandbox
    )


def judge_file(
    path: Path, apis: Sequence[Api], seed: int, sandbox: str | None = None
) -> list[Verdict]:
    """Every verdict of `apis` over the traffic file at `path` (one streamed read per judge):
    the lines of sandbox `sandbox`, or of the default space (no `sandbox` key) when None."""
    verdicts: list[Verdict] = []
    for api in apis:
        verdicts.extend(api.judge(_entries_of(path, api.mock, sandbox), seed))
    return verdicts


def _table(
    results: Sequence[dict[str, Any]],
    echo: Callable[[str], Any] = click.echo,
    rest: str = "in summary.json",
) -> None:
    label = {"passed": "pass", "failed": "FAIL", "not_verified": "not verified"}
    width = max((len(r["rule"]) for r in results), default=10)
    for result in results:
        outcome = label[result["outcome"]]
        echo(f"  {result['level']:<6} {outcome:<12} {result['rule']:<{width}}".rstrip())
        for breach in result["breaches"][:SHOWN_BREACHES]:
            seqs = ",".join(f"#{s}" for s in breach["seqs"])
            echo(f"      {seqs} {breach['title']}: {breach['detail']}")
        hidden = len(result["breaches"]) - SHOWN_BREACHES
        if hidden > 0:
            echo(f"      … {hidden} more breach(es) {rest}".rstrip())


def report(
    verdicts: Sequence[Verdict],
    runner: Runner,
    *,
    apis: Sequence[str],
    traffic: Path,
    seed: int,
    command: dict[str, Any] | None = None,
    scenario: list[dict[str, Any]] | None = None,
    mocks: Sequence[str] = (),
    sandbox: str | None = None,
) -> int:
    """Print the per-rule table, then hand the verdicts to the shared runner: summary.json,
    junit.xml and report.html written, the console summary printed; the exit code.
    `sandbox`: the sandbox whose lines alone were judged (D131)."""
    from pepharness.run_report import render_html
    from pepharness.suites.report import summarize_results

    results = [v.result() for v in verdicts]
    summary = summarize_results(
        results, apis=apis, seed=seed, strict=False, wall_time=runner.elapsed,
        rule_fields=("api", "outcome", "checked", "breaches", "reason"),
    )
    summary["traffic"] = str(traffic)
    if sandbox is not None:
        summary["sandbox"] = sandbox
    if command is not None:
        summary["command"] = command
        if command["exit_code"] != 0:
            summary["verdict"] = "fail"
    if scenario is not None:
        summary["scenario"] = scenario
    click.echo(f"client rules over {traffic}" + (f" (sandbox {sandbox})" if sandbox else "") + ":")
    _table(summary["rules"])
    if not results:
        click.echo("  no client rule judges the mocks served")
    must_failed = [r["rule"] for r in results if r["outcome"] == "failed" and r["level"] == "MUST"]
    after = [f"a MUST client rule failed: {', '.join(must_failed)}"] if must_failed else []
    return runner.finish(
        summary, results, render_html(summary, traffic, mocks), details=False, after=after
    )


def _apis_of(mocks: Iterable[object]) -> list[Api]:
    """The judges of the mocks named in `mocks` (a traffic file's `mock` values, any JSON)."""
    chosen = set(mocks)
    return [api for api in APIS if api.mock in chosen]


def list_rules() -> None:
    from pepharness.suites.rules import listing

    for api in APIS:
        for line in listing(api.catalog()):
            click.echo(line)


def _list_rules_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        list_rules()
        ctx.exit(0)


list_rules_option = click.option(
    "--list-rules", is_flag=True, expose_value=False, is_eager=True, callback=_list_rules_flag,
    help="Print every client rule (name, level, API, source, summary), tab-separated; exit 0.",
)
seed_option = env_option(
    "--seed", type=int, default=42, show_default=True,
    help="Seed of the mocks' data (and of the identity tokens a Frontend call must not carry).",
)


def _environment(urls: dict[str, str], seed: int) -> dict[str, str]:
    from pepharness.mocks import pep

    values = {
        "PEPHARNESS_SINATRA_URL": urls.get("sinatra"),
        "PEPHARNESS_SINATRA_EMAIL": OPERATOR_EMAIL if "sinatra" in urls else None,
        "PEPHARNESS_SINATRA_PASSWORD": OPERATOR_PASSWORD if "sinatra" in urls else None,
        "PEPHARNESS_OPERATOR_URL": urls.get("operator"),
        "PEPHARNESS_IDENTITY_TOKEN": _identity_tokens(seed)[0] if "operator" in urls else None,
        "PEPHARNESS_PEP_URL": urls.get("pep"),
        "PEPHARNESS_PEP_CLIENT_ID": pep.DEMO_CLIENT_ID if "pep" in urls else None,
        "PEPHARNESS_PEP_CLIENT_SECRET": pep.DEMO_CLIENT_SECRET if "pep" in urls else None,
    }
    chosen = {name: value for name, value in values.items() if value is not None}
    # The mocks are on loopback: a CI runner's proxy must not stand between CMD and them.
    for name in ("NO_PROXY", "no_proxy"):
        bypass = [h for h in os.environ.get(name, "").split(",") if h.strip()]
        chosen[name] = ",".join(dict.fromkeys([*bypass, "127.0.0.1", "localhost"]))
    return chosen


def _variables_help() -> str:
    return "\n".join(f"    {name:<29} {meaning}" for name, (_, meaning) in ENVIRONMENT.items())


def _serve(
    stack: ExitStack, mocks: Sequence[str], options: ServeOptions, writer: TrafficWriter
) -> dict[str, str]:
    """Start each mock on a free loopback port (the operator first: the PEP calls it)."""
    urls: dict[str, str] = {}
    order = sorted(mocks, key=lambda name: name == "pep")
    for name in order:
        spec = MOCKS[name]
        if name == "pep" and "operator" in urls:
            options = ServeOptions(**{**options.__dict__, "operator_url": urls["operator"]})
        server = ThreadedServer(record_traffic(spec.build(options), spec, writer))
        stack.enter_context(server)
        urls[name] = server.url
    return urls


def _list_scenarios_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        for name, description in scenarios.describe():
            click.echo(f"{name}\t{description}")
        ctx.exit(0)


def _write_timeline(report_dir: Path, timeline: Sequence[dict[str, Any]]) -> None:
    """scenario.jsonl: one line per step applied (D118), and one console line each."""
    with (report_dir / SCENARIO).open("w", encoding="utf-8") as out:
        for record in timeline:
            out.write(json.dumps(record) + "\n")
            status = record["status"] if record["status"] is not None else "-"
            click.echo(
                f"pepharness run: scenario {record['scenario']} at {record['at']:g}s: "
                f"{record['action']} on {record['mock']}: {record['outcome']} ({status})"
            )


def _describe(returncode: int) -> str:
    return f"killed by signal {-returncode}" if returncode < 0 else f"exit {returncode}"


@click.command(
    cls=OneLineErrors,
    context_settings={**CONTEXT, "allow_interspersed_args": False},
    epilog="\b\nCMD's environment (set for the mocks served):\n" + _variables_help(),
)
@env_option(
    "--mocks",
    default=",".join(DEFAULT_MOCKS),
    show_default=True,
    callback=_mocks_value,
    help="The mocks to serve, comma-separated (the PEP is judged as Platform and Frontend; "
    "the operator mock is served for the PEP and the front end, not judged).",
)
@report_dir_option(
    Path("reports/run"),
    "Where traffic.jsonl (run only), summary.json, junit.xml and report.html are written.",
)
@seed_option
@list_rules_option
@click.option(
    "--scenario", "scenario_refs", multiple=True, metavar="NAME|FILE",
    help="Make the mocks misbehave on schedule: a built-in (--list-scenarios) or a YAML file; "
    "repeatable.",
)
@click.option(
    "--list-scenarios", is_flag=True, expose_value=False, is_eager=True,
    callback=_list_scenarios_flag, help="Print every built-in scenario and what it does; exit 0.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD [ARGS]...")
def run(
    mocks: tuple[str, ...],
    report_dir: Path,
    seed: int,
    scenario_refs: tuple[str, ...],
    command: tuple[str, ...],
) -> None:
    """Serve the mocks on free loopback ports, run CMD against them, judge its requests.

    CMD's output streams through. When it ends, every request the mocks received is judged by
    the client rules (--list-rules): a per-rule table is printed and summary.json, junit.xml,
    report.html and the traffic file are written to --report-dir. Exit 0: CMD exited 0 and no
    MUST rule failed; 1: a rule failed or CMD failed (the last line says which); 2: could not run.
    """
    if not command:
        raise CannotRun("name the command to run after --, e.g. -- python client.py")
    try:
        chosen = [scenarios.load(ref) for ref in scenario_refs]
    except scenarios.ScenarioError as error:
        raise CannotRun(str(error)) from None
    if shutil.which(command[0]) is None:
        raise CannotRun(f"command not found: {command[0]}")
    runner = Runner("run", report_dir)
    report_dir = runner.report_dir
    runner.clear()
    traffic = report_dir / TRAFFIC
    try:
        writer = TrafficWriter.open(traffic)
    except OSError as error:
        raise CannotRun(f"cannot write {traffic}: {error.strerror or error}") from None
    with writer, ExitStack() as stack:
        try:
            urls = _serve(stack, mocks, ServeOptions(seed=seed), writer)
        except ServeError as error:
            raise CannotRun(str(error)) from None
        for name, url in urls.items():
            runner.say(f"{name} on {url}")
        env = {**os.environ, **_environment(urls, seed)}
        runner.say(f"$ {' '.join(command)}")
        try:
            child = subprocess.Popen(command, env=env)
        except OSError as error:
            raise CannotRun(f"cannot run {command[0]}: {error.strerror or error}") from None
        begun = datetime.now(UTC)
        applier = scenarios.Applier(chosen, urls)
        if chosen:
            applier.start()
        try:
            returncode = child.wait()
        except KeyboardInterrupt:
            child.terminate()
            returncode = child.wait()
        timeline = applier.stop()
        stack.close()  # stop serving: nothing arrives after CMD's end
        writer.sync()
    outcome = {
        "argv": list(command),
        "exit_code": returncode,
        "started_at": begun.isoformat(timespec="milliseconds"),
    }
    runner.say(f"the command ended ({_describe(returncode)})")
    if chosen:
        _write_timeline(report_dir, timeline)
    code = report(
        judge_file(traffic, _apis_of(mocks), seed),
        runner,
        apis=[api.name for api in _apis_of(mocks)],
        traffic=traffic,
        seed=seed,
        command=outcome,
        scenario=timeline if chosen else None,
        mocks=mocks,
    )
    if returncode != 0:
        runner.say(f"the command failed ({_describe(returncode)})")
    runner.exit(code)


# `verify-client --admin URL [--since SEQ|RFC3339]` (D137-D139): the traffic read from a
# serve's `GET /__admin/traffic` into the report dir, or a file cut by --since, then judged as
# `--traffic FILE` is.

ADMIN_TIMEOUT = (10.0, 120.0)
"""Connect and read timeouts towards `--admin URL` (the serve waits up to 5 s for its writer)."""
FEED_CHUNK = 64 * 1024
MAX_SINCE = 999_999_999_999_999_999
_FEED_LINE = re.compile(rb'\{"seq":([0-9]{1,18}),')


def _since_value(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> int | datetime | None:
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        number = int(text.lstrip("0") or "0") if len(text.lstrip("0")) <= 18 else None
        if number is not None and number <= MAX_SINCE:
            return number
    else:
        try:
            return parse_rfc3339(text)
        except ValueError:
            pass
    raise click.BadParameter(
        f"{value[:60]!r}: a seq number (0 to {MAX_SINCE}) or an RFC 3339 date-time with its "
        "offset, e.g. 2026-12-07T09:30:00Z"
    )


admin_option = click.option(
    "--admin",
    metavar="URL",
    default=None,
    help="Read the traffic from a `pepharness serve --traffic FILE` still serving: the base "
    "URL of any of its mocks (its GET /__admin/traffic streams every mock's lines).",
)
since_option = click.option(
    "--since",
    metavar="SEQ|RFC3339",
    default=None,
    callback=_since_value,
    help="Judge only the lines numbered after SEQ (the seq a previous verify-client printed), "
    "or recorded at or after an RFC 3339 date-time (their wall-clock `time`).",
)


_SANDBOX_IN_URL = re.compile(r"/__sandbox/([^/]+)")


def sandboxed_admin(admin: str, sandbox: str | None) -> tuple[str, str | None]:
    """--admin URL and --sandbox ID as one: the feed of sandbox ID is served under its prefix,
    and a URL already inside `/__sandbox/ID` names the sandbox judged (D131, D136)."""
    named = _SANDBOX_IN_URL.search(admin)
    if named is None:
        return (admin if sandbox is None else f"{_admin_base(admin)}/__sandbox/{sandbox}"), sandbox
    if sandbox is not None and sandbox != named.group(1):
        raise CannotRun(f"--sandbox {sandbox} but --admin {admin} is sandbox {named[1]}")
    return admin, named.group(1)


def one_traffic_source(traffic: Path | None, admin: str | None) -> None:
    if (traffic is None) == (admin is None):
        raise CannotRun(
            "give exactly one of --traffic FILE or --admin URL (see `verify-client --help`)"
        )


def _entry_time(entry: dict[str, Any]) -> datetime | None:
    text = entry.get("time")
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def _selected(entry: dict[str, Any], since: int | datetime | None) -> bool:
    """Whether a traffic line is judged under --since (a seq: numbered after it; a date-time:
    recorded at or after it)."""
    if since is None:
        return True
    if isinstance(since, datetime):
        when = _entry_time(entry)
        return when is not None and when >= since
    seq = entry.get("seq")
    return isinstance(seq, int) and seq > since


def _admin_base(url: str) -> str:
    base = url.strip().rstrip("/")
    for suffix in ("/__admin/traffic", "/__admin"):
        base = base.removesuffix(suffix)
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CannotRun(f"--admin {url!r} is not an http(s) URL of a pepharness serve")
    return base


def _refusal(base: str, answer: requests.Response) -> CannotRun:
    """What a GET /__admin/traffic that is no feed tells the user (one line, exit 2)."""
    try:
        error = answer.json().get("error") if answer.headers.get("Content-Type", "").startswith(
            "application/json") else None
    except (ValueError, AttributeError):
        error = None
    # A 400 is the feed's own (its query); a 404 only with the feed's own words: any other
    # 404 is a route this server does not have (a --no-admin serve, another server).
    if isinstance(error, str) and (answer.status_code == 400 or error == NO_TRAFFIC):
        return CannotRun(f"{base}: {error}")
    kind = answer.headers.get("Content-Type") or "no Content-Type"
    return CannotRun(
        f"{base} is not a pepharness serve: GET /__admin/traffic answered "
        f"{answer.status_code} ({kind[:60]})"
    )


def fetch_traffic(url: str, since: int | datetime | None, dest: Path) -> tuple[int, int]:
    """Stream `url`'s GET /__admin/traffic into `dest` (a chunk at a time: bounded memory),
    keeping the lines --since selects; (lines kept, last seq read). CannotRun when it is not
    there, not a pepharness feed, or breaks."""
    base = _admin_base(url)
    params = {"since": since} if isinstance(since, int) else {}
    session = requests.Session()
    session.trust_env = False  # loopback and staging URLs: no proxy of the environment
    kept, last = 0, since if isinstance(since, int) else 0
    try:
        with session.get(
            f"{base}/__admin/traffic", params=params, stream=True, timeout=ADMIN_TIMEOUT
        ) as answer:
            media = answer.headers.get("Content-Type", "").split(";")[0].strip()
            if answer.status_code != 200 or media != FEED_MEDIA_TYPE \
                    or FEED_SEQ_HEADER not in answer.headers:
                raise _refusal(base, answer)
            with open(dest, "wb") as out:
                pending = b""
                for chunk in answer.iter_content(FEED_CHUNK):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for raw in lines:
                        match = _FEED_LINE.match(raw)
                        if match is None:
                            raise CannotRun(
                                f"{base}/__admin/traffic sent a line that is not traffic: "
                                f"{raw[:60]!r}"
                            )
                        last = int(match.group(1))
                        if isinstance(since, datetime) \
                                and not _selected(_feed_entry(base, raw), since):
                            continue
                        out.write(raw + b"\n")
                        kept += 1
                if pending:
                    raise CannotRun(f"{base}/__admin/traffic ended in the middle of a line")
    except requests.RequestException as error:
        raise CannotRun(f"cannot read the traffic of {base}: {_reason(error)}") from None
    except OSError as error:
        raise CannotRun(f"cannot write {dest}: {error.strerror or error}") from None
    finally:
        session.close()
    return kept, last


def _reason(error: requests.RequestException) -> str:
    text = str(error)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def _feed_entry(base: str, raw: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(raw)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        raise CannotRun(f"{base}/__admin/traffic sent a line that is not traffic: {raw[:60]!r}")
    return entry


def cut_traffic(path: Path, since: int | datetime, dest: Path) -> tuple[int, int]:
    """The lines of the traffic file `path` that --since selects, copied to `dest`; (lines
    kept, last seq read)."""
    if dest.exists() and dest.resolve() == path.resolve():
        raise CannotRun(f"--since would overwrite {path}: choose another --report-dir")
    kept, last = 0, since if isinstance(since, int) else 0
    try:
        with open(dest, "w", encoding="utf-8", newline="\n") as out:
            for entry in read_traffic(path):
                seq = entry.get("seq")
                last = seq if isinstance(seq, int) else last
                if _selected(entry, since):
                    out.write(json.dumps(entry, separators=(",", ":")) + "\n")
                    kept += 1
    except TrafficFileError as error:
        raise CannotRun(f"{path} is not a traffic file: {error}") from None
    except OSError as error:
        raise CannotRun(f"cannot cut {path} into {dest}: {error.strerror or error}") from None
    return kept, last


def traffic_to_judge(
    traffic: Path | None, admin: str | None, since: int | datetime | None, report_dir: Path
) -> Path:
    """The file verify-client judges: --traffic as given, or what --admin read, or what
    --since kept, in the report dir's traffic.jsonl (told on the console, with the seq a next
    verify-client can resume after)."""
    if traffic is not None and since is None:
        return traffic
    dest = report_dir / TRAFFIC
    if admin is not None:
        kept, last = fetch_traffic(admin, since, dest)
        source = f"{_admin_base(admin)}/__admin/traffic"
    else:
        assert traffic is not None and since is not None
        kept, last = cut_traffic(traffic, since, dest)
        source = str(traffic)
    click.echo(
        f"{kept} traffic line(s) from {source} into {dest}; the last line read is "
        f"#{last} (a next verify-client can resume with --since {last})"
    )
    return dest


@click.command("verify-client", cls=OneLineErrors, context_settings=CONTEXT)
@click.option(
    "--traffic",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The traffic file a `pepharness serve --traffic FILE` wrote (it may still be serving).",
)
@admin_option
@since_option
@report_dir_option(
    Path("reports/verify-client"),
    "Where summary.json, junit.xml and report.html (and the traffic read by --admin or cut by "
    "--since, traffic.jsonl) are written.",
)
@env_option(
    "--sandbox",
    metavar="ID",
    default=None,
    help="Judge only the requests of sandbox ID (`POST /__admin/sandboxes` made it).  "
    "[default: only the requests outside every sandbox]",
)
@seed_option
@list_rules_option
def verify_client(
    traffic: Path | None, admin: str | None, since: int | datetime | None, report_dir: Path,
    sandbox: str | None, seed: int,
) -> None:
    """Judge the client requests a `serve --traffic FILE` recorded by the client rules.

    For a client that `run` cannot launch (a staging deployment pointed at a long-running
    `pepharness serve all --traffic FILE`): every request of the traffic is judged, read from
    the file (--traffic FILE) or from any of the serve's mocks (--admin URL, its
    `GET /__admin/traffic`), by the judges of the mocks that appear in it (all of them when
    none does). With --sandbox ID (or an --admin URL inside `/__sandbox/ID`), only the
    requests of that sandbox; without it, only those outside every sandbox (D131). Same table,
    reports and exit codes as `run`: 0 no MUST rule failed, 1 one did, 2 could not run.
    """
    one_traffic_source(traffic, admin)
    if admin is not None:
        admin, sandbox = sandboxed_admin(admin, sandbox)
    runner = Runner("verify-client", report_dir)
    runner.clear()
    traffic = traffic_to_judge(traffic, admin, since, runner.report_dir)
    try:
        seen = {
            entry.get("mock")
            for entry in read_traffic(traffic)
            if entry.get("sandbox") == sandbox
        }
        apis = _apis_of(seen) or list(APIS)
        verdicts = judge_file(traffic, apis, seed, sandbox)
    except (TrafficFileError, OSError, KeyError, TypeError, ValueError) as error:
        raise CannotRun(f"{traffic} is not a traffic file: {error}") from None
    code = report(
        verdicts,
        runner,
        apis=[api.name for api in apis],
        traffic=traffic,
        seed=seed,
        mocks=sorted(m for m in seen if isinstance(m, str)),
        sandbox=sandbox,
    )
    runner.exit(code)
