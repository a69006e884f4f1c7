"""`pepharness check sinatra`: a Sinatra game-catalog API against contracts/sinatra.yaml."""

from __future__ import annotations

from collections.abc import Callable

import requests

from pepharness.checks.common import (
    NOT_THERE,
    PROBE_TIMEOUT_SECONDS,
    CheckAborted,
    Run,
    _workers,
    check_command,
    clock_and_limit,
    clock_control_option,
    probe_clock,
    rate_limit_option,
    reach,
)
from pepharness.options import Decorated, env_option


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


def _user(
    prefix: str, email: str, password: str, who: str, what: str
) -> Callable[[Decorated], Decorated]:
    """--[PREFIX-]email and --[PREFIX-]password of one user."""

    def apply(command: Decorated) -> Decorated:
        command = env_option(
            f"--{prefix}password", default=password, show_default=f"the {who}'s",
            help="That user's password.",
        )(command)
        return env_option(f"--{prefix}email", default=email, show_default=True, help=what)(command)

    return apply


@check_command("sinatra")
@_user(
    "", "operator@example.com", "operator-secret", "seeded operator",
    "A user with every permission (the mock's seeded operator by default).",
)
@_user(
    "restricted-", "restricted@example.com", "restricted-secret", "seeded one",
    "A user without permissions, for the 403 checks (NOT VERIFIED if it cannot log in).",
)
@env_option(
    "--workers", default="auto", show_default=True,
    help="Parallel pytest-xdist workers: a number or 'auto' (one per CPU).",
)
@clock_control_option(
    "http://127.0.0.1:8101/__admin", "the token lifetime and the rate-limit recovery are"
)
@rate_limit_option(
    "The rate limit the target documents (e.g. 5/1); without it the 429 checks are NOT "
    "VERIFIED."
)
@env_option(
    "--include-slow", is_flag=True, default=False,
    help="Also run the checks that really wait (the 20-minute token lifetime).",
)
def check_sinatra(
    run: Run,
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
    clock, limit = clock_and_limit(clock_control, expect_rate_limit)
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
    run.execute(workers=jobs, banner=f"workers {jobs}")

