"""Well-formed requests of every operation: the documented 200, the same under any {version}."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from pepharness.suites.http import summarize
from pepharness.suites.rules import covers, fail, not_verified
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import (
    CONTRACT,
    LOGIN,
    PAGINATED,
    ROUND,
    Sinatra,
    all_operations,
    body_of,
    label,
)

OTHER_VERSIONS = ("2.5", "v7")


def _operations() -> list[Any]:
    return [
        pytest.param(op, marks=pytest.mark.xdist_group("paginated"))
        if op == label("GET", PAGINATED)
        else op
        for op in all_operations()
    ]


def _needs_data(sinatra: Sinatra, operation: str) -> None:
    if label("GET", ROUND) == operation and sinatra.sample_round() is None:
        not_verified("no round in the last 30 days to ask the details of")
    if "/assets/" in operation and not sinatra.catalog:
        not_verified("the catalog is empty: no game to ask the assets of")


@pytest.mark.parametrize("operation", _operations())
@covers(rules.POSITIVE_RESPONSE_CONFORMS)
def test_well_formed_request_gets_documented_200(sinatra: Sinatra, operation: str) -> None:
    _needs_data(sinatra, operation)
    response = sinatra.request_operation(operation)
    sinatra.expect(rules.POSITIVE_RESPONSE_CONFORMS, response, 200,
                   what="a well-formed request by a user with every permission")
    media = response.headers.get("Content-Type", "")
    method = operation.split(" ", 1)[0]
    path = urlsplit(response.url).path
    from pepharness import contracts  # the validators: imported by the checks that use them

    problems = contracts.response_problems(
        CONTRACT, method, path, response.status_code, response.headers, response.content
    )
    if media.split(";")[0].strip().lower() != "application/json":
        problems.insert(0, f"Content-Type is {media or '(absent)'}")
    if problems:
        fail(
            rules.POSITIVE_RESPONSE_CONFORMS,
            "the 200 does not match the contract",
            received="; ".join(problems[:4]) + (f" (+{len(problems) - 4} more)"
                                                 if len(problems) > 4 else ""),
            documented="Content-Type application/json and a body matching the operation's "
            "200 schema",
            curl=sinatra.curl(response),
        )


def _comparable(operation: str, response: requests.Response) -> Any:
    body = body_of(response)
    if operation == label("POST", LOGIN) and isinstance(body, dict):
        # A login may stamp last_login: compare who logged in, not when.
        user = body.get("user") or {}
        return {"keys": sorted(body), "email": user.get("email"), "permissions": body.get(
            "permissions")}
    return body


@pytest.mark.parametrize("operation", _operations())
@covers(rules.VERSION_LENIENT)
def test_any_version_behaves_as_1_0(sinatra: Sinatra, operation: str) -> None:
    _needs_data(sinatra, operation)
    reference = sinatra.request_operation(operation)
    for version in OTHER_VERSIONS:
        other = sinatra.request_operation(operation, version=version)
        same_status = other.status_code == reference.status_code
        if not same_status or _comparable(operation, other) != _comparable(operation, reference):
            fail(
                rules.VERSION_LENIENT,
                f"version {version!r} does not answer as 1.0",
                received=f"{version}: {summarize(other)}",
                documented=f"as 1.0: {summarize(reference)}",
                curl=sinatra.curl(other),
            )
