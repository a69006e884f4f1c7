"""What every suite's schemathesis test shares: which built-in checks run as which rules, and
one call that sends a generated case and turns schemathesis' failures into named rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from schemathesis import Case
from schemathesis.checks import CHECKS, CheckFunction, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.transport import Response

from pepharness.suites.http import Target, summarize
from pepharness.suites.options import SuiteOptions
from pepharness.suites.rules import Level, Rule, RuleCatalog, RuleFailure, RuleFailures, matches

STANDARD = {
    "not_a_server_error": (Level.MUST, "No input, valid or not, makes the service answer 5xx."),
    "status_code_conformance": (
        Level.MUST, "Every status answered is documented for its operation.",
    ),
    "content_type_conformance": (
        Level.MUST, "Every body has the documented media type (application/json).",
    ),
    "response_schema_conformance": (
        Level.MUST, "Every body matches the schema of its operation and status.",
    ),
    "response_headers_conformance": (
        Level.MUST, "Declared response headers are present and well-formed.",
    ),
    "negative_data_rejection": (
        Level.MUST, "Input that breaks the contract is refused with a 4xx.",
    ),
    "positive_data_acceptance": (
        Level.MUST, "Input that fits the contract is accepted, or refused only as documented.",
    ),
    "ignored_auth": (
        Level.MUST, "An operation that documents authentication does not answer without it.",
    ),
    "unsupported_method": (
        Level.SHOULD, "An undocumented method on a documented path is 405 (RFC 9110 §15.5.6).",
    ),
}
"""Schemathesis check name → (level, summary) of the rule it reports as, for the suites that
take the standard wording."""


NOT_APPLICABLE = (
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
    "missing_required_header",
)
"""Schemathesis checks that need what these APIs have not: resources created and deleted, a
second identity to swap in, a required header parameter (their only ones are security
schemes, which ignored_auth covers)."""


def config(
    options: SuiteOptions,
    accepted: Mapping[str, Sequence[str]],
    *,
    generation: Mapping[str, Any] | None = None,
    operations: Sequence[Mapping[str, Any]] = (),
) -> SchemathesisConfig:
    """A suite's schemathesis configuration (what a schemathesis.toml would say): positive and
    negative generation with --max-examples and --seed, no stateful phase, `accepted` the
    statuses with which each operation may refuse well-formed input, and any per-operation
    settings of `operations`."""
    data: dict[str, Any] = {
        "generation": {
            "mode": "all",
            "max-examples": options.max_examples,
            "database": "none",
            # No NUL and no lone surrogate in generated text: a JSON Schema string admits them,
            # and every API documents them as the 400 of text it cannot encode (D81, D176);
            # the boundary probes send them on purpose, one at a time.
            "allow-x00": False,
            "codec": "utf-8",
            **(generation or {}),
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {name: {"enabled": False} for name in NOT_APPLICABLE},
        "request-timeout": 30,
        "operations": [
            {
                "include-operation-id": operation_id,
                "checks": {"positive_data_acceptance": {"expected-statuses": list(statuses)}},
            }
            for operation_id, statuses in accepted.items()
        ]
        + [dict(operation) for operation in operations],
    }
    if options.seed is not None:
        data["seed"] = options.seed
    return SchemathesisConfig.from_dict(data)


def standard_rules(catalog: RuleCatalog, sources: Mapping[str, str]) -> dict[str, Rule]:
    """Add one rule per schemathesis check named in `sources` (check name → where the rule
    comes from) to `catalog`; the mapping check name → rule, for `enabled_checks`."""
    added = {}
    for name, source in sources.items():
        level, summary = STANDARD[name]
        added[name] = catalog.add(f"check_{name}", level, source, summary)
    return added


def enabled_checks(
    mapping: Mapping[str, Rule], selected: Sequence[str]
) -> tuple[list[CheckFunction], list[Rule]]:
    """The schemathesis check functions to run and the rules they report as, narrowed to the
    rules `--rules` selects."""
    load_all_checks()
    functions: list[CheckFunction] = []
    covered: list[Rule] = []
    for check in CHECKS.get_all():
        if isinstance(check, type):
            continue
        rule = mapping.get(getattr(check, "__name__", ""))
        if rule is None or not matches(rule, selected):
            continue
        functions.append(check)
        covered.append(rule)
    return functions, covered


def rule_of(failure: Failure, mapping: Mapping[str, Rule]) -> Rule:
    """The rule a schemathesis failure breaks. A failure class can serve two checks (a header off
    its schema is a JsonSchemaError, like a body off its schema): its title tells them apart."""
    names = [name for name in type(failure).checks if name in mapping]
    headers = mapping.get("response_headers_conformance")
    heading = "header" in failure.title.lower()
    if headers is not None and "response_headers_conformance" in names and heading:
        return headers
    if names:
        return mapping[names[0]]
    if "server error" in failure.title.lower() and "not_a_server_error" in mapping:
        return mapping["not_a_server_error"]
    return mapping["status_code_conformance"]


def call_and_check(
    case: Case[Any],
    target: Target,
    checks: list[CheckFunction],
    mapping: Mapping[str, Rule],
    *,
    session: requests.Session | None = None,
) -> Response:
    """Send `case` and run `checks` on the answer (schemathesis' own Response: lower-case
    header names, a list of values each); a failure is raised as RuleFailures naming the
    broken rules, each with the received answer and a curl line."""
    base_url = target.base_url
    session = session or target.paced
    response = case.call(base_url=base_url, session=session)
    try:
        case.validate_response(
            response,
            checks=checks,
            transport_kwargs={"base_url": base_url, "session": session},
        )
    except FailureGroup as group:
        curl = target.curl(response)
        failures = [
            RuleFailure(
                rule_of(failure, mapping),
                failure.title,
                received=f"{summarize(response)}\n{failure.message}".strip(),
                documented=_documented(case, failure),
                curl=curl,
                operation=f"{case.operation.method.upper()} {case.operation.path}",
            )
            for failure in group.exceptions
            if isinstance(failure, Failure)
        ]
        raise RuleFailures(failures, str(group)) from None
    return response


def _documented(case: Case[Any], failure: Failure) -> str:
    responses = case.operation.definition.raw.get("responses", {})
    statuses = ", ".join(sorted(responses))
    return f"{failure.kind_title} (schemathesis {', '.join(type(failure).checks) or 'check'}); " \
        f"documented statuses: {statuses}"
