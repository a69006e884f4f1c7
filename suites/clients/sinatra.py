"""The client rules of Groove's Sinatra API, judged from a traffic file (issue 14 item 3).

`judge(entries)` reads the entries of `serve --traffic FILE` once, in order (`read_traffic`
streams them), and returns one `Verdict` per rule of `CATALOG`. Its state is per token issued,
per credential rate limited and per page walk (D105-D107): bounded by what the client did, not
by how many requests it sent. Only the Sinatra mock's lines count; `/__admin` is not the client.

What a traffic line cannot show is not judged: request bodies are never written (D104), so the
contract rule looks at the operation, the query and the credential kind only.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pepharness.suites import documents
from pepharness.suites.clients import Breach, Entry, Verdict
from pepharness.suites.rules import Level, Rule, RuleCatalog

MUST, SHOULD = Level.MUST, Level.SHOULD
SEED = "seed 003 ('Games from Sinatra')"

TOKEN_LIFETIME_SECONDS = 20 * 60
"""The seed: "The session ID is valid for only 20 minutes" (on the mock's clock)."""
RENEWAL_WINDOW_SECONDS = 5 * 60
"""A login within the last 5 minutes of the live token's lifetime is a renewal (D105)."""
RETRY_AFTER_SLACK_SECONDS = 0.05
"""Clock granularity allowed on Retry-After: the mock stamps `time` from two clocks (D106)."""
PRUNE_AT, FORGET_SECONDS = 1000, 24 * 3600
"""Past PRUNE_AT tokens, those expired over FORGET_SECONDS ago are forgotten (D105)."""
MIN_PAGE_SIZE, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 1, 10_000, 200
"""contracts/sinatra.yaml `page_size` (D17)."""

CATALOG = RuleCatalog("sinatra-client")
add = CATALOG.add

TOKEN_REUSED = add(
    "check_client_reuses_its_token", MUST,
    f"{SEED}: jwt-auth response header, 'valid for only 20 minutes'; D105",
    "At most one login per token lifetime and user: a new login only after a 401, once the "
    "user's token is in its last 5 minutes or expired, or when its last login issued none.",
)
DROPS_TOKEN_AFTER_401 = add(
    "check_client_drops_a_token_after_401", MUST,
    f"{SEED}: 401 'unauthorized'; D105",
    "After a 401 to an unexpired token the client logs in again and never sends that token again.",
)
RENEWS_BEFORE_EXPIRY = add(
    "check_client_renews_its_token_before_20_minutes", MUST,
    f"{SEED}: 'The session ID is valid for only 20 minutes'; D105",
    "A token is not kept past its 20 minutes (mock clock): one use past them is tolerated "
    "(the client learns from its 401, e.g. after the clock jumped), a second is a breach.",
)
HONOURS_RETRY_AFTER = add(
    "check_client_honours_retry_after", MUST,
    f"{SEED}: 429 'slow down'; RFC 9110 §10.2.3; D26; D106",
    "After a 429 with Retry-After on the paginated history, nothing more is sent there with "
    "those credentials (that started after the 429 was answered) before Retry-After has passed.",
)
WAITS_RETRY_AFTER_5XX = add(
    "check_client_waits_retry_after_on_5xx", SHOULD,
    "RFC 9110 §10.2.3 (Retry-After on 503); D148",
    "After a 5xx with Retry-After, the same request (method, path, query) is not sent again "
    "before Retry-After has passed (from the end of the 5xx, wall clock).",
)
PAGES_NOT_SKIPPED = add(
    "check_client_walks_pages_in_order", MUST,
    f"{SEED}: page_number, page_size, total_count; D107",
    "A walk of the paginated history starts at page 1 and asks page n+1 only after page n was "
    "answered: no page is skipped.",
)
PAGES_NOT_REPEATED = add(
    "check_client_never_repeats_a_page", MUST,
    f"{SEED}: page_number; D107",
    "A page answered 200 is not asked again in the same walk (a failed one may be retried); "
    "page 1 again after the last page starts a new walk.",
)
STOPS_AT_LAST_PAGE = add(
    "check_client_stops_at_the_last_page", MUST,
    f"{SEED}: total_count; D22; D107",
    "No page past the last one, ceil(total_count / page_size) (at least 1), is asked.",
)
PAGE_SIZE_BOUNDS = add(
    "check_client_page_size_within_bounds", MUST,
    "contracts/sinatra.yaml page_size: 1 to 10000; D17",
    "`page_size` on the paginated history is an integer from 1 to 10000.",
)
FROM_WITH_TO = add(
    "check_client_sends_from_and_to_together", MUST,
    f"{SEED}: from, to; D17",
    "`from` and `to` are sent as a pair, or neither.",
)
AUTH_WHERE_DOCUMENTED = add(
    "check_client_uses_basic_only_on_the_paginated_history", MUST,
    f"{SEED}: 'Username:Password' on the paginated history, jwt-auth elsewhere; D24",
    "HTTP Basic only on the paginated history, which gets nothing else; jwt-auth on every "
    "other call but the login, which needs none.",
)
VALID_REQUEST = add(
    "check_client_requests_match_the_contract", MUST,
    "contracts/sinatra.yaml; D107",
    "Every request is an operation of contracts/sinatra.yaml: path parameters valid, query "
    "parameters documented, the required ones present, integers, patterns and enums valid, a "
    "body's Content-Type documented (bodies are not in the traffic file: not judged).",
)

_INTEGER = re.compile(r"[+-]?\d{1,18}")
LOGIN = re.compile(r"/[^/]+/login/?")
HISTORY_API = re.compile(r"/transactions/[^/]+/games/history/api")


def _seconds(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _integer(text: Any) -> int | None:
    if not isinstance(text, str) or not _INTEGER.fullmatch(text.strip()):
        return None
    return int(text)


@dataclass
class _Token:
    seq: int
    expires: float  # mock clock, epoch seconds
    used_expired: int = 0  # seq of its first use past expiry


@dataclass
class _Walk:
    answered: int = 0  # the last page answered 200, in order
    last: int | None = None  # ceil(total_count / page_size), once a page said
    seq: int = 0  # the seq of the last page answered


class _Judge:
    def __init__(self) -> None:
        self.verdicts = {rule.name: Verdict(rule) for rule in CATALOG}
        self.tokens: dict[str, _Token] = {}
        self.prune_at = PRUNE_AT
        # per login user (D150; None: a file without `user`) the last token issued to it,
        # while no 401 ended it
        self.live: dict[Any, str] = {}
        self.dead: dict[str, int] = {}  # credential -> seq of the 401 that ended it
        self.quiet: dict[str, tuple[float, float, int]] = {}  # credential -> (from, until, seq)
        self.walks: dict[tuple[Any, ...], _Walk] = {}
        # D148: the request -> (answered, until, seq, status) of its 5xx with Retry-After
        self.unavailable: dict[tuple[Any, ...], tuple[float, float, int, int]] = {}
        self.contract = _Contract()

    def breach(self, rule: Rule, title: str, seqs: Iterable[int], detail: str) -> None:
        self.verdicts[rule.name].breaches.append(Breach(title, tuple(seqs), detail))

    def check(self, rule: Rule) -> None:
        self.verdicts[rule.name].checked += 1

    def see(self, entry: Entry) -> None:
        if entry.get("mock", "sinatra") != "sinatra":
            return
        path = str(entry.get("path", ""))
        if path.startswith("/__admin"):
            return
        seq = int(entry.get("seq", 0))
        method = str(entry.get("method", "")).upper()
        query = entry.get("query") or {}
        auth = entry.get("auth")
        self.contract.judge(self, seq, method, path, entry)
        self.after_5xx(entry, seq, method, path, query)
        if method == "POST" and LOGIN.fullmatch(path):
            self.login(entry, seq)
            return
        history = HISTORY_API.fullmatch(path) is not None
        self.check(AUTH_WHERE_DOCUMENTED)
        if history and auth != "basic":
            self.breach(
                AUTH_WHERE_DOCUMENTED, f"{method} {path} with {auth or 'no credential'}", [seq],
                "the paginated history takes HTTP Basic (the user's email and password), "
                "not jwt-auth",
            )
        elif not history and auth != "jwt-auth":
            self.breach(
                AUTH_WHERE_DOCUMENTED, f"{method} {path} with {auth or 'no credential'}", [seq],
                "every call but the login and the paginated history takes the jwt-auth header "
                "from the login's answer; Basic only on the paginated history",
            )
        self.pair(entry, seq, query)
        if auth == "jwt-auth" and entry.get("credential"):
            self.token_use(entry, seq, str(entry["credential"]))
        if history:
            self.history(entry, seq, query)

    def after_5xx(
        self, entry: Entry, seq: int, method: str, path: str, query: dict[str, Any]
    ) -> None:
        """A 5xx's Retry-After (D148): the same request not before it passed."""
        key = (method, path, *sorted((str(k), str(v)) for k, v in query.items()),
               entry.get("user"))
        started = _seconds(entry.get("time"))
        if started is None:
            return
        told = self.unavailable.get(key)
        if told is not None:
            answered, until, refused, was = told
            if started >= until:
                del self.unavailable[key]
            elif started >= answered:
                self.check(WAITS_RETRY_AFTER_5XX)
                del self.unavailable[key]
                self.breach(
                    WAITS_RETRY_AFTER_5XX, "the same request before Retry-After had passed",
                    [refused, seq],
                    f"{method} {path} was answered {was} with "
                    f"Retry-After at line {refused} and sent again {until - started:.2f} s "
                    "before it had passed; wait as the answer says",
                )
        status = entry.get("status")
        if not isinstance(status, int) or status < 500:
            return
        answered = started + float(entry.get("duration_ms") or 0) / 1000
        wait = _retry_after((entry.get("response_headers") or {}).get("Retry-After"), answered)
        if wait is None or wait <= 0:
            return
        self.check(WAITS_RETRY_AFTER_5XX)
        self.unavailable[key] = (
            answered, answered + wait - RETRY_AFTER_SLACK_SECONDS, seq, status
        )
        if len(self.unavailable) > PRUNE_AT:  # the oldest first: bounded memory
            del self.unavailable[next(iter(self.unavailable))]

    # -- the jwt-auth token ------------------------------------------------------------------

    def login(self, entry: Entry, seq: int) -> None:
        now = _seconds(entry.get("clock")) or 0.0
        issued = entry.get("issued")
        if not issued:
            return  # a refused or failed login: the next one is a retry
        self.check(TOKEN_REUSED)
        user = entry.get("user")
        held = self.live.get(user)
        live = self.tokens.get(held) if held else None
        if live is not None and now < live.expires - RENEWAL_WINDOW_SECONDS:
            left = live.expires - now
            self.breach(
                TOKEN_REUSED, "a new login while the token was good", [live.seq, seq],
                f"logged in again with {left / 60:.1f} of the token's 20 minutes left and no "
                f"401 since it was issued (line {live.seq}"
                f"{', the same user' if user else ''}); reuse the jwt-auth token until "
                f"its last {RENEWAL_WINDOW_SECONDS // 60} minutes or a 401",
            )
        # The mock signs the same claims within one second into the same token: a login that
        # hands back a token answered 401 before makes it the client's good token again (D105).
        self.dead.pop(str(issued), None)
        # the token expires on the mock's whole second, as the mock's `iat` is
        self.tokens[str(issued)] = _Token(seq, math.floor(now) + TOKEN_LIFETIME_SECONDS)
        self.live.pop(user, None)  # re-inserted last: the dict keeps logins in order
        self.live[user] = str(issued)
        if len(self.live) > PRUNE_AT:  # users: the oldest login forgotten first
            del self.live[next(iter(self.live))]
        if len(self.tokens) > self.prune_at:
            self.prune(now)
            self.prune_at = max(PRUNE_AT, 2 * len(self.tokens))

    def prune(self, now: float) -> None:
        # Tokens a day past their lifetime are forgotten (bounded memory, D105).
        for key in [k for k, t in self.tokens.items() if t.expires < now - FORGET_SECONDS]:
            del self.tokens[key]

    def token_use(self, entry: Entry, seq: int, credential: str) -> None:
        now = _seconds(entry.get("clock")) or 0.0
        status = entry.get("status")
        token = self.tokens.get(credential)
        expired = token is not None and now >= token.expires
        if token is not None:
            self.check(RENEWS_BEFORE_EXPIRY)
            if expired:
                if token.used_expired:
                    self.breach(
                        RENEWS_BEFORE_EXPIRY, "a token sent past its 20 minutes again",
                        [token.seq, token.used_expired, seq],
                        f"the token issued at line {token.seq} expired "
                        f"{(now - token.expires) / 60:.1f} minutes before (mock clock) and was "
                        f"already refused at line {token.used_expired}; the seed: valid for only "
                        "20 minutes: log in again",
                    )
                else:
                    token.used_expired = seq
        ended = self.dead.get(credential)
        if ended is not None and not expired:
            self.breach(
                DROPS_TOKEN_AFTER_401, "a token sent again after its 401", [ended, seq],
                f"the token was answered 401 at line {ended}; after a 401 log in again and "
                "never send that token again",
            )
        if status == 401 and not expired and ended is None:
            self.check(DROPS_TOKEN_AFTER_401)
            self.dead[credential] = seq
            for user in [u for u, token in self.live.items() if token == credential]:
                del self.live[user]

    # -- from/to, page_size, Retry-After, the page walk ---------------------------------------

    def pair(self, entry: Entry, seq: int, query: dict[str, Any]) -> None:
        given = [name for name in ("from", "to") if name in query]
        if not given:
            return
        self.check(FROM_WITH_TO)
        if len(given) == 1:
            missing = "to" if given == ["from"] else "from"
            self.breach(
                FROM_WITH_TO, f"`{given[0]}` without `{missing}`", [seq],
                f"{entry.get('method')} {entry.get('path')} sent `{given[0]}` alone; send "
                "`from` and `to` together (or `time_period`)",
            )

    def history(self, entry: Entry, seq: int, query: dict[str, Any]) -> None:
        credential = str(entry.get("credential") or "")
        started = _seconds(entry.get("time"))
        status = entry.get("status")
        # a delay alone is a real answer (D153); a line without fault_kind: any fault counts
        faulted = bool(entry.get("fault")) and entry.get("fault_kind") != "latency"
        size = DEFAULT_PAGE_SIZE
        if "page_size" in query:
            self.check(PAGE_SIZE_BOUNDS)
            parsed = _integer(query["page_size"])
            if parsed is None or not MIN_PAGE_SIZE <= parsed <= MAX_PAGE_SIZE:
                self.breach(
                    PAGE_SIZE_BOUNDS, f"page_size={query['page_size']!r}", [seq],
                    f"page_size is an integer from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE} "
                    "(contracts/sinatra.yaml)",
                )
            else:
                size = parsed
        self.retry_after(entry, seq, credential, started, status)
        number = _integer(query.get("page_number", "1"))
        if number is None or number < 1 or not MIN_PAGE_SIZE <= size <= MAX_PAGE_SIZE:
            return  # not a page: the bounds and contract rules say so
        self.page(entry, seq, credential, query, number, size, status == 200 and not faulted)

    def retry_after(
        self, entry: Entry, seq: int, credential: str, started: float | None, status: Any
    ) -> None:
        quiet = self.quiet.get(credential)
        if quiet is not None and started is not None:
            answered, until, refused = quiet
            if started >= until:
                del self.quiet[credential]
            elif started >= answered:
                self.check(HONOURS_RETRY_AFTER)
                self.breach(
                    HONOURS_RETRY_AFTER, "a request before Retry-After had passed",
                    [refused, seq],
                    f"sent {until - started:.2f} s before the Retry-After of the 429 at line "
                    f"{refused} had passed; send nothing to the paginated history with those "
                    "credentials until then",
                )
        if status != 429 or started is None:
            return
        wait = _retry_after((entry.get("response_headers") or {}).get("Retry-After"), started)
        if wait is None:
            return  # a 429 without a readable Retry-After sets no time (D106)
        self.check(HONOURS_RETRY_AFTER)
        answered = started + float(entry.get("duration_ms") or 0) / 1000
        self.quiet[credential] = (answered, started + wait - RETRY_AFTER_SLACK_SECONDS, seq)

    def page(
        self, entry: Entry, seq: int, credential: str, query: dict[str, Any],
        number: int, size: int, answered: bool,
    ) -> None:
        key = (credential, size, *sorted((k, str(v)) for k, v in query.items()
                                         if k not in ("page_number", "page_size")))
        walk = self.walks.get(key)
        if walk is not None and walk.last is not None and walk.answered >= walk.last \
                and number == 1:
            walk = None  # the last page was read: page 1 starts a new walk
        if walk is None:
            walk = self.walks[key] = _Walk()
        self.check(PAGES_NOT_SKIPPED)
        self.check(PAGES_NOT_REPEATED)
        if walk.last is not None:
            self.check(STOPS_AT_LAST_PAGE)
        if walk.last is not None and number > walk.last:
            self.breach(
                STOPS_AT_LAST_PAGE, f"page {number} of {walk.last}", [walk.seq, seq],
                f"the answer at line {walk.seq} made page {walk.last} the last "
                f"(ceil(total_count / {size})); stop there",
            )
        elif number > walk.answered + 1:
            self.breach(
                PAGES_NOT_SKIPPED, f"page {number} after page {walk.answered}",
                [s for s in (walk.seq, seq) if s],
                f"asked page {number} when page {walk.answered + 1} was next; walk the pages "
                "in order from 1",
            )
        elif number <= walk.answered:
            self.breach(
                PAGES_NOT_REPEATED, f"page {number} again", [walk.seq, seq],
                f"page {number} was already answered (the walk is at page {walk.answered}, "
                f"line {walk.seq}); ask each page once",
            )
        if not answered:
            return
        if number == walk.answered + 1:
            walk.answered, walk.seq = number, seq
        total = (entry.get("answer") or {}).get("total_count")
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            walk.last = max(1, math.ceil(total / size))

    def result(self) -> list[Verdict]:
        return list(self.verdicts.values())


def _retry_after(value: Any, started: float) -> float | None:
    """Retry-After in seconds from `started`: delay-seconds or an HTTP-date (RFC 9110)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        return parsedate_to_datetime(text).timestamp() - started
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class _Operation:
    method: str
    pattern: re.Pattern[str]
    template: str
    query: dict[str, dict[str, Any]]
    path: tuple[tuple[str, dict[str, Any]], ...]  # in the template's order
    media: tuple[str, ...]  # the request body's media types, if it has one


class _Contract:
    """The operations of contracts/sinatra.yaml: method, path, parameters, body media types."""

    def __init__(self) -> None:
        self.operations: list[_Operation] = []
        document = documents.load("sinatra")
        for method, template, operation in documents.operations("sinatra"):
            item = document["paths"][template]
            query, path = {}, {}
            for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
                parameter = _resolve(document, parameter)
                if parameter.get("in") == "query":
                    query[parameter["name"]] = parameter
                elif parameter.get("in") == "path":
                    path[parameter["name"]] = parameter.get("schema") or {}
            names = re.findall(r"\{([^}]+)\}", template)
            pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)))
            body = _resolve(document, operation.get("requestBody") or {})
            self.operations.append(_Operation(
                method, pattern, template, query,
                tuple((name, path.get(name, {})) for name in names),
                tuple(body.get("content", {})),
            ))
        self.match = functools.lru_cache(maxsize=1024)(self._match)

    def _match(self, path: str) -> list[tuple[_Operation, tuple[str, ...]]]:
        found = []
        for operation in self.operations:
            matched = operation.pattern.fullmatch(path)
            if matched:
                found.append((operation, matched.groups()))
        return found

    def judge(self, judge: _Judge, seq: int, method: str, path: str, entry: Entry) -> None:
        judge.check(VALID_REQUEST)
        templates = self.match(path)
        chosen = [(op, values) for op, values in templates if op.method == method]
        if not chosen:
            reason = (f"{method} is not documented for {templates[0][0].template}" if templates
                      else "no operation of contracts/sinatra.yaml has this path")
            judge.breach(VALID_REQUEST, f"{method} {path}", [seq], reason)
            return
        operation, values = chosen[0]
        query = entry.get("query")
        query = query if isinstance(query, dict) else {}
        problems = [f"`{name}` is not a query parameter of {method} {operation.template}"
                    for name in query if name not in operation.query]
        for (name, schema), value in zip(operation.path, values, strict=True):
            problem = _value_problem(value, schema)
            if problem:
                problems.append(f"path `{name}`={value!r}: {problem}")
        history = operation.template.endswith("/games/history/api")
        for name, parameter in operation.query.items():
            if history and name == "page_size":
                continue  # check_client_page_size_within_bounds judges it (D107)
            if name not in query:
                if parameter.get("required"):
                    problems.append(f"`{name}` is required")
                continue
            problem = _value_problem(str(query[name]), parameter.get("schema") or {})
            if problem:
                problems.append(f"`{name}`={query[name]!r}: {problem}")
        if operation.media:
            sent = str((entry.get("request_headers") or {}).get("Content-Type") or "")
            media = sent.split(";", 1)[0].strip().lower()
            if media not in operation.media:
                problems.append(f"Content-Type {sent or '(none)'!r}: the body is "
                                f"{' or '.join(operation.media)}")
        if problems:
            judge.breach(VALID_REQUEST, f"{method} {path}", [seq], "; ".join(problems))


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _value_problem(value: str, schema: dict[str, Any]) -> str | None:
    if value == "***":
        return None  # redacted (D104): not judged
    if schema.get("type") == "integer":
        number = _integer(value)
        if number is None:
            return "not an integer"
        if "minimum" in schema and number < schema["minimum"]:
            return f"below the minimum {schema['minimum']}"
        if "maximum" in schema and number > schema["maximum"]:
            return f"above the maximum {schema['maximum']}"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"does not match {schema['pattern']}"
    if "enum" in schema and value not in [str(v) for v in schema["enum"]]:
        return f"not one of {', '.join(map(str, schema['enum']))}"
    return None


def judge(entries: Iterable[Entry]) -> list[Verdict]:
    """One verdict per rule of CATALOG over the Sinatra lines of a traffic file, in one pass."""
    state = _Judge()
    for entry in entries:
        state.see(entry)
    return state.result()
