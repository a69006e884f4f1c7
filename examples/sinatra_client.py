"""A well-behaved client of Groove's Sinatra API: the catalog and the paginated game history.

Configured only by environment variables (defaults: the pep-harness Sinatra mock's seed):

    PEPHARNESS_SINATRA_URL        base URL                       http://127.0.0.1:8101
    PEPHARNESS_SINATRA_EMAIL      the Sinatra user               operator@example.com
    PEPHARNESS_SINATRA_PASSWORD   its password                   operator-secret
    PEPHARNESS_SINATRA_PAGE_SIZE  transactions per history page  100 (1 to 10000)
    PEPHARNESS_SINATRA_FROM       first day, YYYY-MM-DD          (unset: last 30 days)
    PEPHARNESS_SINATRA_TO         last day, YYYY-MM-DD           (set both or neither)

What it does, as the seed asks of a client:
- logs in once (`POST /1.0/login/`), takes the token from the `jwt-auth` *response header* and
  sends it on every catalog call; logs in again before the token's 20 minutes end (read from the
  token's own `iat`/`exp`), and after a 401 (the dead token is never sent again);
- reads the providers, the games and one game's marketing assets;
- walks the paginated history with HTTP Basic (that endpoint takes no `jwt-auth`), page 1, 2, …
  in order up to the last page, `ceil(total_count / page_size)`;
- after a 429 sends nothing more before `Retry-After` has passed; after a 5xx or a broken
  connection retries the same request with growing delays (at least a 5xx's `Retry-After`),
  a bounded number of times.

Prints one summary line, `sinatra_client: OK …`, and exits 0; exits 1 when the API did not let
it finish, 2 on a configuration mistake.
"""

from __future__ import annotations

import base64
import json
import math
import os
import sys
import time
from typing import Any

import requests

TIMEOUT = 10  # seconds, connect and read
MAX_ATTEMPTS = 6  # per request, for 5xx, timeouts and broken connections
FIRST_DELAY = 0.2  # seconds; doubled after each failed attempt
MAX_DELAY = 5.0
DEFAULT_RETRY_AFTER = 1.0  # a 429 without Retry-After
MAX_WAITS = 30  # 429s in a row for one request before giving up
RENEW_MARGIN = 60.0  # log in again this many seconds before the token expires
TOKEN_LIFETIME = 20 * 60  # the seed's, when the token does not say


class Failed(Exception):
    """The API did not let the job finish (exit 1)."""


class Sinatra:
    def __init__(self, url: str, email: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.email = email
        self.password = password
        self.http = requests.Session()
        self.token: str | None = None
        self.renew_at = 0.0  # time.monotonic() when the token must be replaced
        self.not_before = 0.0  # time.monotonic() before which nothing is sent (after a 429)
        self.logins = 0
        self.retries = 0
        self.waits = 0

    # -- transport: Retry-After, backoff -------------------------------------------------

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, retried on 429 (after Retry-After), 5xx and transport errors."""
        delay = FIRST_DELAY
        failures = waits = 0
        while True:
            pause = self.not_before - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            told = 0.0  # a 5xx's Retry-After
            try:
                response = self.http.request(method, self.url + path, timeout=TIMEOUT, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as error:
                problem = type(error).__name__
            else:
                if response.status_code == 429:
                    # not a failure: wait as told, then the same request again
                    waits += 1
                    self.waits += 1
                    if waits > MAX_WAITS:
                        raise Failed(f"{method} {path}: still rate limited after {waits} waits")
                    self.not_before = time.monotonic() + retry_after(response)
                    continue
                if response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code}"
                if "Retry-After" in response.headers:  # a 503's "come back in N s"
                    told = retry_after(response)
            failures += 1
            if failures == MAX_ATTEMPTS:
                raise Failed(f"{method} {path}: {problem} after {failures} attempts")
            self.retries += 1
            time.sleep(max(delay, told))
            delay = min(delay * 2, MAX_DELAY)

    # -- the jwt-auth token ----------------------------------------------------------------

    def login(self) -> str:
        self.token = None
        response = self.send(
            "POST", "/1.0/login/", json={"email": self.email, "password": self.password}
        )
        token = response.headers.get("jwt-auth")
        if response.status_code != 200 or not token:
            raise Failed(f"login: HTTP {response.status_code} {response.text[:200]}")
        self.logins += 1
        self.token = token
        self.renew_at = time.monotonic() + lifetime(token) - RENEW_MARGIN
        return token

    def get(self, path: str, **params: Any) -> Any:
        """A catalog call with `jwt-auth`; one new login after a 401."""
        for _ in range(2):
            if self.token is None or time.monotonic() >= self.renew_at:
                self.login()
            response = self.send("GET", path, params=params, headers={"jwt-auth": self.token})
            if response.status_code == 401:
                self.token = None  # dead: never sent again
                continue
            if response.status_code != 200:
                raise Failed(f"GET {path}: HTTP {response.status_code} {response.text[:200]}")
            return response.json()
        raise Failed(f"GET {path}: 401 right after a new login")

    # -- the paginated history, with Basic -------------------------------------------------

    def history(self, page_size: int, window: dict[str, str]) -> tuple[int, int]:
        """Every page in order, to the last; (pages, transactions)."""
        auth = (self.email, self.password)
        page, last, transactions = 1, 1, 0
        while page <= last:
            params = {**window, "page_size": page_size, "page_number": page}
            response = self.send(
                "GET", "/transactions/1.0/games/history/api", params=params, auth=auth
            )
            if response.status_code != 200:
                status = response.status_code
                raise Failed(f"history page {page}: HTTP {status} {response.text[:200]}")
            body = response.json()
            last = max(1, math.ceil(body["total_count"] / page_size))
            transactions += sum(len(round_["transactions"]) for round_ in body["responses"])
            page += 1
        return last, transactions


def retry_after(response: requests.Response) -> float:
    """Retry-After in seconds (its HTTP-date form counts as the default)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def lifetime(token: str) -> float:
    """The token's lifetime in seconds, from its own `exp - iat` (not verified: the client only
    schedules its renewal with it); the seed's 20 minutes when it cannot be read."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"]) - float(claims["iat"])
    except (IndexError, ValueError, KeyError, TypeError):
        return TOKEN_LIFETIME


def settings() -> tuple[Sinatra, int, dict[str, str]]:
    env = os.environ.get
    client = Sinatra(
        env("PEPHARNESS_SINATRA_URL", "http://127.0.0.1:8101"),
        env("PEPHARNESS_SINATRA_EMAIL", "operator@example.com"),
        env("PEPHARNESS_SINATRA_PASSWORD", "operator-secret"),
    )
    try:
        page_size = int(env("PEPHARNESS_SINATRA_PAGE_SIZE", "100"))
    except ValueError:
        page_size = 0
    if not 1 <= page_size <= 10000:
        raise SystemExit("sinatra_client: PEPHARNESS_SINATRA_PAGE_SIZE must be 1 to 10000")
    start, end = env("PEPHARNESS_SINATRA_FROM"), env("PEPHARNESS_SINATRA_TO")
    if (start is None) != (end is None):
        raise SystemExit("sinatra_client: set PEPHARNESS_SINATRA_FROM and _TO together")
    window = {"from": start, "to": end} if start and end else {"time_period": "last 30 days"}
    return client, page_size, window


def main() -> int:
    try:
        client, page_size, window = settings()
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    try:
        providers = client.get("/vendors/1.0/view/available")
        games = client.get("/games/1.0/view/detailed")
        assets = client.get(f"/games/1.0/assets/{games[0]['gameId']}") if games else []
        pages, transactions = client.history(page_size, window)
    except (Failed, ValueError, KeyError, TypeError, IndexError) as error:
        print(f"sinatra_client: FAILED {error}", file=sys.stderr)
        return 1
    print(
        f"sinatra_client: OK providers={len(providers)} games={len(games)} "
        f"assets={len(assets)} history_pages={pages} history_transactions={transactions} "
        f"logins={client.logins} retries={client.retries} rate_limited={client.waits}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
