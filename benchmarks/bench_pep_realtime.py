"""Benchmark of the reference PEP's Socket.IO transports: HTTP long-polling against WebSocket
(D86, D87), with python-socketio's client.

    python benchmarks/bench_pep_realtime.py                       # 20 connects, 300 events
    python benchmarks/bench_pep_realtime.py --connects 5 --events 50

Serves the operator mock and the reference PEP in this process on loopback ports (waitress,
as `pepharness serve` does); for each transport a new player is registered through the
Platform gateway and logged in, then:
- connect time: `--connects` times, a new client connects with the Frontend JWT and is ready
  (for "default", the client's default options: polling, then the upgrade) — p50, p90, max;
- event latency: `--events` times, the server emits `ranks:on:xpUp` to the player (the engine's
  `publish`) and the time until the client's handler runs is taken — p50, p90, p99, max;
- a Platform deposit's end-to-end time: the player's first deposit sent until the client has
  its `ranks:on:xpUp` (the POST, its commit and the engine's work included).
Nothing is asserted: these are figures. Only loopback is contacted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import requests
import socketio

from pepharness.mocks import operator as operator_mock
from pepharness.mocks import pep as pep_mock
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.pep.realtime import realtime_of

CLIENT, SECRET = "pep-demo-client", "pep-demo-secret"
TRANSPORTS: dict[str, list[str] | None] = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "default": None,  # the client's default: polling, then the upgrade to WebSocket
}
WAIT = 10.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


class Client:
    """A python-socketio client whose `ranks:on:xpUp` handler wakes the benchmark."""

    def __init__(self) -> None:
        session = requests.Session()
        session.trust_env = False
        self.sio = socketio.Client(reconnection=False, http_session=session,
                                   handle_sigint=False)
        self.arrived = threading.Event()
        self.at = 0.0
        self.sio.on("ranks:on:xpUp", self._xp_up)

    def _xp_up(self, data: Any) -> None:
        self.at = time.perf_counter()
        self.arrived.set()

    def connect(self, url: str, token: str, transports: list[str] | None) -> float:
        started = time.perf_counter()
        self.sio.connect(url, auth={"token": token}, transports=transports,
                         wait_timeout=WAIT)
        return time.perf_counter() - started

    def wait(self) -> float:
        if not self.arrived.wait(WAIT):
            raise RuntimeError(f"no ranks:on:xpUp within {WAIT} s")
        self.arrived.clear()
        return self.at


def run(url: str, app: Any, new_player: Any, connects: int, events: int,
        deposit: Any) -> None:
    realtime = realtime_of(app)
    assert realtime is not None
    print(f"{'transport (ends on)':<24}{'connect p50':>14}{'p90':>11}{'max':>11}   "
          f"{'event p50':>11}{'p90':>11}{'p99':>11}{'max':>11}   {'deposit → push':>14}")
    for name, transports in TRANSPORTS.items():
        player_id, token = new_player()
        connect_times = []
        for _ in range(connects):
            client = Client()
            connect_times.append(client.connect(url, token, transports))
            client.sio.disconnect()
        client = Client()
        client.connect(url, token, transports)
        shown = client.sio.transport()
        latencies = []
        for number in range(events):
            started = time.perf_counter()
            realtime.publish(player_id, "ranks:on:xpUp", {"xpBalance": number})
            latencies.append(client.wait() - started)
        started = time.perf_counter()
        deposit(player_id)
        end_to_end = client.wait() - started
        client.sio.disconnect()
        print(f"{name + ' (' + shown + ')':<24}{ms(statistics.median(connect_times)):>14}"
              f"{ms(percentile(connect_times, 0.9)):>11}{ms(max(connect_times)):>11}   "
              f"{ms(statistics.median(latencies)):>11}{ms(percentile(latencies, 0.9)):>11}"
              f"{ms(percentile(latencies, 0.99)):>11}{ms(max(latencies)):>11}   "
              f"{ms(end_to_end):>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=20)
    parser.add_argument("--events", type=int, default=300)
    options = parser.parse_args()

    operator_app = operator_mock.create_app({"SEED": 42})
    with tempfile.TemporaryDirectory() as folder, ThreadedServer(operator_app) as operator:
        pep_app = pep_mock.create_app({
            "SEED": 42, "ANCHOR": operator_mock.backend_of(operator_app).data.anchor,
            "OPERATOR_URL": operator.url, "DATABASE": str(Path(folder) / "pep.sqlite3"),
        })
        with ThreadedServer(pep_app, threads=16) as pep, requests.Session() as http:
            http.trust_env = False
            grant = http.post(f"{pep.url}/api/oauth/v1/token", auth=(CLIENT, SECRET),
                              data={"grant_type": "client_credentials"}, timeout=WAIT)
            grant.raise_for_status()
            platform = {"Authorization": f"Bearer {grant.json()['access_token']}"}
            made = iter(range(1_000_000))

            def new_player() -> tuple[str, str]:
                number = next(made)
                player_id, identity = f"bench-rt-{number}", f"bench-rt-identity-{number}"
                http.post(f"{operator.url}/__admin/tokens", timeout=WAIT, json={
                    "identityToken": identity, "playerId": player_id, "status": 200,
                }).raise_for_status()
                http.post(f"{pep.url}/rx-api/players-data/v1/registration", headers=platform,
                          timeout=WAIT, json={"playerId": player_id, "registrationDevice": "web",
                                              "date": "2026-11-20T09:00:00Z"}).raise_for_status()
                login = http.post(f"{pep.url}/api/auth/v1/player", timeout=WAIT, json={
                    "identityToken": identity, "clientId": CLIENT})
                login.raise_for_status()
                return player_id, str(login.json()["accessToken"])

            sent = iter(range(1_000_000))

            def deposit(player_id: str) -> None:
                answer = http.post(
                    f"{pep.url}/rx-api/transactions/v1/money-transaction", headers=platform,
                    timeout=WAIT, json={
                        "playerId": player_id, "amount": 50, "exchangeRate": 1.0,
                        "date": "2026-11-20T10:00:00Z", "currency": "EUR",
                        "transactionStatus": "APPROVED", "transactionType": "DEPOSIT",
                        "transactionId": f"bench-rt-{next(sent)}", "realMoneyBalance": 50,
                        "bonusMoneyBalance": 0})
                answer.raise_for_status()

            print(f"reference PEP on {pep.url}: {options.connects} connects and "
                  f"{options.events} events per transport (python-socketio "
                  f"{metadata.version('python-socketio')})")
            run(pep.url, pep_app, new_player, options.connects, options.events, deposit)


if __name__ == "__main__":
    main()
