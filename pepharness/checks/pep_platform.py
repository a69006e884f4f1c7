"""`pepharness check pep-platform`: a PEP's Platform gateway against contracts/pep-platform.yaml."""

from __future__ import annotations

import functools
import os
import shlex
from typing import Any

import requests

from pepharness.checks.common import (
    NOT_THERE,
    PROBE_TIMEOUT_SECONDS,
    CheckAborted,
    Run,
    check_command,
    clock_and_limit,
    clock_control_option,
    probe_clock,
    probe_reachable,
    rate_limit_option,
    reach,
)
from pepharness.options import env_option

API = "pep-platform"
TOKEN_PATH = "/api/oauth/v1/token"
DEMO_CLIENT_ID = "pep-demo-client"
DEMO_CLIENT_SECRET = "pep-demo-secret"


def _token_requests(client_id: str, secret: str) -> list[tuple[str, dict[str, Any]]]:
    """The three ways a client may ask for a token (D51): HTTP Basic, the form, JSON."""
    return [
        ("HTTP Basic", {"data": {"grant_type": "client_credentials"}, "auth": (client_id, secret)}),
        ("form", {"data": {"grant_type": "client_credentials", "client_id": client_id,
                           "client_secret": secret}}),
        ("JSON", {"json": {"clientId": client_id, "clientSecret": secret}}),
    ]


def probe_token(base_url: str, client_id: str, secret: str) -> str:
    """Ask for a token before anything runs: refused credentials, or a target that is no
    Platform gateway, end the check with one line. Returns how the token was obtained."""
    answers = []
    for how, kwargs in _token_requests(client_id, secret):
        response = reach(base_url, functools.partial(
            requests.post, f"{base_url}{TOKEN_PATH}", timeout=PROBE_TIMEOUT_SECONDS, **kwargs
        ))
        try:
            body = response.json()
        except ValueError:
            body = None
        token = (body.get("access_token") or body.get("accessToken")) if isinstance(
            body, dict
        ) else None
        if response.status_code == 200 and isinstance(token, str) and token:
            return how
        answers.append(response)
    first = answers[0]
    text = first.text.strip().replace("\n", " ")[:80]
    if all(answer.status_code in (400, 401, 403) for answer in answers):
        raise CheckAborted(
            f"the target refused the credentials of {client_id} "
            f"(POST {TOKEN_PATH} answered {first.status_code} {text})"
        )
    if all(answer.status_code in NOT_THERE for answer in answers):
        raise CheckAborted(
            f"{base_url} does not answer like a PEP Platform gateway: POST {TOKEN_PATH} "
            f"answered {first.status_code} {text}"
        )
    # A 200 without access_token, a 5xx: the target's answer, which the suite names (D84).
    return "none of the three ways (the suite names the rule the answers break)"


@check_command(API)
@env_option(
    "--client-id", default=DEMO_CLIENT_ID, show_default=True,
    help="An API client of the PEP allowed on the Platform gateway.",
)
@env_option(
    "--client-secret", default=DEMO_CLIENT_SECRET, show_default="the seeded client's",
    help="That client's secret (reaches the suite through its environment only; curl lines "
    "show $PEPHARNESS_CLIENT_SECRET).",
)
@clock_control_option(
    "http://127.0.0.1:8103/__admin", "the token's expiry and the rate limit's recovery are"
)
@rate_limit_option(
    "The data fetch's rate limit (the vendor documents 100/60); without it the 429 checks "
    "are NOT VERIFIED."
)
@env_option(
    "--restart-command", default=None, metavar="CMD",
    help="A shell command, run from this directory, that restarts the target (e.g. 'systemctl "
    "restart pep'): events acknowledged just before must still be there after it. Without it "
    "the restart check is NOT VERIFIED. Reaches the suite through its environment only.",
)
def check_pep_platform(
    run: Run,
    client_id: str,
    client_secret: str,
    clock_control: str,
    expect_rate_limit: str | None,
    restart_command: str | None,
) -> None:
    """Check a PEP's Platform gateway (contracts/pep-platform.yaml): the OAuth 2.0 client
    credentials token (by HTTP Basic, the form or JSON, its RFC 6749 errors, its scopes, its
    expiry), Bearer tokens on every endpoint (missing, garbage, forged, alg none, another
    scope), the reactive events (202, 400, a retry counted once), the bulk player sync (its
    per-player report, gzip and Brotli, the task), the data fetch (limit, pages, its rate
    limit), that an acknowledged event is stored (at once, and across a restart with
    --restart-command), and schemathesis over the contract. Events and players it sends are
    stored by the target for good.

    \b
    Exit 0: every MUST rule passed (and every SHOULD one, with --strict).
    Exit 1: a MUST rule failed (or a SHOULD one, with --strict).
    Exit 2: the target is unreachable, the credentials are refused, the clock control does not
            answer, or an option is wrong.
    """
    clock, limit = clock_and_limit(clock_control, expect_rate_limit)
    probe_reachable(run.target, TOKEN_PATH)
    probe_token(run.target, client_id, client_secret)
    if clock is not None:
        probe_clock(clock)
    run.arguments += ["--client-id", client_id, "--clock-control", clock or "none"]
    if limit is not None:
        run.arguments += ["--expect-rate-limit", f"{limit[0]}/{limit[1]:g}"]
    run.secrets["PEPHARNESS_CLIENT_SECRET"] = client_secret
    restart = (restart_command or "").strip()
    if restart:
        run.secrets["PEPHARNESS_RESTART_COMMAND"] = in_this_directory(restart)
    expected = f"{limit[0]}/{limit[1]:g} s" if limit is not None else "not expected"
    run.execute(
        workers="1",
        banner=f"client {client_id}, clock control {clock or 'none'}, rate limit {expected}, "
        f"restart {'by command' if restart else 'not checked'}",
    )


def in_this_directory(command: str) -> str:
    """`command` run from the current directory: the suite runs in its report folder."""
    return f"cd {shlex.quote(os.getcwd())} || exit 125\n{command}"
