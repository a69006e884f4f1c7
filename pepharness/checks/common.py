"""What every `check API` shares: the options, the probes, and the run of a suite's pytest
phases over the shared runner (pepharness/runner.py)."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import requests

from pepharness.options import CONTEXT, Decorated, env_option
from pepharness.runner import CannotRun, OneLineErrors, Runner, report_dir_option, resolvable
from pepharness.suites.options import (
    DEFAULT_MAX_EXAMPLES,
    OptionError,
    parse_base_url,
    parse_clock_control,
    parse_rate_limit,
)
from pepharness.suites.rules import Rule, listing, matches, split_patterns

SUITES = {
    "sinatra": "pepharness.suites.sinatra",
    "operator": "pepharness.suites.operator",
    "pep-frontend": "pepharness.suites.pep_frontend",
    "pep-platform": "pepharness.suites.pep_platform",
}
DEFAULT_BASE_URLS = {
    "sinatra": "http://127.0.0.1:8101",
    "operator": "http://127.0.0.1:8102",
    "pep-frontend": "http://127.0.0.1:8103",
    "pep-platform": "http://127.0.0.1:8103",
}
PROBE_TIMEOUT_SECONDS = 10
NOT_THERE = (404, 405)
"""A probe's statuses that say the operation is not at that URL: the user's wiring to fix."""
CheckAborted = CannotRun
"""The check could not run (target unreachable, credentials refused, bad option): exit 2."""


def catalog(api: str) -> list[Rule]:
    """Every rule of `api`'s conformance suite, in its catalog's order."""
    return list(importlib.import_module(SUITES[api] + ".rules").RULES)


def _workers(value: str) -> str:
    text = value.strip().lower()
    if not (text == "auto" or (text.isdigit() and int(text) >= 1)):
        raise CheckAborted(f"--workers {value!r} is neither a number >= 1 nor 'auto'")
    if text != "1" and importlib.util.find_spec("xdist") is None:
        click.echo("pytest-xdist is not installed: the checks run in one process", err=True)
        return "1"
    return text


def reach(base_url: str, send: Callable[[], requests.Response]) -> requests.Response:
    """`send()`'s answer; no answer at all ends the check with one line (exit 2)."""
    try:
        return send()
    except requests.ConnectionError as error:
        resolvable(base_url)
        reason = "connection refused" if "refused" in str(error).lower() else "cannot connect"
        raise CheckAborted(f"cannot reach {base_url}: {reason}") from None
    except requests.Timeout:
        raise CheckAborted(
            f"cannot reach {base_url}: no answer within {PROBE_TIMEOUT_SECONDS} s"
        ) from None
    except requests.RequestException as error:
        raise CheckAborted(f"cannot reach {base_url}: {type(error).__name__}") from None


def probe_reachable(base_url: str, path: str) -> None:
    """POST `{}` to `path` once: any HTTP answer will do; no answer ends the check (exit 2)."""
    url = f"{base_url}{path}"
    reach(base_url, lambda: requests.post(url, json={}, timeout=PROBE_TIMEOUT_SECONDS))


def probe_clock(url: str) -> None:
    try:
        response = requests.get(f"{url}/clock", timeout=PROBE_TIMEOUT_SECONDS)
        response.raise_for_status()
        response.json()["now"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise CheckAborted(f"the clock control at {url} does not answer GET {url}/clock") from None


def clock_and_limit(
    clock_control: str, expect_rate_limit: str | None
) -> tuple[str | None, tuple[int, float] | None]:
    """--clock-control and --expect-rate-limit parsed (a wrong one is exit 2), the clock
    control probed."""
    try:
        clock = parse_clock_control(clock_control)
        limit = parse_rate_limit(expect_rate_limit) if expect_rate_limit else None
    except OptionError as error:
        raise CheckAborted(str(error)) from None
    return clock, limit


def _pytest_command(
    package: str, parts: Path, phase: str, workers: str, arguments: list[str]
) -> list[str]:
    command = [
        sys.executable, "-m", "pytest", "--pyargs", package,
        # The suite's own settings only: no ini file, cache or rootdir of wherever this runs.
        "-c", str(parts / "pytest.ini"), "--rootdir", str(parts), "-p", "no:cacheprovider",
        "-q", "--no-header", "--tb=no", "-rN", "-W", "ignore",
        # The checks raise their own failures: pytest's assertion rewriting of every imported
        # plugin package (faker's hundreds of locale modules) would only cost seconds per worker.
        "--assert=plain", "-p", "no:faker",
        "--suite-phase", phase, *arguments,
    ]
    if phase == "shared" and workers != "1":
        command += ["-n", workers, "--dist", "loadgroup", "-p", "pepharness.checks.xdist_status"]
    elif phase == "exclusive":
        command += ["-p", "no:xdist"]
    return command


def _list_rules(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        for line in listing(catalog(ctx.command.name or "")):
            click.echo(line)
        ctx.exit(0)


def clock_control_option(example: str, what: str) -> Callable[[Decorated], Decorated]:
    return env_option(
        "--clock-control", default="none", show_default=True, metavar="URL|none",
        help=f"The target's clock control, e.g. {example}: {what} then checked by moving its "
        "clock.",
    )


def rate_limit_option(help: str) -> Callable[[Decorated], Decorated]:
    return env_option("--expect-rate-limit", default=None, metavar="N/SECONDS", help=help)


COMMON = ("base_url", "report_dir", "max_examples", "seed", "strict", "rules", "operations")
"""The options every suite takes, made into the `Run` a check's function is called with."""


def check_command(api: str) -> Callable[[Callable[..., None]], click.Command]:
    """The `check API` command of `function(run, **its own options)`: the options every suite
    takes (target, reports, budgets, selection, --list-rules) become `run`, a `Run` whose report
    dir is proven writable before the function does any work; click's parse errors are one
    line (D141)."""

    def apply(function: Callable[..., None]) -> click.Command:
        options = [
            env_option(
                "--base-url", default=DEFAULT_BASE_URLS[api], show_default=True,
                help="The service under test.",
            ),
            report_dir_option(
                Path("reports") / api, "Where junit.xml, summary.json and report.html go."
            ),
            env_option(
                "--max-examples", type=click.IntRange(min=1), default=DEFAULT_MAX_EXAMPLES,
                show_default=True,
                help="Examples per generated test (schemathesis and Hypothesis).",
            ),
            env_option(
                "--seed", type=int, default=None, help="Seed of every generator [default: random]."
            ),
            env_option(
                "--strict", is_flag=True, default=False, help="A failed SHOULD rule fails too."
            ),
            env_option(
                "--rules", default="", metavar="GLOBS",
                help="Only the rules matching these comma-separated globs, e.g. 'check_token_*'.",
            ),
            env_option(
                "--operations", default="", metavar="GLOBS",
                help="Only the checks of the operations matching these comma-separated globs, "
                "e.g. 'POST /api/*'.",
            ),
            click.option(
                "--list-rules", is_flag=True, expose_value=False, is_eager=True,
                callback=_list_rules,
                help="Print every rule of this suite (name, level, API, source, summary), "
                "tab-separated, and exit 0; no target needed.",
            ),
        ]

        @functools.wraps(function)
        def command(**values: Any) -> None:
            common = {name: values.pop(name) for name in COMMON}
            function(Run(api, **common), **values)

        for option in reversed(options):
            command = option(command)
        return click.command(api, cls=OneLineErrors, context_settings=CONTEXT)(command)

    return apply


class Run:
    """One `pepharness check API` run: what every suite is given, then how its pytest runs."""

    def __init__(
        self,
        api: str,
        *,
        base_url: str,
        report_dir: Path,
        max_examples: int,
        seed: int | None,
        strict: bool,
        rules: str,
        operations: str,
    ) -> None:
        self.api = api
        try:
            self.target = parse_base_url(base_url)
        except OptionError as error:
            raise CheckAborted(str(error)) from None
        self.runner = Runner(f"check {api}", report_dir)
        self.report_dir = self.runner.report_dir
        self.strict = strict
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.max_examples = max_examples
        self.patterns = split_patterns([rules])
        self.selected = [rule for rule in catalog(api) if matches(rule, self.patterns)]
        if not self.selected:
            raise CheckAborted(f"no rule matches --rules {rules!r}")
        self.arguments = [
            "--base-url", self.target, "--max-examples", str(max_examples),
            "--seed", str(self.seed), "--report-dir", str(self.report_dir),
        ]
        if strict:
            self.arguments.append("--fail-on-should")
        for pattern in self.patterns:
            self.arguments += ["--rules", pattern]
        for pattern in split_patterns([operations]):
            self.arguments += ["--operations", pattern]
        self.secrets: dict[str, str] = {}

    @property
    def phases(self) -> set[str]:
        return {"exclusive" if rule.exclusive else "shared" for rule in self.selected}

    def execute(self, *, workers: str, banner: str) -> None:
        """Run the suite's phases, hand the merged results to the runner, exit 0 or 1."""
        from pepharness.suites import report

        parts = self.report_dir / report.PARTS_FOLDER
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        (parts / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        self.runner.clear()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
        env.update(self.secrets, HYPOTHESIS_STORAGE_DIRECTORY=str(parts / "hypothesis"))

        self.runner.say(
            f"{self.target}, seed {self.seed}, {banner}, max examples {self.max_examples}"
        )
        exits = {}
        for phase, title in (
            ("shared", "checks"),
            ("exclusive", "checks that move the clock, exhaust the rate limit or restart the "
             "target (alone)"),
        ):
            if phase not in self.phases:
                continue
            click.echo(f"-- {title}")
            command = _pytest_command(SUITES[self.api], parts, phase, workers, self.arguments)
            exits[phase] = subprocess.run(command, env=env, cwd=parts, check=False).returncode

        found = [p for p in (parts / "shared.json", parts / "exclusive.json") if p.is_file()]
        if not found:
            raise CheckAborted(f"the suite did not run (pytest exit codes {exits})")
        broken = {phase: code for phase, code in exits.items() if code not in (0, 1, 5)}
        if broken:
            raise CheckAborted(f"the suite was interrupted (pytest exit codes {broken})")
        summary, results = report.from_parts(
            self.report_dir, found, strict=self.strict, wall_time=self.runner.elapsed
        )
        # The per-process results are merged into the reports: nothing of them is left behind.
        shutil.rmtree(parts, ignore_errors=True)
        self.runner.exit(self.runner.finish(summary, results, report.render_html(summary)))
