"""`pepharness check operator`: an operator's identity-validation endpoint against
contracts/operator-identity.yaml."""

from __future__ import annotations

import secrets

import click
import requests

from pepharness.checks.common import (
    PROBE_TIMEOUT_SECONDS,
    CheckAborted,
    Run,
    check_command,
    probe_reachable,
)
from pepharness.options import env_option


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


@check_command("operator")
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
    run: Run,
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
        banner=f"{len(valid)} valid and {len(expired)} expired token(s), burst {burst}",
    )
