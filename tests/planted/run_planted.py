"""One planted client as the command of `pepharness run`: `python run_planted.py API:NAME`,
API `sinatra` (clients_sinatra.PLANTED) or `pep` (clients_pep.CLIENTS).

The mocks' URLs come from the environment `run` gives its command (PEPHARNESS_SINATRA_URL,
PEPHARNESS_PEP_URL, PEPHARNESS_IDENTITY_TOKEN); the misbehaviour a planted client needs (a
fault, a tight data-fetch limit) is programmed through the served mock's `/__admin` first, as
tests/test_clients_*.py do in-process. tests/test_run_planted.py runs every one of them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: `planted` as in tests

from planted import clients_pep, clients_sinatra

TIMEOUT = 10


def admin_of(url: str) -> Any:
    def admin(method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{url}/__admin{path}", json=body, timeout=TIMEOUT)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    return admin


def main(planted_name: str) -> None:
    api, _, name = planted_name.partition(":")
    if api == "sinatra":
        url = os.environ["PEPHARNESS_SINATRA_URL"]
        client, _rule = clients_sinatra.PLANTED[name]
        admin = admin_of(url)
        # The history's limit out of the way (as tests/test_clients_sinatra.py serves it): a
        # client planted to break one rule walks past the seeded 5 a second without waiting.
        admin("POST", "/rate-limit", {"limit": 1000, "period_seconds": 1})
        client(url, admin)
        return
    _api, planted = clients_pep.CLIENTS[name]
    url = os.environ["PEPHARNESS_PEP_URL"]
    admin = admin_of(url)
    if planted.fetch_limit is not None:
        limit, period = planted.fetch_limit
        admin("POST", "/rate-limit", {"limit": limit, "period_seconds": period})
    for fault in planted.faults:
        admin("POST", "/faults", fault)
    planted.run(url, f"planted-{name}", os.environ["PEPHARNESS_IDENTITY_TOKEN"])


if __name__ == "__main__":
    main(sys.argv[1])
