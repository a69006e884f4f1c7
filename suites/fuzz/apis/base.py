"""What the fuzzer knows of any API: the `Api` record, the context a flow builds its requests
from, and the helpers the four APIs' modules share."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.core import NOT_SET
from schemathesis.schemas import APIOperation, BaseSchema

from pepharness.suites import boundaries, documents, generated
from pepharness.suites.http import Answer, Secrets
from pepharness.suites.options import SuiteOptions

FLOW_GENERATED = "generated"

EXTRA_REQUEST_CHECKS = ("ignored_auth", "unsupported_method")
"""Checks that send requests of their own: the fuzzer's traffic is the planned sequence only."""


class FuzzSetupError(RuntimeError):
    """The target cannot be fuzzed as configured (no credentials, no operator); one line."""


Flow = Callable[["FlowContext", random.Random], Generator[Case[Any], Answer | None, None]]
"""A realistic flow: yields the cases it sends, one at a time, and is sent back each answer
(None when none came), so that a later step can use an earlier answer."""


@dataclass
class FlowContext:
    """What a flow builds its requests from: the schema's operations by id, the item's index
    (for ids that repeat with the seed) and the run's options."""

    operations: Mapping[str, APIOperation[Any, Any, Any, Any]]
    index: int
    options: SuiteOptions
    seed: int

    def case(
        self,
        operation_id: str,
        *,
        path_parameters: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = NOT_SET,
        media_type: str | None = None,
    ) -> Case[Any]:
        operation = self.operations[operation_id]
        if media_type is None and body is not NOT_SET:
            media_type = "application/json"
        return operation.Case(
            path_parameters=path_parameters, query=query, body=body, media_type=media_type
        )

    def unique(self, prefix: str, step: int = 0) -> str:
        """An id that only this seed's item `index` (and `step` of it) uses."""
        return f"{prefix}-s{self.seed}-{self.index}-{step}"


def json_of(answer: Answer | None) -> Any:
    if answer is None:
        return None
    try:
        return json.loads(answer.text)
    except ValueError:
        return None


@dataclass
class Api:
    """One API as the fuzzer drives it."""

    name: str
    contract: str
    accepted: Mapping[str, list[str]]
    flows: dict[str, Flow]
    profile: dict[str, float]
    """The default mix: flow name (or `generated`) → weight."""
    rules: Mapping[str, Any]
    """Schemathesis check name → the conformance rule it reports as."""
    credentials: Callable[[Case[Any]], tuple[str | None, dict[str, str]]]
    """The auth label and headers of a case, fetched right before it is sent (tokens renew)."""
    secrets: Secrets = field(default_factory=Secrets)
    prepare: Callable[[Case[Any], FlowContext], None] = lambda case, context: None
    """Deterministic per-item changes to a generated case (the PEP's fresh transaction ids)."""
    skip_checks: Callable[[Case[Any]], tuple[str, ...]] = lambda case: ()
    hook: Callable[[schemathesis.HookContext, Case[Any]], bool] | None = None
    close: Callable[[], None] = lambda: None
    exclude: tuple[str, ...] = ()
    """Operation ids never generated (still used by flows)."""
    boundary: Callable[[], list[boundaries.Base]] | None = None
    """A well-formed request of each operation, for the `boundary` flow's probes (D95)."""

    def schema(self, options: SuiteOptions) -> BaseSchema:
        """The contract, configured as its conformance check configures it, without auth
        providers: the fuzzer authenticates each request as it sends it."""
        document = copy.deepcopy(documents.load(self.contract))
        document.pop("webhooks", None)
        without_security(document)
        loaded = schemathesis.openapi.from_dict(
            document, config=generated.config(options, self.accepted)
        )
        if self.hook is not None:
            loaded.hook("filter_case")(self.hook)
        return loaded

    def checks(self) -> list[CheckFunction]:
        """The conformance check's schemathesis checks, but those that send requests of
        their own."""
        functions, _ = generated.enabled_checks(self.rules, [])
        return [f for f in functions if f.__name__ not in EXTRA_REQUEST_CHECKS]


def without_security(document: dict[str, Any]) -> None:
    """Leave the credentials out of what schemathesis generates from: it would take their
    headers for parameters to break, and spend most negative cases on a missing token (the
    checks' business) rather than on the data. The fuzzer sends the real ones with each
    request; its checks still read each operation's documented 401 and 403."""
    document.pop("security", None)
    document.get("components", {}).pop("securitySchemes", None)
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)


def boundary_flow(context: FlowContext, rng: random.Random) -> Generator[Case[Any], Any, None]:
    """The `boundary` flow's name in `flows` (so that --profile knows it): the runner sends its
    probes itself, as raw bytes no generated case can carry (suites/fuzz/boundary.py)."""
    yield from ()


def operation_id(case: Case[Any]) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))
