"""A Sinatra client for the checks: paths, logins, the two kinds of credentials, sample data."""

from __future__ import annotations

import base64
import functools
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from pepharness.suites import documents
from pepharness.suites.http import Answer, Target, summarize
from pepharness.suites.options import SuiteOptions
from pepharness.suites.rules import Rule, fail
from pepharness.suites.throttle import SharedWindow, budget_file, clock_mover, token_age

CONTRACT = "sinatra"
VERSION = "1.0"
LOGIN = "/{version}/login/"
PROVIDERS = "/vendors/{version}/view/available"
CATALOG = "/games/{version}/view/detailed"
ASSETS = "/games/{version}/assets/{game_id}"
HISTORY = "/transactions/{version}/games/history"
PAGINATED = "/transactions/{version}/games/history/api"
METADATA = "/transactions/{version}/games/history/metadata"
ROUND = "/transactions/{version}/games/round/details/{casino_id}/{game_id}/{round_id}"

TOKEN_REUSE_SECONDS = 300
"""A token is reused this long (far below its 20 minutes), then a fresh login is made."""

_PAGINATED_PATH = re.compile(r"/transactions/[^/]+/games/history/api/?")
Json = Any
NO_TOKEN = ""


def label(method: str, template: str) -> str:
    """How reports name an operation: `GET /games/{version}/view/detailed`."""
    return f"{method} {template}"


def jwt_operations() -> list[str]:
    """Every operation the contract protects with `jwt-auth`, as labels."""
    document = documents.load(CONTRACT)
    default: list[dict[str, Any]] = document.get("security") or []
    labels = []
    for method, template, operation in documents.operations(CONTRACT):
        # `security: []` (the login) means none, not the document's default.
        requirements: list[dict[str, Any]] = operation.get("security", default)
        if any("jwtAuth" in requirement for requirement in requirements):
            labels.append(label(method, template))
    return labels


def all_operations() -> list[str]:
    return [label(method, template) for method, template, _ in documents.operations(CONTRACT)]


def is_paginated(path: str) -> bool:
    """Whether `path` is the rate-limited paginated history."""
    return _PAGINATED_PATH.fullmatch(path) is not None


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def counted_against(user: str, password: str) -> Callable[[requests.PreparedRequest], bool]:
    """Whether a request counts against `user`'s rate limit: a GET of the paginated history with
    that user's credentials. The limit is per credential (D26): a request without them (a 401
    the checks provoke) is no one's to count, and the endpoint has no other method to count."""
    header = basic_header(user, password)

    def counted(request: requests.PreparedRequest) -> bool:
        path = urlsplit(request.url or "").path
        return (
            request.method in ("GET", "HEAD")  # another method is refused before it is counted
            and is_paginated(path)
            and request.headers.get("Authorization") == header
        )

    return counted


def body_of(response: requests.Response) -> Json:
    try:
        return response.json()
    except ValueError:
        return None


def err_msg(response: requests.Response) -> str | None:
    body = body_of(response)
    return body.get("errMsg") if isinstance(body, dict) else None


def transaction_ids(page: Json) -> list[tuple[str, str, str]]:
    """(round_id, trans_id, type) of every transaction on a history page or in a round list;
    the seed's example repeats a trans_id within a round (D23), so the type is part of it."""
    rounds = page.get("responses", []) if isinstance(page, dict) else page
    ids = []
    for round_ in rounds or []:
        transactions = round_.get("transactions", {})
        for kind in ("good_transactions", "bad_transactions"):
            for transaction in transactions.get(kind, []):
                ids.append(
                    (
                        str(transaction.get("round_id", round_.get("round_id"))),
                        str(transaction.get("trans_id")),
                        str(transaction.get("type")),
                    )
                )
    return ids


class Sinatra:
    """The target seen as Sinatra: one per test process, shared by its checks."""

    def __init__(self, options: SuiteOptions) -> None:
        if options.base_url is None:
            raise ValueError("no base URL")
        self.options = options
        limit, period = options.pacing
        self.window = SharedWindow(budget_file(options.base_url, options.email), limit, period)
        self.target = Target(
            options.base_url,
            window=self.window,
            is_limited=counted_against(options.email, options.password),
        )
        if options.clock_control is not None:
            # A full window is crossed by moving the target's clock, not waited out (D173).
            self.window.advance = clock_mover(self.target.raw, options.clock_control)
        self.target.secrets.hide_basic(
            options.email, options.password, "PEPHARNESS_EMAIL", "PEPHARNESS_PASSWORD"
        )
        self.target.secrets.hide(options.restricted_password, "$PEPHARNESS_RESTRICTED_PASSWORD")
        self._token: tuple[str, float, float] | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """"Now" on the target's clock when its clock control is given (the pacing moves it
        ahead, D175), else this machine's."""
        if self.options.clock_control is not None:
            try:
                return datetime.fromtimestamp(
                    ClockControl(self, self.options.clock_control).now(), UTC
                )
            except (requests.RequestException, ValueError, KeyError, TypeError):
                pass
        return datetime.now(UTC)

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def path(template: str, version: str = VERSION, **values: str) -> str:
        return template.format(version=version, **values)

    def login(
        self,
        email: str | None = None,
        password: str | None = None,
        *,
        version: str = VERSION,
        body: Any = None,
    ) -> requests.Response:
        document = body if body is not None else {
            "email": self.options.email if email is None else email,
            "password": self.options.password if password is None else password,
        }
        return self.target.request("POST", self.path(LOGIN, version), json=document)

    def token(self, *, fresh: bool = False) -> str:
        """A valid `jwt-auth` token of the configured user (reused for a few minutes)."""
        with self._lock:
            if not fresh and self._token is not None:
                token, issued, moved = self._token
                if token_age(self.window, issued, moved) < TOKEN_REUSE_SECONDS:
                    return token
            moved = self.window.moved() if self.window.advance is not None else 0.0
            token = self.issue_token()
            self._token = (token, time.monotonic(), moved)
            return token

    def issue_token(self, email: str | None = None, password: str | None = None) -> str:
        response = self.login(email, password)
        token = response.headers.get("jwt-auth")
        if response.status_code != 200 or not token:
            raise RuntimeError(
                f"login of {email or self.options.email} failed: {summarize(response)}"
            )
        self.target.secrets.hide(token, "$JWT_AUTH")
        return token

    def get(
        self,
        path: str,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> requests.Response:
        """GET `path`; `token` None means the configured user's token, NO_TOKEN none at all."""
        sent = dict(headers or {})
        if basic is None and token != NO_TOKEN:
            sent["jwt-auth"] = token if token is not None else self.token()
        auth = basic
        return self.target.request("GET", path, params=params, headers=sent, auth=auth, raw=raw)

    def basic(self) -> tuple[str, str]:
        return (self.options.email, self.options.password)

    def page(self, params: Mapping[str, str], *, version: str = VERSION) -> requests.Response:
        """One page of the paginated history with the configured user's Basic credentials."""
        return self.get(self.path(PAGINATED, version), basic=self.basic(), params=params)

    def curl(self, response: Answer) -> str:
        return self.target.curl(response)

    def expect(
        self,
        rule: Rule,
        response: requests.Response,
        status: int,
        *,
        err: str | None = None,
        what: str,
        operation: str | None = None,
    ) -> Json:
        """Fail `rule` unless `response` has `status` (and, given `err`, that errMsg); the body."""
        documented = f"{status}" + (f" {{\"errMsg\": \"{err}\"}}" if err is not None else "")
        if response.status_code != status or (err is not None and err_msg(response) != err):
            fail(
                rule,
                what,
                received=summarize(response),
                documented=documented,
                curl=self.curl(response),
                operation=operation,
            )
        return body_of(response)

    # -- sample data (fetched once per process) --------------------------------------------

    @functools.cached_property
    def login_document(self) -> Json:
        response = self.login()
        if response.status_code != 200:
            raise RuntimeError(f"login failed: {summarize(response)}")
        return response.json()

    @functools.cached_property
    def operator_ids(self) -> list[int]:
        operators = self.login_document.get("available_operators") or []
        return [int(op) for op in operators]

    @functools.cached_property
    def catalog(self) -> list[dict[str, Any]]:
        response = self.get(self.path(CATALOG))
        if response.status_code != 200 or not isinstance(body_of(response), list):
            raise RuntimeError(f"the unfiltered catalog is not a list: {summarize(response)}")
        return list(response.json())

    @functools.cached_property
    def providers(self) -> list[dict[str, Any]]:
        response = self.get(self.path(PROVIDERS))
        if response.status_code != 200 or not isinstance(body_of(response), list):
            raise RuntimeError(f"the provider list is not a list: {summarize(response)}")
        return list(response.json())

    @functools.cached_property
    def recent_rounds(self) -> list[dict[str, Any]]:
        """The rounds of the last 30 days (plain history), to pick ids from."""
        response = self.get(self.path(HISTORY), params={"time_period": "last 30 days"})
        body = body_of(response)
        return list(body) if response.status_code == 200 and isinstance(body, list) else []

    def sample_round(self) -> dict[str, Any] | None:
        """A round of the last 30 days with its casino (operator) id, if there is one."""
        for round_ in self.recent_rounds:
            ids = round_path_ids(round_)
            if ids is not None:
                return ids
        return None

    def sample_path(self, template: str, version: str = VERSION) -> str:
        """A concrete path of `template` whose ids exist (when the target has any)."""
        values: dict[str, str] = {}
        if "{game_id}" in template and "{round_id}" not in template:
            values["game_id"] = str(self.catalog[0]["gameId"]) if self.catalog else "1"
        if "{round_id}" in template:
            sample = self.sample_round() or {"casino_id": "1", "game_id": "1", "round_id": "1"}
            values.update(sample)
        return self.path(template, version, **values)

    def request_operation(
        self, operation: str, *, version: str = VERSION, token: str | None = None
    ) -> requests.Response:
        """A well-formed request of `operation` (by its label) as the configured user."""
        template = operation.split(" ", 1)[1]
        if template == LOGIN:
            return self.login(version=version)
        path = self.sample_path(template, version)
        if template == PAGINATED:
            return self.get(path, basic=self.basic(), params={"time_period": "last 7 days"})
        params = {"time_period": "last 7 days"} if template == HISTORY else None
        return self.get(path, token=token, params=params)


def round_path_ids(round_: Mapping[str, Any]) -> dict[str, str] | None:
    """The path ids of a history round's details: its casino is its transactions' operator
    (None when no transaction names one)."""
    transactions = round_.get("transactions")
    if not isinstance(transactions, Mapping):
        return None
    good = transactions.get("good_transactions") or []
    bad = transactions.get("bad_transactions") or []
    for transaction in [*good, *bad]:
        if isinstance(transaction, Mapping) and "operator_id" in transaction:
            return {
                "casino_id": str(transaction["operator_id"]),
                "game_id": str(round_.get("game_id")),
                "round_id": str(round_.get("round_id")),
            }
    return None


def today_utc() -> date:
    return datetime.now(UTC).date()


def days_ago(days: int) -> str:
    return (today_utc() - timedelta(days=days)).isoformat()


class ClockControl:
    """The target's clock control (`GET/POST {url}/clock`, contracts/admin.yaml): read it and
    move it forward. Never back (D230): moved back, what the target recorded while it was ahead
    (a burst's requests, a login) would lie in its future, counted by the next window."""

    def __init__(self, sinatra: Sinatra, url: str) -> None:
        self.session = sinatra.target.raw
        self.window = sinatra.window
        self.url = url.rstrip("/") + "/clock"

    def now(self) -> float:
        """The target's "now" as a POSIX timestamp."""
        response = self.session.get(self.url)
        response.raise_for_status()
        return datetime.fromisoformat(response.json()["now"].replace("Z", "+00:00")).timestamp()

    def advance(self, seconds: float) -> None:
        response = self.session.post(self.url, json={"advance_seconds": seconds})
        response.raise_for_status()
        self.window.moved_outside(seconds)  # the budget's stamps and the token's age follow

    def advance_to(self, timestamp: float) -> None:
        """Move the clock forward so that it reads `timestamp` (never backwards)."""
        delta = timestamp - self.now()
        if delta > 0:
            self.advance(delta)
