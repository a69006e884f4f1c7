"""`pepharness fuzz` against the operator mock and the reference PEP's two gateways: each
API's flows and generated requests authenticate and run clean; an injected fault is found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from pepharness.mocks.core import ThreadedServer
from pepharness.suites.fuzz.apis import APIS
from pepharness.suites.fuzz.findings import SERVER_ERROR
from pepharness.suites.fuzz.model import Result, Settings
from pepharness.suites.fuzz.runner import Runner
from pepharness.suites.options import SuiteOptions


def fuzz(api: str, suite: SuiteOptions, **overrides: Any) -> Result:
    assert suite.base_url is not None
    settings = Settings(**{
        "api": api, "base_url": suite.base_url, "requests": 200, "concurrency": 4,
        "variety": 8, "seed": 11, "suite": suite,
        # Latency is not under test here, and a loaded CI machine is slow now and then.
        "latency_budget_ms": 10_000, **overrides,
    })
    target = APIS[api](suite)
    try:
        return Runner(settings, target).run()
    finally:
        target.close()


def flows_of(result: Result) -> Counter[str]:
    return Counter(entry["_pepharness"]["flow"] for entry in result.entries)


@pytest.fixture
def reset(pep_server: ThreadedServer, operator_server: ThreadedServer) -> Iterator[None]:
    yield
    for server in (pep_server, operator_server):
        requests.delete(f"{server.url}/__admin/faults", timeout=10)


def test_operator_runs_clean(operator_server: ThreadedServer, reset: None) -> None:
    result = fuzz("operator", SuiteOptions(base_url=operator_server.url))
    assert [f.key for f in result.findings.sorted()] == []
    assert set(flows_of(result)) == {"validate", "generated", "boundary"}
    assert result.statuses["200"] > 0 and result.statuses["400"] > 0


def test_pep_platform_runs_clean_and_finds_an_injected_fault(
    pep_server: ThreadedServer, reset: None
) -> None:
    suite = SuiteOptions(base_url=pep_server.url)
    result = fuzz("pep-platform", suite)
    assert [f.key for f in result.findings.sorted()] == [], result.notes
    assert {"bets", "generated", "boundary"} <= set(flows_of(result))
    assert result.statuses["202"] > 0
    rule = {"path": "/rx-api/transactions/v1/money-transaction", "method": "POST",
            "status": 500, "body": {"error": "injected"}, "probability": 0.3}
    requests.post(f"{pep_server.url}/__admin/faults", json=[rule],
                  timeout=10).raise_for_status()
    found = fuzz("pep-platform", suite, seed=12, profile={"bets": 1})
    keys = [(f.operation, f.kind, f.status) for f in found.findings.sorted()]
    assert keys == [("POST /rx-api/transactions/v1/money-transaction", SERVER_ERROR, 500)]
    # The flow's Bearer token shows as a variable in the curl line, as Basic credentials do.
    finding = found.findings.sorted()[0]
    sent = {h["name"].lower(): h["value"] for h in finding.entry["request"]["headers"]}
    token = sent["authorization"].removeprefix("Bearer ")
    assert token and token not in finding.curl
    assert '"Authorization: Bearer $PEP_PLATFORM_TOKEN"' in finding.curl


def test_pep_frontend_runs_clean(
    pep_server: ThreadedServer, operator_server: ThreadedServer, reset: None
) -> None:
    # The PEP calls the operator mock: the fuzzer programs its tokens there.
    port = urlsplit(operator_server.url).port
    assert port is not None
    suite = SuiteOptions(base_url=pep_server.url, operator_port=port)
    result = fuzz("pep-frontend", suite)
    assert [f.key for f in result.findings.sorted()] == [], result.notes
    assert set(flows_of(result)) == {"play", "generated", "boundary"}
    assert result.statuses["200"] > 0
