"""What the fuzzer knows of each API: its contract as a schemathesis schema, how a request is
authenticated (as the conformance checks authenticate), the realistic flows a profile mixes with
generated requests, and which schemathesis checks judge the answers. One module per API; the
shared record and helpers in `base`."""

from __future__ import annotations

from collections.abc import Callable

from pepharness.suites.fuzz.apis import operator, pep_frontend, pep_platform, sinatra
from pepharness.suites.fuzz.apis.base import (
    EXTRA_REQUEST_CHECKS,
    FLOW_GENERATED,
    Api,
    Flow,
    FlowContext,
    FuzzSetupError,
    boundary_flow,
    json_of,
    operation_id,
    without_security,
)
from pepharness.suites.options import SuiteOptions

APIS: dict[str, Callable[[SuiteOptions], Api]] = {
    "sinatra": sinatra.sinatra,
    "operator": operator.operator,
    "pep-platform": pep_platform.pep_platform,
    "pep-frontend": pep_frontend.pep_frontend,
}

__all__ = [
    "APIS", "EXTRA_REQUEST_CHECKS", "FLOW_GENERATED", "Api", "Flow", "FlowContext",
    "FuzzSetupError", "boundary_flow", "json_of", "operation_id", "without_security",
]
