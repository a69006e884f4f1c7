"""The PEP's Frontend gateway as the fuzzer drives it: the harness plays the PEP's operator and
the play flow logs players in."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

from schemathesis import Case

from pepharness.suites import boundaries
from pepharness.suites.fuzz.apis.base import (
    FLOW_GENERATED,
    Api,
    FlowContext,
    FuzzSetupError,
    boundary_flow,
    operation_id,
)
from pepharness.suites.fuzz.boundary import FLOW_BOUNDARY
from pepharness.suites.options import SuiteOptions


def pep_frontend(options: SuiteOptions) -> Api:
    """The harness plays the PEP's operator on --operator-port, as `check pep-frontend` does:
    a login flow programs an identity token there and logs in with it."""
    import requests

    from pepharness.suites.pep_frontend import contract, rules
    from pepharness.suites.pep_frontend.client import HEADER, LOGIN, Pep, access_token
    from pepharness.suites.pep_frontend.harness import HarnessError, HarnessOperator

    harness = HarnessOperator(options.operator_port)
    pep = Pep(options)
    try:
        harness.start()
    except HarnessError as error:
        raise FuzzSetupError(str(error)) from None
    base_url = options.base_url or ""
    session: dict[str, str] = {}

    def player_token() -> str:
        if "token" not in session:
            identity = harness.program()
            answer = requests.post(f"{base_url}{LOGIN}", timeout=30, json={
                "identityToken": identity, "clientId": options.client_id})
            token = access_token(answer)
            if token is None:
                harness.close()
                raise FuzzSetupError(
                    f"cannot log a player in at {base_url}{LOGIN}: {answer.status_code} (the "
                    f"PEP must call its operator at 127.0.0.1:{options.operator_port})"
                )
            session["token"] = token
        return session["token"]

    def credentials(case: Case[Any]) -> tuple[str | None, dict[str, str]]:
        if operation_id(case) == "authenticatePlayer":
            return None, {}
        return HEADER, {HEADER: player_token()}

    def play(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
        """A player opens the casino: logs in, reads the session, profile, missions,
        leaderboard and notifications, and now and then logs out."""
        identity = harness.program()
        answer = yield context.case("authenticatePlayer", body={
            "identityToken": identity, "clientId": options.client_id})
        token = access_token(answer) if answer is not None else None
        if token is None:
            return
        reads = ["getSession", "getPlayer", "getMissions", "getXpLeaderboard", "getNotifications"]
        for name in rng.sample(reads, rng.randint(2, len(reads))):
            case = context.case(name)
            case.headers[HEADER] = token
            yield case
        if rng.random() < 0.3:
            case = context.case("endSession")
            case.headers[HEADER] = token
            yield case

    return Api(
        name="pep-frontend",
        contract="pep-frontend",
        accepted=contract.ACCEPTED,
        rules=rules.SCHEMATHESIS_CHECKS,
        flows={"play": play, FLOW_BOUNDARY: boundary_flow},
        profile={"play": 5, FLOW_GENERATED: 5, FLOW_BOUNDARY: 1},
        credentials=credentials,
        close=harness.close,
        boundary=lambda: [boundaries.pep_frontend_base(pep, harness, op)
                          for op in sorted(boundaries.operations("pep-frontend"),
                                           key=lambda op: op.startswith("DELETE"))],
        # A generated DELETE would end the session every other generated request uses.
        exclude=("endSession",),
    )
