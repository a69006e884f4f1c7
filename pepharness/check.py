"""`pepharness check API`: run an API's conformance suite against a target and write the reports."""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import requests

from pepharness.options import CONTEXT, Decorated, env_option
from pepharness.suites.options import (
    DEFAULT_MAX_EXAMPLES,
    OptionError,
    parse_base_url,
    parse_clock_control,
    parse_rate_limit,
)
from pepharness.suites.rules import matches, split_patterns

SUITES = {
    "sinatra": "pepharness.suites.sinatra",
    "operator": "pepharness.suites.operator",
    "pep-frontend": "pepharness.suites.pep_frontend",
    "pep-platform": "pepharness.suites.pep_platform",
}
PLANNED: tuple[str, ...] = ()
DEFAULT_BASE_URLS = {
    "sinatra": "http://127.0.0.1:8101",
    "operator": "http://127.0.0.1:8102",
    "pep-frontend": "http://127.0.0.1:8103",
    "pep-platform": "http://127.0.0.1:8103",
}
PROBE_TIMEOUT_SECONDS = 10
NOT_THERE = (404, 405)
"""A probe's statuses that say the operation is not at that URL: the user's wiring to fix."""


class CheckAborted(click.ClickException):
    """The check could not run (target unreachable, credentials refused, bad option): exit 2,
    one line."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)




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
        reason = "connection refused" if "refused" in str(error).lower() else "cannot connect"
        raise CheckAborted(f"cannot reach {base_url}: {reason}") from None
    except requests.Timeout:
        raise CheckAborted(
            f"cannot reach {base_url}: no answer within {PROBE_TIMEOUT_SECONDS} s"
        ) from None
    except requests.RequestException as error:
        raise CheckAborted(f"cannot reach {base_url}: {type(error).__name__}") from None


def probe_login(base_url: str, email: str, password: str) -> None:
    """Log in once before anything runs: an unreachable target or refused credentials end the
    check with one line, not with a report full of errors."""
    response = reach(
        base_url,
        lambda: requests.post(
            f"{base_url}/1.0/login/",
            json={"email": email, "password": password},
            timeout=PROBE_TIMEOUT_SECONDS,
        ),
    )
    if response.status_code in (400, 401, 403):
        text = response.text.strip().replace("\n", " ")[:80]
        raise CheckAborted(
            f"the target refused the credentials of {email} "
            f"(POST /1.0/login/ answered {response.status_code} {text})"
        )
    # No login there at all is wrong wiring; any other answer (a 5xx, a 200 without the
    # token) is the target's, which the suite names as a rule it breaks (D84).
    if response.status_code in NOT_THERE:
        raise CheckAborted(
            f"{base_url} does not answer like Sinatra: POST /1.0/login/ answered "
            f"{response.status_code}"
        )


def probe_clock(url: str) -> None:
    try:
        response = requests.get(f"{url}/clock", timeout=PROBE_TIMEOUT_SECONDS)
        response.raise_for_status()
        response.json()["now"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise CheckAborted(f"the clock control at {url} does not answer GET {url}/clock") from None


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
        command += ["-n", workers, "--dist", "loadgroup"]
    elif phase == "exclusive":
        command += ["-p", "no:xdist"]
    return command


#CLI
def _common_options(api: str) -> Callable[[Decorated], Decorated]:
    """The options every suite takes: target, reports, budgets, selection."""

    def apply(command: Decorated) -> Decorated:
        options = [
            env_option(
                "--base-url", default=DEFAULT_BASE_URLS[api], show_default=True,
                help="The service under test.",
            ),
            env_option(
                "--report-dir", type=click.Path(file_okay=False, path_type=Path),
                default=Path("reports"), show_default=True,
                help="Where junit.xml, summary.json and report.html go.",
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
        ]
        for option in reversed(options):
            command = option(command)
        return command

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
        self.started = time.monotonic()
        try:
            self.target = parse_base_url(base_url)
        except OptionError as error:
            raise CheckAborted(str(error)) from None
        self.report_dir = report_dir.resolve()
        self.strict = strict
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.max_examples = max_examples
        self.patterns = split_patterns([rules])
        catalog = importlib.import_module(SUITES[api] + ".rules").RULES
        self.selected = [rule for rule in catalog if matches(rule, self.patterns)]
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
        """Run the suite's phases, merge the reports, print the verdict and exit 0 or 1."""
        from pepharness.suites import report

        parts = self.report_dir / report.PARTS_FOLDER
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        (parts / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        for name in (report.SUMMARY, report.JUNIT, report.HTML):
            (self.report_dir / name).unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
        env.update(self.secrets, HYPOTHESIS_STORAGE_DIRECTORY=str(parts / "hypothesis"))

        click.echo(f"pepharness check {self.api}: {self.target}, seed {self.seed}, {banner}")
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
        summary = report.render(
            self.report_dir, found, strict=self.strict, wall_time=time.monotonic() - self.started
        )
        # The per-process results are merged into the reports: nothing of them is left behind.
        shutil.rmtree(parts, ignore_errors=True)
        click.echo("")
        for line in report.summary_lines(summary):
            click.echo(line)
        click.echo(
            f"reports: {self.report_dir / report.JUNIT}, {self.report_dir / report.SUMMARY}, "
            f"{self.report_dir / report.HTML}"
        )
        sys.exit(0 if summary["verdict"] == "pass" else 1)


class CheckGroup(click.Group):
    """`check API`: an API without a suite yet is one line and exit 2, not click's usage error."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in PLANNED:
            available = ", ".join(SUITES)
            raise CheckAborted(f"no conformance suite for {cmd_name} yet (available: {available})")
        if cmd_name == "pep-platform":
            # Its module builds on this one: loaded when asked for, not imported at the top.
            from pepharness.check_platform import check_pep_platform

            return check_pep_platform
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "pep-platform"})


@click.group("check", cls=CheckGroup, context_settings=CONTEXT)
def check() -> None:
    """Check that a service conforms to an API's contract and documented rules.

    Every rule is MUST (the vendor's documents or an RFC require it), SHOULD (best practice) or
    INFO. Each API's check writes junit.xml (one testcase per rule and operation),
    summary.json and a self-contained report.html in --report-dir.

    \b
    Exit 0: every MUST rule passed (and every SHOULD one, with --strict).
    Exit 1: a MUST rule failed (or a SHOULD one, with --strict).
    Exit 2: the target is unreachable, a credential is refused, or an option is wrong.
    """


@check.command("sinatra", context_settings=CONTEXT)
@_common_options("sinatra")
@env_option(
    "--email", default="operator@example.com", show_default=True,
    help="A user with every permission (the mock's seeded operator by default).",
)
@env_option(
    "--password", default="operator-secret", show_default="the seeded operator's",
    help="That user's password.",
)
@env_option(
    "--restricted-email", default="restricted@example.com", show_default=True,
    help="A user without permissions, for the 403 checks (NOT VERIFIED if it cannot log in).",
)
@env_option(
    "--restricted-password", default="restricted-secret", show_default="the seeded one's",
    help="That user's password.",
)
@env_option(
    "--workers", default="auto", show_default=True,
    help="Parallel pytest-xdist workers: a number or 'auto' (one per CPU).",
)
@env_option(
    "--clock-control", default="none", show_default=True, metavar="URL|none",
    help="The target's clock control, e.g. http://127.0.0.1:8101/__admin: the token lifetime "
    "and the rate-limit recovery are then checked by moving its clock.",
)
@env_option(
    "--expect-rate-limit", default=None, metavar="N/SECONDS",
    help="The rate limit the target documents (e.g. 5/1); without it the 429 checks are NOT "
    "VERIFIED.",
)
@env_option(
    "--include-slow", is_flag=True, default=False,
    help="Also run the checks that really wait (the 20-minute token lifetime).",
)
def check_sinatra(
    base_url: str,
    report_dir: Path,
    max_examples: int,
    seed: int | None,
    strict: bool,
    rules: str,
    operations: str,
    email: str,
    password: str,
    restricted_email: str,
    restricted_password: str,
    workers: str,
    clock_control: str,
    expect_rate_limit: str | None,
    include_slow: bool,
) -> None:
    """Check a Sinatra game-catalog API (contracts/sinatra.yaml): login and its 20-minute token,
    the catalog's filters, the histories, Basic auth and the rate limit of the paginated one.

    \b
    Exit 0: every MUST rule passed (and every SHOULD one, with --strict).
    Exit 1: a MUST rule failed (or a SHOULD one, with --strict).
    Exit 2: the target is unreachable, the credentials are refused, or an option is wrong.
    """
    run = Run(
        "sinatra", base_url=base_url, report_dir=report_dir, max_examples=max_examples,
        seed=seed, strict=strict, rules=rules, operations=operations,
    )
    try:
        clock = parse_clock_control(clock_control)
        limit = parse_rate_limit(expect_rate_limit) if expect_rate_limit else None
    except OptionError as error:
        raise CheckAborted(str(error)) from None
    jobs = _workers(workers)
    probe_login(run.target, email, password)
    if clock is not None:
        probe_clock(clock)
    run.arguments += [
        "--email", email, "--restricted-email", restricted_email,
        "--clock-control", clock or "none",
    ]
    if limit is not None:
        run.arguments += ["--expect-rate-limit", f"{limit[0]}/{limit[1]:g}"]
    if include_slow:
        run.arguments.append("--include-slow")
    run.secrets.update(
        PEPHARNESS_PASSWORD=password, PEPHARNESS_RESTRICTED_PASSWORD=restricted_password
    )
    run.execute(workers=jobs, banner=f"workers {jobs}, max examples {max_examples}")



def probe_reachable(base_url: str, path: str) -> None:
    """POST `{}` to `path` once: any HTTP answer will do; no answer ends the check (exit 2)."""
    url = f"{base_url}{path}"
    reach(base_url, lambda: requests.post(url, json={}, timeout=PROBE_TIMEOUT_SECONDS))


def mock_operator_tokens(base_url: str) -> tuple[list[str], str] | None:
    """For a pep-harness operator mock only: a seeded player's token, and a token programmed
    (through its /__admin) to have expired. None for any other operator."""
    try:
        listed = requests.get(f"{base_url}/__admin/tokens", timeout=PROBE_TIMEOUT_SECONDS)
        seeded = [
            str(token["identityToken"])
            for token in listed.json()["tokens"]
            if token.get("seeded") and token.get("playerId")
        ]
        if not listed.ok or not seeded:
            return None
        expired = f"pepharness-expired-{secrets.token_hex(8)}"
        programmed = requests.post(
            f"{base_url}/__admin/tokens",
            json={"identityToken": expired, "expiresAt": "2020-01-01T00:00:00Z",
                  "playerId": "expired-player"},
            timeout=PROBE_TIMEOUT_SECONDS,
        )
        return ([seeded[0]], expired) if programmed.status_code == 201 else None
    except (requests.RequestException, ValueError, KeyError, TypeError, AttributeError):
        return None


def _tokens(values: tuple[str, ...], option: str) -> list[str]:
    tokens = [value.strip() for value in values if value.strip()]
    for token in tokens:
        if "\n" in token or "\r" in token:
            raise CheckAborted(f"{option} values cannot hold a line break")
    return tokens


@check.command("operator", context_settings=CONTEXT)
@_common_options("operator")
@env_option(
    "--valid-token", "valid_tokens", multiple=True, metavar="TOKEN",
    help="An identity token the operator answers 200 (repeatable; at least one). Against a "
    "pep-harness operator mock it may be left out: a seeded player's token is used, and one "
    "programmed to have expired.",
)
@env_option(
    "--expired-token", "expired_tokens", multiple=True, metavar="TOKEN",
    help="An identity token that has expired (repeatable); without one, the 401-on-expiry "
    "check is NOT VERIFIED.",
)
@env_option(
    "--burst", type=click.IntRange(min=1, max=10_000), default=50, show_default=True,
    help="Concurrent validations in the burst check.",
)
def check_operator(
    base_url: str,
    report_dir: Path,
    max_examples: int,
    seed: int | None,
    strict: bool,
    rules: str,
    operations: str,
    valid_tokens: tuple[str, ...],
    expired_tokens: tuple[str, ...],
    burst: int,
) -> None:
    """Check an operator's identity-validation endpoint (contracts/operator-identity.yaml), the
    one the PEP calls at every player login: 200 with playerId and an RFC 3339 expiresAt in the
    future, 401 for an unknown or expired token, 400 for a malformed request, no stack trace in
    any answer, a burst of concurrent calls held, and schemathesis over the contract.

    Tokens are secrets: they reach the suite through its environment, never its command line,
    and curl lines in the reports show $PEPHARNESS_VALID_TOKEN_1 instead.

    \b
    Exit 0: every MUST rule passed (and every SHOULD one, with --strict).
    Exit 1: a MUST rule failed (or a SHOULD one, with --strict).
    Exit 2: the target is unreachable, no --valid-token was given (and the target is not a
            pep-harness operator mock), or an option is wrong.
    """
    run = Run(
        "operator", base_url=base_url, report_dir=report_dir, max_examples=max_examples,
        seed=seed, strict=strict, rules=rules, operations=operations,
    )
    valid = _tokens(valid_tokens, "--valid-token")
    expired = _tokens(expired_tokens, "--expired-token")
    probe_reachable(run.target, "/api/auth/v1/player")
    if not valid:
        mock_tokens = mock_operator_tokens(run.target)
        if mock_tokens is None:
            raise CheckAborted(
                "give at least one --valid-token (a token the operator answers 200)"
            )
        valid, programmed = mock_tokens
        expired = expired or [programmed]
        click.echo(
            "no --valid-token: the target is a pep-harness operator mock; using a seeded "
            "player's token and one programmed to have expired"
        )
    run.arguments += ["--burst", str(burst)]
    run.secrets.update(
        PEPHARNESS_VALID_TOKENS="\n".join(valid), PEPHARNESS_EXPIRED_TOKENS="\n".join(expired)
    )
    run.execute(
        workers="1",
        banner=f"{len(valid)} valid and {len(expired)} expired token(s), burst {burst}, "
        f"max examples {max_examples}",
    )


def probe_pep_wiring(base_url: str, client_id: str, operator_port: int) -> str:
    """Play the operator once and log in through the PEP: it must call that operator. Returns
    how the operator is played ("served by the check" or "the operator mock already there")."""
    from pepharness.suites.pep_frontend.harness import HarnessError, HarnessOperator

    harness = HarnessOperator(operator_port)
    try:
        harness.start()
        mark = harness.mark()
        token = harness.program()
        try:
            answer = requests.post(
                f"{base_url}/api/auth/v1/player",
                json={"identityToken": token, "clientId": client_id},
                timeout=30,
            )
        except requests.RequestException as error:
            raise CheckAborted(f"cannot log in at {base_url}: {type(error).__name__}") from None
        if not harness.calls(token, since=mark):
            text = answer.text.strip().replace("\n", " ")[:80]
            raise CheckAborted(
                f"the PEP did not call the operator at {harness.url} (its login answered "
                f"{answer.status_code} {text}): start it with that operator URL, and check "
                f"that it knows --client-id {client_id}"
            )
        return "served by the check" if harness.owned else "the operator mock already there"
    except HarnessError as error:
        raise CheckAborted(str(error)) from None
    finally:
        harness.close()


@check.command("pep-frontend", context_settings=CONTEXT)
@_common_options("pep-frontend")
@env_option(
    "--client-id", default="pep-demo-client", show_default=True,
    help="An API client of the PEP allowed on the Frontend gateway.",
)
@env_option(
    "--client-secret", default=None,
    help="That client's secret: the check fails if it ever reaches the operator.",
)
@env_option(
    "--operator-port", type=click.IntRange(min=1, max=65535), default=8102, show_default=True,
    help="The loopback port the harness plays the operator on; the PEP under test must call "
    "http://127.0.0.1:PORT. When a pep-harness operator mock already serves it (`pepharness "
    "serve all`), the check programs that one (and cannot stop it: the dead-operator check is "
    "then NOT VERIFIED).",
)
@env_option(
    "--operator-timeout", type=click.FloatRange(min=0.5, max=120), default=10.0,
    show_default=True,
    help="Seconds the PEP may take to answer when the operator hangs or is down.",
)
def check_pep_frontend(
    base_url: str,
    report_dir: Path,
    max_examples: int,
    seed: int | None,
    strict: bool,
    rules: str,
    operations: str,
    client_id: str,
    client_secret: str | None,
    operator_port: int,
    operator_timeout: float,
) -> None:
    """Check a PEP's Frontend gateway (contracts/pep-frontend.yaml) with the harness playing the
    operator it calls: the call the PEP makes (its body, no client secret, no retry of a 4xx),
    how it maps each operator answer (400/401/404, a 500 or a broken 200 as 502, silence or a
    dead operator as a bounded 504), the token it issues (signed, never outliving expiresAt,
    expiring), x-authorization on every player endpoint (missing, garbage, forged, alg none,
    another audience), and schemathesis over the contract.

    \b
    Exit 0: every MUST rule passed (and every SHOULD one, with --strict).
    Exit 1: a MUST rule failed (or a SHOULD one, with --strict).
    Exit 2: the PEP is unreachable, does not call the operator on --operator-port, that port is
            taken by something else, or an option is wrong.
    """
    run = Run(
        "pep-frontend", base_url=base_url, report_dir=report_dir, max_examples=max_examples,
        seed=seed, strict=strict, rules=rules, operations=operations,
    )
    probe_reachable(run.target, "/api/auth/v1/player")
    played = probe_pep_wiring(run.target, client_id, operator_port)
    run.arguments += [
        "--client-id", client_id, "--operator-port", str(operator_port),
        "--operator-timeout", f"{operator_timeout:g}",
    ]
    if client_secret:
        run.secrets["PEPHARNESS_CLIENT_SECRET"] = client_secret
    run.execute(
        workers="1",
        banner=f"client {client_id}, operator on 127.0.0.1:{operator_port} ({played}), "
        f"max examples {max_examples}",
    )

