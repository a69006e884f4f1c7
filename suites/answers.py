"""check_answers_declare_every_field, shared by every suite: the 2xx JSON answers to valid
requests of an operation carry no field its contract's response schema does not declare.

Each suite sends the requests (its own client, its own credentials) and hands the answers to
`check`, which walks them against the schema (suites/declared.py), fails the rule with every
undeclared field's JSON path and a curl line, and leaves the declared fields no answer carried
(`fields_never_seen`, INFO) in the run's parts folder for the report (D97).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import requests

from pepharness.suites import declared, documents
from pepharness.suites.http import summarize
from pepharness.suites.options import SuiteOptions
from pepharness.suites.rules import Rule, fail, not_verified

RULE_NAME = "check_answers_declare_every_field"
SUMMARY = "Every field of a 2xx JSON answer is declared by the operation's response schema."
NEVER_SEEN_PREFIX = "fields-never-seen-"
SHOWN_FIELDS = 8


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:39] + "…"


Gather = Callable[[], Sequence[requests.Response]]
"""Sends a suite's valid requests of one operation and returns the answers; a RuntimeError
(no credentials or sample data to be had) makes the check NOT VERIFIED with its message."""


def check(
    rule: Rule,
    contract: str,
    operation: str,
    responses: Sequence[requests.Response] | Gather,
    curl: Callable[[requests.Response], str],
    options: SuiteOptions | None = None,
) -> None:
    """Fail `rule` when a 2xx JSON answer among `responses` (to valid requests of `operation`,
    `METHOD /template`) carries a field the contract does not declare; NOT VERIFIED when none
    of them is a 2xx. Records the declared fields none of them carried. `responses` may be a
    gather function, called here (see `Gather`)."""
    if callable(responses):
        try:
            responses = responses()
        except RuntimeError as error:
            # No credentials or sample data to be had: the rules of those say why.
            not_verified(str(error))
    document = documents.load(contract)
    method, template = operation.split(" ", 1)
    answered = [r for r in responses if 200 <= r.status_code < 300]
    if not answered:
        shown = "; ".join(summarize(r, 100) for r in responses) or "no request"
        not_verified(f"no 2xx answer to a valid request of {operation} to read ({shown})")
    seen: dict[int, set[str]] = {}
    schemas: dict[int, Any] = {}
    for response in answered:
        schema = declared.response_schema(document, method, template, response.status_code)
        body = _body(response)
        if schema is None or body is None:
            continue  # no JSON body documented or sent: other rules judge that
        schemas[response.status_code] = schema
        found = declared.walk(document, schema, body)
        seen.setdefault(response.status_code, set()).update(found.seen)
        if found.undeclared:
            paths = list(found.undeclared)
            listed = ", ".join(
                f"{path} (e.g. {_shown(found.undeclared[path])})"
                for path in paths[:SHOWN_FIELDS]
            )
            more = f" (+{len(paths) - SHOWN_FIELDS} more)" if len(paths) > SHOWN_FIELDS else ""
            _record(options, rule, operation, schemas, seen, document)
            fail(
                rule,
                f"the {response.status_code} answer carries {len(paths)} field(s) the contract "
                f"does not declare: {', '.join(paths[:SHOWN_FIELDS])}{more}",
                received=listed + more,
                documented=f"only the fields of {operation}'s {response.status_code} schema in "
                f"contracts/{contract}.yaml",
                curl=curl(response),
                operation=operation,
            )
    _record(options, rule, operation, schemas, seen, document)


def never_seen(document: Any, schema: Any, seen: set[str]) -> list[str]:
    """The fields `schema` declares that no answer carried, shallowest first; a field under one
    never seen is not listed again."""
    missing = sorted(declared.declared_fields(document, schema) - seen, key=lambda p: (
        p.count(".") + p.count("["), p))
    kept: list[str] = []
    for path in missing:
        if not any(path.startswith(parent + ".") or path.startswith(parent + "[")
                   for parent in kept):
            kept.append(path)
    return kept


def _record(
    options: SuiteOptions | None,
    rule: Rule,
    operation: str,
    schemas: dict[int, Any],
    seen: dict[int, set[str]],
    document: Any,
) -> None:
    """Leave the declared fields no answer carried where report.render finds them."""
    if options is None or options.report_dir is None:
        return
    from pepharness.suites import report

    entries = [
        {
            "api": rule.api,
            "operation": operation,
            "status": str(status),
            "fields": never_seen(document, schema, seen.get(status, set())),
        }
        for status, schema in sorted(schemas.items())
    ]
    folder = options.report_dir / report.PARTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{rule.api} {operation}".encode()).hexdigest()[:16]
    path = folder / f"{NEVER_SEEN_PREFIX}{digest}.json"
    path.write_text(json.dumps(entries, indent=1), encoding="utf-8")
