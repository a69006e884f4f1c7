"""The PEP Platform gateway seen by the checks: tokens three ways, the protected endpoints with a
Bearer token, sample events and players, the data fetch paged and paced, the clock control."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from pepharness.suites import documents
from pepharness.suites.http import Answer, Target, summarize
from pepharness.suites.options import SuiteOptions
from pepharness.suites.rules import Rule, fail
from pepharness.suites.throttle import SharedWindow, budget_file, clock_mover, token_age

CONTRACT = "pep-platform"
TOKEN = "/api/oauth/v1/token"
TOKEN_OPERATION = f"POST {TOKEN}"
MIGRATE = "/api/players-data/v1/migrate/batch"
TASK = MIGRATE + "/{taskId}"
FETCH = {
    "players": "/api/data-fetch/v1/players",
    "transactions": "/api/data-fetch/v1/transactions",
}
EVENTS = {
    "money": ("POST", "/rx-api/transactions/v1/money-transaction"),
    "round": ("POST", "/rx-api/transactions/v1/game-transaction-round"),
    "registration": ("POST", "/rx-api/players-data/v1/registration"),
    "login": ("POST", "/rx-api/players-data/v1/login"),
    "tags": ("PATCH", "/rx-api/players-data/v1/tags/upsert"),
}
ALL_SCOPES = "events:write players:sync data:read"
DEFAULT_CLIENT_SECRET = "pep-demo-secret"
"""The reference PEP's seeded client's secret, when PEPHARNESS_CLIENT_SECRET is not set."""
DOCUMENTED_RATE_LIMIT = (100, 60.0)
"""VENDOR-FACTS: 100 data-fetch requests per minute, assumed when --expect-rate-limit is not
given."""
TOKEN_REUSE_SECONDS = 300
"""A token is reused this long (far below its hour), then a new one is asked for."""

Json = Any


def event_operation(kind: str) -> str:
    method, path = EVENTS[kind]
    return f"{method} {path}"


def fetch_operation(listing: str) -> str:
    return f"GET {FETCH[listing]}"


TASK_OPERATION = f"GET {TASK}"
MIGRATE_OPERATION = f"POST {MIGRATE}"


def protected_operations() -> list[str]:
    """Every operation the contract puts behind the platformOAuth scheme, as `POST /path`."""
    document = documents.load(CONTRACT)
    default: list[dict[str, Any]] = document.get("security") or []
    labels = []
    for method, template, operation in documents.operations(CONTRACT):
        requirements: list[dict[str, Any]] = operation.get("security", default)
        if any("platformOAuth" in requirement for requirement in requirements):
            labels.append(f"{method} {template}")
    return labels


def is_data_fetch(request: requests.PreparedRequest) -> bool:
    """Whether a request reads one of the data-fetch endpoints (which share one rate limit)."""
    path = urlsplit(request.url or "").path.rstrip("/")
    return request.method in ("GET", "HEAD") and path in FETCH.values()


def body_of(response: Answer) -> Json:
    try:
        return json.loads(response.text)
    except ValueError:
        return None


def error_code(response: Answer) -> str | None:
    body = body_of(response)
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def unique(prefix: str) -> str:
    """An id no run has used: events are stored for good, and a repeat would be a duplicate."""
    return f"pepharness-{prefix}-{secrets.token_hex(8)}"


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    return parsed


def now_text(offset_seconds: float = 0.0) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(seconds=offset_seconds))


# -- sample bodies ---------------------------------------------------------------------------------


def money(player: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "playerId": player or unique("player"),
        "amount": 25.5,
        "exchangeRate": 0.92,
        "date": now_text(),
        "currency": "USD",
        "transactionStatus": "APPROVED",
        "transactionType": "DEPOSIT",
        "transactionId": unique("money"),
        "realMoneyBalance": 125.5,
        "bonusMoneyBalance": 0,
        "paymentMethod": "card",
    }
    return {**body, **overrides}


def round_item(player: str, kind: str, **overrides: Any) -> dict[str, Any]:
    item = {
        "playerId": player,
        "realMoneyAmount": 1.0 if kind == "BET" else 2.5,
        "bonusMoneyAmount": 0,
        "exchangeRate": 1.0,
        "date": now_text(),
        "currency": "EUR",
        "transactionStatus": "APPROVED",
        "transactionType": kind,
        "transactionId": unique("round"),
        "gameCategoryId": "slots",
        "gameCategoryName": "Slots",
        "gameProviderId": 109,
        "gameProviderName": "Bgaming",
        "gameId": "130300045",
        "gameName": "Slotomon Go",
        "gameSessionId": secrets.token_hex(16),
        "realMoneyBalance": 100.0,
        "bonusMoneyBalance": 0,
    }
    return {**item, **overrides}


def game_round(player: str | None = None) -> dict[str, Any]:
    who = player or unique("player")
    return {"gameTransactionRound": [round_item(who, "BET"), round_item(who, "WIN")]}


def registration(player: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = {"playerId": player or unique("player"), "registrationDevice": "desktop",
            "date": now_text()}
    return {**body, **overrides}


def login(player: str | None = None, **overrides: Any) -> dict[str, Any]:
    return {"playerId": player or unique("player"), "date": now_text(), **overrides}


def tags(player: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = {"playerId": player or unique("player"), "tags": ["pepharness", unique("tag")]}
    return {**body, **overrides}


SAMPLES: dict[str, Callable[[], dict[str, Any]]] = {
    "money": money,
    "round": game_round,
    "registration": registration,
    "login": login,
    "tags": tags,
}


def transaction_keys(kind: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(transactionType, transactionId) of every transaction a money or round event holds."""
    items = body["gameTransactionRound"] if kind == "round" else [body]
    return [(str(item["transactionType"]), str(item["transactionId"])) for item in items]


def player(index: int, prefix: str, **overrides: Any) -> dict[str, Any]:
    """A bulk-sync player with every optional field."""
    document = {
        "playerId": f"{prefix}-{index:05d}",
        "registrationDate": "2024-03-01T10:00:00Z",
        "country": "DE",
        "currency": "EUR",
        "firstName": "Marie",
        "lastName": "Berge",
        "email": f"player{index}@example.com",
        "birthDate": "1990-04-12",
        "tags": ["pepharness"],
    }
    return {**document, **overrides}


# -- the gateway -----------------------------------------------------------------------------------


class Platform:
    """The Platform gateway under test: one per test process, shared by its checks."""

    def __init__(self, options: SuiteOptions) -> None:
        if options.base_url is None:
            raise ValueError("no base URL")
        self.options = options
        self.client_id = options.client_id
        self.secret = options.client_secret or DEFAULT_CLIENT_SECRET
        limit, period = self.rate_limit
        self.window = SharedWindow(
            budget_file(options.base_url, self.client_id, "data-fetch"), max(1, limit - 1), period
        )
        self._readers: set[str] = set()
        self.target = Target(options.base_url, window=self.window, is_limited=self._counted)
        if options.clock_control is not None:
            # A full window is crossed by moving the target's clock, not waited out (D173).
            self.window.advance = clock_mover(self.target.raw, options.clock_control)
        self.target.secrets.hide_basic(
            self.client_id, self.secret, "PEPHARNESS_CLIENT_ID", "PEPHARNESS_CLIENT_SECRET"
        )
        self._tokens: dict[str, tuple[str, float, float]] = {}
        self._lock = threading.Lock()

    def _counted(self, request: requests.PreparedRequest) -> bool:
        """Whether the target counts `request` against the client's data-fetch budget (D65):
        a read with one of the client's data:read tokens; a refused one (no token, a forged
        one, another scope) does not count."""
        return is_data_fetch(request) and request.headers.get("Authorization") in self._readers

    @property
    def rate_limit(self) -> tuple[int, float]:
        return self.options.expect_rate_limit or DOCUMENTED_RATE_LIMIT

    # -- the token endpoint ----------------------------------------------------------------

    def token_by_basic(
        self,
        *,
        scope: str | None = None,
        client_id: str | None = None,
        secret: str | None = None,
        form: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """The RFC 6749 form, the client authenticated by HTTP Basic; `form` replaces the
        default `grant_type=client_credentials` (and `scope`)."""
        data = dict(form) if form is not None else {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        auth = (client_id or self.client_id, self.secret if secret is None else secret)
        return self.target.request("POST", TOKEN, data=data, auth=auth)

    def token_by_form(
        self, *, scope: str | None = None, client_id: str | None = None,
        secret: str | None = None,
    ) -> requests.Response:
        """The RFC 6749 form with client_id and client_secret in it."""
        data = {
            "grant_type": "client_credentials",
            "client_id": client_id or self.client_id,
            "client_secret": self.secret if secret is None else secret,
        }
        if scope is not None:
            data["scope"] = scope
        return self.target.request("POST", TOKEN, data=data)

    def token_by_json(
        self, *, scope: str | None = None, client_id: str | None = None,
        secret: str | None = None,
    ) -> requests.Response:
        """The observed JSON shape `{clientId, clientSecret}`."""
        body: dict[str, str] = {
            "clientId": client_id or self.client_id,
            "clientSecret": self.secret if secret is None else secret,
        }
        if scope is not None:
            body["scope"] = scope
        return self.target.request("POST", TOKEN, json=body)

    def issue(self, scope: str = ALL_SCOPES) -> str:
        """A new token for `scope`, by Basic credentials."""
        response = self.token_by_basic(scope=scope)
        body = body_of(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise RuntimeError(
                f"no token for {self.client_id} (scope {scope}): {summarize(response, 120)}"
            )
        return token

    def token(self, scope: str = ALL_SCOPES) -> str:
        """A token for `scope`, reused for a few minutes."""
        with self._lock:
            cached = self._tokens.get(scope)
            if cached is not None and token_age(self.window, *cached[1:]) < TOKEN_REUSE_SECONDS:
                return cached[0]
            moved = self.window.moved() if self.window.advance is not None else 0.0
            token = self.issue(scope)
            self._tokens[scope] = (token, time.monotonic(), moved)
            if "data:read" in scope.split():
                self._readers.add(f"Bearer {token}")
            return token

    def forget_tokens(self) -> None:
        """Ask for new tokens from now on (the target restarted, and may not know the old ones)."""
        with self._lock:
            self._tokens.clear()

    # -- the protected endpoints -----------------------------------------------------------

    def call(
        self,
        operation: str,
        *,
        authorization: str | None,
        body: Any = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> requests.Response:
        """`operation` (`POST /rx-api/…`, a template's `{taskId}` filled with an unknown id)
        with `authorization` as the Authorization header (None: no header)."""
        method, template = operation.split(" ", 1)
        path = template.replace("{taskId}", "pepharness-no-such-task")
        sent = dict(headers or {})
        if authorization is not None:
            sent["Authorization"] = authorization
        if body is None and data is None and method in ("POST", "PATCH", "PUT"):
            body = sample_body(operation)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
            return self.target.request(
                method, path, data=data, params=params, headers=sent, raw=raw
            )
        return self.target.request(method, path, json=body, params=params, headers=sent, raw=raw)

    def bearer(self, scope: str = ALL_SCOPES) -> str:
        return f"Bearer {self.token(scope)}"

    def event(self, kind: str, body: Any, *, scope: str = ALL_SCOPES) -> requests.Response:
        return self.call(event_operation(kind), authorization=self.bearer(scope), body=body)

    def event_bytes(self, kind: str, data: bytes) -> requests.Response:
        return self.call(event_operation(kind), authorization=self.bearer(), data=data)

    def fetch(
        self, listing: str, params: Mapping[str, str] | None = None, *, raw: bool = False
    ) -> requests.Response:
        return self.call(
            fetch_operation(listing), authorization=self.bearer(), params=params, raw=raw
        )

    def sync(self, players: list[Any], encoding: str | None = None) -> requests.Response:
        data = json.dumps({"players": players}).encode()
        headers = {"Content-Type": "application/json"}
        if encoding is not None:
            data = compress(data, encoding)
            headers["Content-Encoding"] = encoding
        return self.target.request(
            "POST", MIGRATE, data=data, headers={**headers, "Authorization": self.bearer()}
        )

    def task(self, task_id: str) -> requests.Response:
        return self.target.request(
            "GET", f"{MIGRATE}/{task_id}", headers={"Authorization": self.bearer()}
        )

    # -- reading what was stored -----------------------------------------------------------

    def instant_before(self) -> str:
        """An RFC 3339 instant a little before now on the target's clock: its clock control's
        when given, else two seconds before its Date header (whole seconds) or this machine's
        time, whichever is earlier."""
        if self.options.clock_control is not None:
            try:
                moment = ClockControl(self.target, self.options.clock_control).now()
                return rfc3339(datetime.fromtimestamp(moment, UTC) - timedelta(milliseconds=5))
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
        local = datetime.now(UTC)
        answer = self.target.request("GET", TOKEN)
        served = _date_header(answer) or local
        return rfc3339(min(local, served) - timedelta(seconds=2))

    def pages(
        self, listing: str, *, delta: str, limit: int, max_pages: int
    ) -> tuple[list[requests.Response], bool]:
        """The pages of `listing` from `delta`, following `next` (at most `max_pages`); whether
        the last one ended the list (next null)."""
        answers: list[requests.Response] = []
        params = {"delta": delta, "limit": str(limit)}
        while len(answers) < max_pages:
            response = self.fetch(listing, params)
            answers.append(response)
            page = body_of(response)
            if response.status_code != 200 or not isinstance(page, dict):
                return answers, False
            cursor = page.get("next")
            if cursor is None:
                return answers, True
            params = {"next": str(cursor), "limit": str(limit)}
        return answers, False

    def expect_page(self, rule: Rule, response: requests.Response, what: str) -> list[Any]:
        """The items of a 200 page; fail `rule` when `response` is not one."""
        page = body_of(response)
        items = page.get("items") if isinstance(page, dict) else None
        if response.status_code != 200 or not isinstance(items, list) or "next" not in page:
            fail(
                rule,
                f"{what}: not a 200 page",
                received=summarize(response),
                documented='200 {"items": [...], "next": cursor or null}',
                curl=self.curl(response),
            )
        return items

    def curl(self, response: Answer) -> str:
        return self.target.curl(response)


def sample_body(operation: str) -> Any:
    """A valid body for a write operation of the contract (None for a read)."""
    for kind, (method, path) in EVENTS.items():
        if operation == f"{method} {path}":
            return SAMPLES[kind]()
    if operation == MIGRATE_OPERATION:
        return {"players": [player(0, unique("sync"))]}
    return None


def compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        import gzip

        return gzip.compress(data)
    if encoding == "br":
        import brotli

        return bytes(brotli.compress(data))
    raise ValueError(f"no encoder for {encoding!r}")


def _date_header(response: requests.Response) -> datetime | None:
    header = response.headers.get("Date")
    if not header:
        return None
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else None


class ClockControl:
    """The target's clock control (`GET/POST {url}/clock`, contracts/admin.yaml): read it and
    move it forward. Never back (D230): moved back, what the target recorded while it was ahead
    (a burst's requests, events) would lie in its future, counted by the next window."""

    def __init__(self, target: Target, url: str, window: SharedWindow | None = None) -> None:
        self.session = target.raw
        self.window = window
        self.url = url.rstrip("/") + "/clock"
        self.moved = 0.0

    def now(self) -> float:
        """The target's "now" as a POSIX timestamp."""
        response = self.session.get(self.url)
        response.raise_for_status()
        return parse_rfc3339(response.json()["now"]).timestamp()

    def advance(self, seconds: float) -> None:
        response = self.session.post(self.url, json={"advance_seconds": seconds})
        response.raise_for_status()
        self.moved += seconds
        if self.window is not None:  # the budget's stamps and the tokens' age follow
            self.window.moved_outside(seconds)

