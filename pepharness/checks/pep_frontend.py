"""`pepharness check pep-frontend`: a PEP's Frontend gateway against contracts/pep-frontend.yaml,
with the harness playing the operator it calls."""

from __future__ import annotations

import click
import requests

from pepharness.checks.common import CheckAborted, Run, check_command, probe_reachable
from pepharness.options import env_option


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


@check_command("pep-frontend")
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
    run: Run,
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
        banner=f"client {client_id}, operator on 127.0.0.1:{operator_port} ({played})",
    )
