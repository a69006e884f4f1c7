"""A well-behaved front end (or back end for front end) of the PEP's Frontend gateway.

Configured only by environment variables (defaults: `pepharness serve all`):

    PEPHARNESS_PEP_URL            the PEP                         http://127.0.0.1:8103
    PEPHARNESS_PEP_CLIENT_ID      the API client of the login     pep-demo-client
    PEPHARNESS_OPERATOR_URL       the operator identity mock      http://127.0.0.1:8102
    PEPHARNESS_IDENTITY_TOKEN     the player's identity token     (unset: the first seeded
                                                                   token of the operator mock)
    PEPHARNESS_PEP_CLIENT_SECRET  a Platform secret               (unset: no deposit is sent)
    PEPHARNESS_FRONTEND_DEPOSIT   1: send that deposit            (unset: none)
    PEPHARNESS_EVENT_WAIT         seconds to wait for a push      5

A URL may have a path (a sandbox's, `…/__sandbox/<id>`): Socket.IO is then at that path's
`/socket.io`.

What it does:
- takes an identity token: the operator issues one when its player logs in to the casino; here
  `PEPHARNESS_IDENTITY_TOKEN`, or the operator mock's `GET /__admin/tokens`, as the README's
  walk-through does;
- logs the player in at the PEP (`POST /api/auth/v1/player {identityToken, clientId}`) and sends
  the PEP's JWT, and only it, in `x-authorization` (never the identity token, never a secret);
- reads the profile (`/api/players/v1/me`), the missions, the XP leaderboard and the
  notifications; after a 401 it logs the player in again rather than resending the dead JWT;
- connects to Socket.IO with `auth={"token": jwt}`; when PEPHARNESS_FRONTEND_DEPOSIT is 1 and a
  Platform secret is given it sends one deposit of that player through the Platform gateway
  and waits up to PEPHARNESS_EVENT_WAIT seconds for the pushes it causes.

Prints one summary line, `frontend_client: OK …`, and exits 0; exits 1 when the API did not let
it finish, 2 on a configuration mistake.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import socketio

TIMEOUT = 10  # seconds, connect and read
EVENTS = ("ranks:on:xpUp", "ranks:on:levelUp", "missions:on:progress", "notifications:on:new")


class Failed(Exception):
    """The API did not let the job finish (exit 1)."""


class Frontend:
    def __init__(self, pep_url: str, client_id: str, identity_token: str) -> None:
        self.url = pep_url.rstrip("/")
        self.client_id = client_id
        self.identity_token = identity_token
        self.http = requests.Session()
        self.jwt: str | None = None
        self.logins = 0

    def login(self) -> str:
        """The player's session at the PEP: a JWT for `x-authorization`."""
        self.jwt = None
        response = self.http.post(
            self.url + "/api/auth/v1/player",
            json={"identityToken": self.identity_token, "clientId": self.client_id},
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            raise Failed(f"player login: HTTP {response.status_code} {response.text[:200]}")
        self.logins += 1
        self.jwt = response.json()["accessToken"]
        return self.jwt

    def get(self, path: str, **params: Any) -> Any:
        """A player call with `x-authorization`; one new login after a 401."""
        for _ in range(2):
            if self.jwt is None:
                self.login()
            response = self.http.get(
                self.url + path,
                params=params,
                headers={"x-authorization": self.jwt},
                timeout=TIMEOUT,
            )
            if response.status_code == 401:
                self.jwt = None  # dead: log in again, never resend it
                continue
            if response.status_code != 200:
                raise Failed(f"GET {path}: HTTP {response.status_code} {response.text[:200]}")
            return response.json()
        raise Failed(f"GET {path}: 401 right after a new login")


def seeded_identity_token(operator_url: str) -> str:
    """The first identity token the operator mock's control API lists."""
    response = requests.get(operator_url.rstrip("/") + "/__admin/tokens", timeout=TIMEOUT)
    response.raise_for_status()
    return str(response.json()["tokens"][0]["identityToken"])


def deposit(pep_url: str, client_id: str, secret: str, player_id: str) -> None:
    """One deposit of the player through the Platform gateway (what the casino's back end
    would send), so that the PEP pushes its effects to the player."""
    url = pep_url.rstrip("/")
    grant = requests.post(
        url + "/api/oauth/v1/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
        timeout=TIMEOUT,
    )
    if grant.status_code != 200:
        raise Failed(f"Platform token: HTTP {grant.status_code} {grant.text[:200]}")
    body = {
        "playerId": player_id,
        "amount": 60,
        "exchangeRate": 1,
        "currency": "EUR",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "transactionStatus": "APPROVED",
        "transactionType": "DEPOSIT",
        "transactionId": f"frontend-example-{player_id}-{time.time_ns()}",
        "realMoneyBalance": 60,
        "bonusMoneyBalance": 0,
    }
    answer = requests.post(
        url + "/rx-api/transactions/v1/money-transaction",
        json=body,
        headers={"Authorization": f"Bearer {grant.json()['access_token']}"},
        timeout=TIMEOUT,
    )
    if answer.status_code != 202:
        raise Failed(f"deposit: HTTP {answer.status_code} {answer.text[:200]}")


def listen(client: Frontend, then: Any, wait: float) -> list[str]:
    """Connects to Socket.IO with the player's JWT, calls `then()`, and returns the names of
    the events pushed within `wait` seconds of it (waiting no longer once one came)."""
    pushed: list[str] = []
    arrived = threading.Event()
    browser = socketio.Client(reconnection=False)
    for name in EVENTS:
        browser.on(name, lambda _data, name=name: (pushed.append(name), arrived.set()))
    # python-socketio drops a URL's path: a base URL with one (a sandbox's, `…/__sandbox/<id>`)
    # names it in `socketio_path` instead.
    parts = urlsplit(client.url)
    browser.connect(
        urlunsplit((parts.scheme, parts.netloc, "", "", "")),
        auth={"token": client.jwt},
        socketio_path=parts.path.rstrip("/") + "/socket.io",
        wait_timeout=TIMEOUT,
    )
    try:
        then()
        if arrived.wait(wait):
            time.sleep(0.2)  # the rest of the same burst (xpUp, levelUp, progress…)
    finally:
        browser.disconnect()
    return pushed


def main() -> int:
    env = os.environ.get
    pep_url = env("PEPHARNESS_PEP_URL", "http://127.0.0.1:8103")
    client_id = env("PEPHARNESS_PEP_CLIENT_ID", "pep-demo-client")
    # A front end sends no Platform events: the deposit is this example's own way to cause a
    # push, asked for explicitly, so that beside a Platform client it adds no OAuth token.
    deposit_asked = env("PEPHARNESS_FRONTEND_DEPOSIT") == "1"
    secret = env("PEPHARNESS_PEP_CLIENT_SECRET") if deposit_asked else None
    try:
        wait = float(env("PEPHARNESS_EVENT_WAIT", "5"))
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= 600:
        print("frontend_client: PEPHARNESS_EVENT_WAIT must be 0 to 600 seconds", file=sys.stderr)
        return 2
    try:
        identity = env("PEPHARNESS_IDENTITY_TOKEN") or seeded_identity_token(
            env("PEPHARNESS_OPERATOR_URL", "http://127.0.0.1:8102")
        )
        client = Frontend(pep_url, client_id, identity)
        me = client.get("/api/players/v1/me")
        missions = client.get("/api/missions/v1/missions")
        leaderboard = client.get("/api/leaderboards/v1/xp", limit=10)
        notifications = client.get("/api/notifications/v1/notifications")
        if client.jwt is None:
            client.login()
        if secret:
            player = me["playerId"]
            pushed = listen(client, lambda: deposit(pep_url, client_id, secret, player), wait)
        else:
            pushed = listen(client, lambda: None, 0)
    except (Failed, requests.RequestException, socketio.exceptions.SocketIOError) as error:
        print(f"frontend_client: FAILED {error}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError, IndexError) as error:
        print(f"frontend_client: FAILED unexpected answer: {error!r}", file=sys.stderr)
        return 1
    print(
        f"frontend_client: OK player={me['playerId']} missions={count(missions)} "
        f"leaderboard={count(leaderboard)} notifications={count(notifications)} "
        f"logins={client.logins} deposit={'sent' if secret else 'skipped'} "
        f"pushed={len(pushed)} ({','.join(sorted(set(pushed))) or 'none'})"
    )
    return 0


def count(body: Any) -> int:
    """The items of a list answer, whatever key holds them."""
    if isinstance(body, list):
        return len(body)
    if isinstance(body.get("items"), list):
        return len(body["items"])
    lists = [value for value in body.values() if isinstance(value, list)]
    return len(lists[0]) if lists else 0


if __name__ == "__main__":
    sys.exit(main())
