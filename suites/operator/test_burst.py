"""A burst of concurrent validations, answered as each is answered alone."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from pepharness.suites.http import PacedSession, summarize
from pepharness.suites.operator import rules
from pepharness.suites.operator.client import (
    IDENTITY,
    OPERATION,
    Operator,
    body_of,
    never_limited,
    unknown_token,
)
from pepharness.suites.rules import covers, fail, not_verified

MAX_THREADS = 32
TIMEOUT_SECONDS = 30


def _expected(operator: Operator, token: str) -> tuple[int, Any]:
    """(status, playerId) the token is answered alone."""
    response = operator.validate(token)
    body = body_of(response)
    return response.status_code, body.get("playerId") if isinstance(body, dict) else None


@covers(rules.BURST_HELD, operation=OPERATION)
def test_burst_is_answered(operator: Operator) -> None:
    if not operator.options.valid_tokens:
        not_verified("no --valid-token given")
    tokens = [*operator.options.valid_tokens, unknown_token()]
    expected = {token: _expected(operator, token) for token in tokens}
    calls = [tokens[i % len(tokens)] for i in range(operator.options.burst)]
    local = threading.local()
    url = operator.target.url(IDENTITY)

    def call(token: str) -> tuple[str, int | None, Any, str, float]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = PacedSession(window=None, is_limited=never_limited)
        started = time.monotonic()
        try:
            response = session.post(
                url, json={"identityToken": token}, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as error:
            return token, None, None, type(error).__name__, time.monotonic() - started
        body = body_of(response)
        player = body.get("playerId") if isinstance(body, dict) else None
        return token, response.status_code, player, summarize(response, 80), \
            time.monotonic() - started

    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(calls))) as pool:
        results = list(pool.map(call, calls))
    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    for token, status, player, text, _ in results:
        outcomes[str(status) if status is not None else text] += 1
        if (status, player) != expected[token]:
            wrong.append(text)
    latencies = sorted(r[4] for r in results)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    if wrong:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
        fail(
            rules.BURST_HELD,
            f"{len(wrong)} of {len(calls)} concurrent calls were not answered as alone",
            received=f"outcomes {counts}; p99 {p99:.2f} s; first: {wrong[0]}",
            documented="each call answered as it is alone (200 with its playerId, 401 for an "
            "unknown token)",
            curl=f"for i in $(seq {len(calls)}); do curl -s -o /dev/null -w '%{{http_code}}\\n' "
            f"-X POST -H 'Content-Type: application/json' --data-raw "
            f"\"{{\\\"identityToken\\\":\\\"$PEPHARNESS_VALID_TOKEN_1\\\"}}\" {url} & done; wait",
        )
