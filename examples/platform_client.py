"""A well-behaved client of the PEP's Platform gateway: events, the data fetch, a bulk sync.

Configured only by environment variables (defaults: the reference PEP of `pepharness serve`):

    PEPHARNESS_PEP_URL            base URL                        http://127.0.0.1:8103
    PEPHARNESS_PEP_CLIENT_ID      the API client                  pep-demo-client
    PEPHARNESS_PEP_CLIENT_SECRET  its secret                      pep-demo-secret
    PEPHARNESS_PEP_PLAYER_ID      the player the events are of    877018
    PEPHARNESS_PEP_EVENT_PREFIX   start of every transactionId    example
    PEPHARNESS_PEP_FETCH_LIMIT    items per data-fetch page       100 (1 to 1000)
    PEPHARNESS_PEP_TIMEOUT        seconds to wait for an answer   10 (0.1 to 300)

What it does, as the Platform gateway asks of a client:
- gets one OAuth 2.0 client-credentials token (`POST /api/oauth/v1/token`, client id and secret
  by HTTP Basic, `grant_type` in a form body) and reuses it until a minute before its
  `expires_in` ends; after a 401 it gets a new token, once;
- sends a login, a deposit and a game round (a bet and its win), each with a fixed
  `transactionId` (`PREFIX-deposit-1`, …): a second run of the same job is answered
  `"duplicate": true`, never counted twice;
- after a 5xx, a timeout or a broken connection it sends the SAME body again with growing
  delays, at least a 5xx's `Retry-After` (a bounded number of times); after a 429 it waits
  `Retry-After`; any other 4xx is a mistake in the request and is never retried;
- follows the data fetch's `next` from the first page to the last (`next` null), checking no
  item comes twice;
- sends one small bulk sync (two players) and reads its task back by `taskId`.

Prints one summary line, `platform_client: OK …`, and exits 0; exits 1 when the API did not let
it finish, 2 on a configuration mistake.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import requests

TIMEOUT = 10.0  # seconds, connect and read (PEPHARNESS_PEP_TIMEOUT)
MAX_ATTEMPTS = 6  # per request, for 5xx, timeouts and broken connections
FIRST_DELAY = 0.2  # seconds; doubled after each failed attempt
MAX_DELAY = 5.0
DEFAULT_RETRY_AFTER = 1.0  # a 429 without Retry-After
MAX_WAITS = 30  # 429s in a row for one request before giving up
RENEW_MARGIN = 60.0  # a new token this many seconds before the current one expires


class Failed(Exception):
    """The API did not let the job finish (exit 1)."""


class Platform:
    def __init__(
        self, url: str, client_id: str, client_secret: str, limit: int, timeout: float = TIMEOUT
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout  # a slower answer is a failed attempt: the same request again
        self.limit = limit  # items per data-fetch page
        self.credentials = (client_id, client_secret)
        self.http = requests.Session()
        self.token: str | None = None
        self.renew_at = 0.0  # time.monotonic() when the token must be replaced
        self.not_before = 0.0  # time.monotonic() before which nothing is sent (after a 429)
        self.tokens = 0
        self.retries = 0
        self.waits = 0

    # -- transport: Retry-After, backoff -------------------------------------------------

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; the same one again after a 429 (once Retry-After has passed), a 5xx, a
        timeout or a broken connection. Other answers are returned as they are."""
        delay = FIRST_DELAY
        failures = waits = 0
        while True:
            pause = self.not_before - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            told = 0.0  # a 5xx's Retry-After
            try:
                response = self.http.request(
                    method, self.url + path, timeout=self.timeout, **kwargs
                )
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

    # -- the OAuth token -------------------------------------------------------------------

    def new_token(self) -> str:
        self.token = None
        response = self.send(
            "POST",
            "/api/oauth/v1/token",
            auth=self.credentials,
            data={"grant_type": "client_credentials"},
        )
        if response.status_code != 200:
            raise Failed(f"token: HTTP {response.status_code} {response.text[:200]}")
        grant = response.json()
        self.tokens += 1
        self.token = grant["access_token"]
        lifetime = float(grant.get("expires_in", 3600))
        self.renew_at = time.monotonic() + max(lifetime - RENEW_MARGIN, lifetime / 2)
        return self.token

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        """An API call with the Bearer token; one new token after a 401."""
        for _ in range(2):
            if self.token is None or time.monotonic() >= self.renew_at:
                self.new_token()
            headers = {"Authorization": f"Bearer {self.token}"}
            response = self.send(method, path, headers=headers, **kwargs)
            if response.status_code == 401:
                self.token = None
                continue
            if response.status_code != expect:
                # a 4xx says the request is wrong: sending it again would not help
                raise Failed(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
            return response.json()
        raise Failed(f"{method} {path}: 401 right after a new token")

    # -- the job ---------------------------------------------------------------------------

    def send_events(self, player: str, prefix: str) -> int:
        """A login, a deposit and a game round; the number answered as duplicates."""
        # The events' own time: the start of today (UTC), so that a second run of the same job
        # the same day sends the same bodies under the same keys, as a retry must.
        now = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
        deposit = {
            "playerId": player,
            "amount": 60,
            "exchangeRate": 1,
            "currency": "EUR",
            "date": now,
            "transactionStatus": "APPROVED",
            "transactionType": "DEPOSIT",
            "transactionId": f"{prefix}-deposit-1",
            "realMoneyBalance": 60,
            "bonusMoneyBalance": 0,
        }
        game = {
            "playerId": player,
            "exchangeRate": 1,
            "date": now,
            "currency": "EUR",
            "transactionStatus": "APPROVED",
            "gameCategoryId": "slots",
            "gameCategoryName": "Slots",
            "gameProviderId": 109,
            "gameProviderName": "Bgaming",
            "gameId": "130300045",
            "gameName": "Slotomon Go",
            "gameSessionId": f"{prefix}-session-1",
            "bonusMoneyAmount": 0,
            "bonusMoneyBalance": 0,
        }
        bet = {
            **game,
            "transactionType": "BET",
            "transactionId": f"{prefix}-bet-1",
            "realMoneyAmount": 5,
            "realMoneyBalance": 55,
        }
        win = {
            **game,
            "transactionType": "WIN",
            "transactionId": f"{prefix}-win-1",
            "realMoneyAmount": 8,
            "realMoneyBalance": 63,
        }
        duplicates = 0
        answer = self.call(
            "POST", "/rx-api/players-data/v1/login", 202, json={"playerId": player, "date": now}
        )
        duplicates += answer["duplicate"]
        answer = self.call("POST", "/rx-api/transactions/v1/money-transaction", 202, json=deposit)
        duplicates += answer["duplicate"]
        answer = self.call(
            "POST",
            "/rx-api/transactions/v1/game-transaction-round",
            202,
            json={"gameTransactionRound": [bet, win]},
        )
        duplicates += answer["duplicates"]
        return duplicates

    def fetch_all(self) -> tuple[int, int]:
        """The data fetch from its first page to its last; (pages, items)."""
        seen: set[str] = set()
        params: dict[str, Any] = {"limit": self.limit}
        pages = 0
        while True:
            page = self.call("GET", "/api/data-fetch/v1/transactions", 200, params=params)
            pages += 1
            for item in page["items"]:
                if item["eventId"] in seen:
                    raise Failed(f"data fetch: event {item['eventId']} came twice")
                seen.add(item["eventId"])
            if not page.get("next"):
                return pages, len(seen)
            params = {"limit": self.limit, "next": page["next"]}

    def bulk_sync(self, prefix: str) -> str:
        """Two players; the task read back by its id."""
        batch = {
            "players": [
                {
                    "playerId": f"{prefix}-player-1",
                    "registrationDate": "2026-01-01T00:00:00Z",
                    "country": "DE",
                    "currency": "EUR",
                },
                {"playerId": f"{prefix}-player-2", "registrationDate": "2026-01-02T00:00:00Z"},
            ]
        }
        task = self.call("POST", "/api/players-data/v1/migrate/batch", 202, json=batch)
        again = self.call("GET", f"/api/players-data/v1/migrate/batch/{task['taskId']}", 200)
        if again["taskId"] != task["taskId"] or again["errorsTotal"]:
            raise Failed(f"bulk sync: task {again}")
        return f"{again['stored']}/{again['received']}"


def retry_after(response: requests.Response) -> float:
    """Retry-After in seconds (its HTTP-date form counts as the default)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def main() -> int:
    env = os.environ.get
    try:
        limit = int(env("PEPHARNESS_PEP_FETCH_LIMIT", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        print("platform_client: PEPHARNESS_PEP_FETCH_LIMIT must be 1 to 1000", file=sys.stderr)
        return 2
    try:
        timeout = float(env("PEPHARNESS_PEP_TIMEOUT", str(TIMEOUT)))
    except ValueError:
        timeout = 0.0
    if not 0.1 <= timeout <= 300:
        print("platform_client: PEPHARNESS_PEP_TIMEOUT must be 0.1 to 300", file=sys.stderr)
        return 2
    client = Platform(
        env("PEPHARNESS_PEP_URL", "http://127.0.0.1:8103"),
        env("PEPHARNESS_PEP_CLIENT_ID", "pep-demo-client"),
        env("PEPHARNESS_PEP_CLIENT_SECRET", "pep-demo-secret"),
        limit,
        timeout,
    )
    prefix = env("PEPHARNESS_PEP_EVENT_PREFIX", "example")
    try:
        duplicates = client.send_events(env("PEPHARNESS_PEP_PLAYER_ID", "877018"), prefix)
        pages, items = client.fetch_all()
        synced = client.bulk_sync(prefix)
    except (Failed, ValueError, KeyError, TypeError) as error:
        print(f"platform_client: FAILED {error}", file=sys.stderr)
        return 1
    print(
        f"platform_client: OK events=4 duplicates={duplicates} fetch_pages={pages} "
        f"fetch_items={items} bulk_stored={synced} tokens={client.tokens} "
        f"retries={client.retries} rate_limited={client.waits}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
