"""Client rules of the PEP's Platform gateway, judged from a traffic file (issue 14 item 3).

`judge(entries)` reads the entries of `serve --traffic` once, in order, and keeps only what its
rules need: per OAuth client its last grant, the tokens a 401 killed, the events whose last
attempt failed (pending a retry), a bounded window of recently sent event keys and refused
requests, per credential the end of a data-fetch Retry-After, per listing the position of its
page walk. Memory follows what the client holds open, not the number of requests (D108-D110).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pepharness.mocks.core.traffic import credential_id
from pepharness.suites.clients import Breach, Entry, Verdict
from pepharness.suites.rules import Level, RuleCatalog

API = "pep-platform-client"
CATALOG = RuleCatalog(API)

TOKEN_REUSED = CATALOG.add(
    "check_client_platform_token_reused",
    Level.MUST,
    "issue 14 item 3; seeds: OAuth 2.0 client credentials, `expires_in`; D108",
    "One OAuth token is reused until near its expiry (its last half, on the mock clock): a "
    "new token is asked for only then, or after a 401; never a token per event.",
)
NEW_TOKEN_AFTER_401 = CATALOG.add(
    "check_client_platform_new_token_after_401",
    Level.MUST,
    "issue 14 item 3; RFC 6750 §3.1 (invalid_token); D108",
    "After a 401 the client gets a new token, once: the refused token is never sent again.",
)
RETRY_SAME_EVENT = CATALOG.add(
    "check_client_platform_retry_same_event",
    Level.MUST,
    "issue 14 item 3; seeds: events are idempotent by transactionId, clients retry; D109",
    "After a 5xx, 429, timeout or broken connection (status 0) on an event, the client's next "
    "request to that event's path is the same event (same transactionId, same body); an event "
    "sent while the one before it was still unanswered is a retry after a timeout.",
)
KEY_KEEPS_BODY = CATALOG.add(
    "check_client_platform_key_keeps_its_body",
    Level.MUST,
    "issue 14 item 3; seeds: transactionId is the idempotency key; D109",
    "An event's idempotency key (transactionId) is never sent again with a different body.",
)
EVENTS_VALID = CATALOG.add(
    "check_client_platform_events_are_valid",
    Level.MUST,
    "issue 14 item 3; contracts/pep-platform.yaml (the reference PEP validates every event); D109",
    "Every event is valid against the contract: the PEP's own answer (not an injected fault) to "
    "an event is never a 400.",
)
BACKOFF = CATALOG.add(
    "check_client_platform_retry_backoff",
    Level.MUST,
    "issue 14 item 3; RFC 9110 §10.2.3 (Retry-After); D109",
    "Retries after a 5xx, timeout or broken connection wait, and wait longer each time: at "
    "least 100 ms (and a 429's Retry-After) before the first, no gap under 3/4 of the one before, "
    "and over 3 or more retries the last gap at least 1.5 times the first.",
)
WAITS_RETRY_AFTER_5XX = CATALOG.add(
    "check_client_platform_waits_retry_after_on_5xx",
    Level.SHOULD,
    "RFC 9110 §10.2.3 (Retry-After on 503); D148",
    "After a 5xx with Retry-After, the same request (an event by its transactionId, any other "
    "by method, path, query and body) is not sent again before Retry-After has passed (from "
    "the end of the 5xx, wall clock).",
)
NO_RETRY_4XX = CATALOG.add(
    "check_client_platform_never_retries_a_4xx",
    Level.MUST,
    "issue 14 item 3; RFC 9110 §15.5 (a 4xx is the client's error); D109",
    "A request refused with a 4xx other than 401 and 429 is never sent again unchanged (same "
    "method, path, query and body).",
)
FETCH_RETRY_AFTER = CATALOG.add(
    "check_client_platform_fetch_honours_retry_after",
    Level.MUST,
    "issue 14 item 3; seeds: data fetch 100 a minute, 429 with Retry-After; RFC 9110 §10.2.3",
    "After a 429 on the data fetch, that credential sends no data-fetch request before its "
    "Retry-After has passed (wall clock, from the end of the 429).",
)
FETCH_FOLLOWS_NEXT = CATALOG.add(
    "check_client_platform_fetch_follows_next",
    Level.MUST,
    "issue 14 item 3; seeds: data fetch `next` cursor; D110",
    "A data-fetch walk moves forward by `next`: no page fetched twice, never back, the first "
    "page not fetched again right after itself (answered pages only; a refused page may be "
    "asked again), and to the end: the run's last page of a walk answered `next: null`.",
)
BULK_SIZE = CATALOG.add(
    "check_client_platform_bulk_sync_within_size",
    Level.MUST,
    "seeds: bulk sync chunks of up to 20,000 players, 15 MB; D110; D152",
    "A bulk sync holds at most 20,000 players and 15 MB (decoded), as the traffic line "
    "records them; a line without them (an older file): never refused for its size (413).",
)
BEARER_IS_OAUTH = CATALOG.add(
    "check_client_platform_sends_its_oauth_token",
    Level.MUST,
    "issue 14 item 3; seeds: Platform calls carry `Authorization: Bearer` of the OAuth token",
    "Platform calls carry a Bearer token, never the operator's identity token nor a client "
    "secret.",
)

MAX_BULK_PLAYERS = 20_000
MAX_BULK_BYTES = 15 * 1024 * 1024
"""The seeds' bulk sync chunk: 20,000 players, 15 MB (the reference PEP's, D60)."""
TOKEN_PATH = "/api/oauth/v1/token"
FETCH_PREFIX = "/api/data-fetch/"
BULK_PATH = "/api/players-data/v1/migrate/batch"
PLATFORM_PREFIXES = ("/rx-api/", FETCH_PREFIX, "/api/players-data/", TOKEN_PATH)

DEFAULT_TOKEN_LIFETIME = 3600.0
"""The reference PEP's PLATFORM_TOKEN_LIFETIME_SECONDS."""
NEAR_EXPIRY = 0.5
"""A token may be replaced once this share of its lifetime has passed (D108)."""
FIRST_DELAY = 0.1
SHRINK_TOLERANCE = 0.75
GROWTH = 1.5
GIVE_UP_ATTEMPTS = 3
"""An event may be given up (another event sent in its stead) after this many attempts (D109)."""
WINDOW = 10_000
"""Recent event keys and refused requests kept (D109): the memory bound."""
KEPT_ATTEMPTS = 10
"""Attempts of one retried request remembered (its first and latest), for the breach's seqs."""
ABANDONED_KEPT = 8
"""Latest event attempts kept per path to find the ones a client stopped waiting for (D151)."""
RETRY_AFTER_TOLERANCE = 0.01
RETRYABLE = {0, 429}


def is_platform(path: str) -> bool:
    return path.startswith(PLATFORM_PREFIXES)


def foreign_credentials(identity_tokens: Iterable[str], secrets: Iterable[str]) -> set[str]:
    """The traffic identities (`credential`) of credentials a gateway call must never carry."""
    return {credential_id(value) for value in (*identity_tokens, *secrets)}


def parse_time(text: Any) -> float:
    """A traffic line's RFC 3339 `time` or `clock` as POSIX seconds."""
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def ended(entry: Entry) -> float:
    return parse_time(entry["time"]) + float(entry.get("duration_ms") or 0) / 1000


def retry_after_seconds(entry: Entry, at: float) -> float | None:
    """The answer's Retry-After in seconds (delay-seconds or HTTP-date); None when absent."""
    value = (entry.get("response_headers") or {}).get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - at)
    except (TypeError, ValueError, IndexError):
        return None


def failed(status: int) -> bool:
    return status >= 500 or status in RETRYABLE


def event_key(entry: Entry) -> tuple[str, ...] | None:
    """An event's idempotency key: its path and every transactionId of its body."""
    ids = [str(k["transactionId"]) for k in entry.get("keys") or () if "transactionId" in k]
    return (entry["path"], *ids) if ids else None


def signature(entry: Entry) -> str | None:
    """What makes two requests the same request: method, path, query and body digest."""
    body = entry.get("body_sha256")
    if body is None and entry["method"] not in ("GET", "HEAD", "DELETE"):
        return None  # a body the traffic does not identify
    query = json.dumps(entry.get("query") or {}, sort_keys=True)
    return f"{entry['method']} {entry['path']}?{query}#{body}"


def cursor_position(text: str | None) -> int | None:
    """The item after which a `next` cursor of the reference PEP resumes; 0 for the first
    page, None when unreadable (the mock refuses it; nothing to judge)."""
    if not text:
        return 0
    if not isinstance(text, str):
        return None
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        return int(decoded.rpartition(":")[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


class Bounded(OrderedDict[Any, Any]):
    """A dict of at most WINDOW entries, the oldest forgotten first."""

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > WINDOW:
            self.popitem(last=False)


@dataclass(frozen=True)
class Attempt:
    """One event's attempt as sent: wall-clock start and end of its answer (D151)."""

    start: float
    end: float
    key: tuple[str, ...]
    body: str | None
    seq: int


@dataclass
class Pending:
    """An event or request whose last attempt failed (a retry is due)."""

    seqs: list[int]
    body: str | None
    gaps: list[float] = field(default_factory=list)
    ended: float = 0.0
    wait: float = 0.0  # the failed answer's Retry-After
    attempts: int = 1


class PlatformJudge:
    def __init__(
        self,
        *,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        foreign_credentials: Collection[str] = (),
    ) -> None:
        self.verdicts = {rule.name: Verdict(rule) for rule in CATALOG}
        self.token_lifetime = token_lifetime
        self.foreign = set(foreign_credentials)
        self.grants: dict[str, tuple[float, int]] = {}  # client -> (mock clock, seq)
        self.unauthorized = 0  # seq of the last Platform 401
        self.dead: dict[str, int] = {}  # credential -> seq of its 401
        self.pending = Bounded()  # event key or signature -> its failed attempt (Pending)
        self.pending_path: dict[str, Any] = {}  # event path -> key of its failed event
        self.sent = Bounded()  # event key -> (body digest, seq)
        self.refused = Bounded()  # signature -> (status, seq)
        self.blocked: dict[str, tuple[float, int, float]] = {}  # credential -> until, seq, R
        self.walks = Bounded()  # (listing, delta) -> (position, seq) of its last page
        self.unfinished = Bounded()  # (listing, delta) -> seq of its last page, `next` not null
        self.unavailable = Bounded()  # request -> (answered, until, seq, status): D148
        self.attempts: dict[str, list[Attempt]] = {}  # event path -> latest, by start (D151)
        self.tries = Bounded()  # event key -> attempts seen (D151)
        self.timeout_gaps = Bounded()  # event key -> start-to-start gaps after timeouts

    def breach(self, rule: Any, title: str, seqs: Iterable[int], detail: str) -> None:
        self.verdicts[rule.name].breaches.append(Breach(title, tuple(seqs), detail))

    def check(self, rule: Any) -> None:
        self.verdicts[rule.name].checked += 1

    # -- one exchange ------------------------------------------------------------------------

    def feed(self, entry: Entry) -> None:
        path = entry.get("path") or ""
        if entry.get("mock", "pep") != "pep" or not is_platform(path):
            return
        seq, status, method = int(entry["seq"]), int(entry["status"]), entry["method"]
        credential = entry.get("credential")
        if path == TOKEN_PATH and method == "POST":
            self.token(entry, seq, status, credential)
        elif credential is not None:
            self.bearer(entry, seq, status, credential)
        else:
            self.check(BEARER_IS_OAUTH)
            self.breach(
                BEARER_IS_OAUTH, "no credential", [seq],
                f"{method} {path} carried no credential; the Platform gateway takes "
                "`Authorization: Bearer` of the token `POST /api/oauth/v1/token` granted",
            )
        real = not entry.get("fault") or entry.get("fault_kind") == "latency"  # D153
        if method == "POST" and path.startswith("/rx-api/") and status not in (0, 401, 429) \
                and status < 500 and real:
            self.check(EVENTS_VALID)
            if status == 400:
                key = event_key(entry)
                self.breach(
                    EVENTS_VALID, "an invalid event", [seq],
                    f"{path} answered 400 to the event {', '.join(key[1:]) if key else ''}: its "
                    "body is not valid against contracts/pep-platform.yaml (the PEP's answer "
                    "names the fields; the traffic holds no body)",
                )
        self.after_5xx(entry, seq, status, method, path)
        self.retries(entry, seq, status, method, path)
        self.four_xx(entry, seq, status)
        if path.startswith(FETCH_PREFIX) and method == "GET":
            self.fetch(entry, seq, status, credential)
        if path == BULK_PATH and method == "POST":
            self.bulk_size(entry, seq, status)
        if status == 401 and path != TOKEN_PATH:
            self.unauthorized = seq

    def bulk_size(self, entry: Entry, seq: int, status: int) -> None:
        """The documented chunk, from what the line recorded (D152), else the PEP's 413."""
        self.check(BULK_SIZE)
        items = entry.get("items")
        size = entry.get("body_bytes", entry.get("body_bytes_at_least"))
        over = []
        if isinstance(items, int) and items > MAX_BULK_PLAYERS:
            over.append(f"{items:,} players (at most {MAX_BULK_PLAYERS:,})")
        if isinstance(size, int) and size > MAX_BULK_BYTES:
            more = "over " if "body_bytes_at_least" in entry else ""
            over.append(f"{more}{size:,} bytes decoded (at most {MAX_BULK_BYTES:,}, 15 MiB)")
        if not over and status == 413:
            over.append("refused by the PEP for its size (413)")
        if over:
            self.breach(
                BULK_SIZE, "a bulk sync over the documented size", [seq],
                f"the bulk sync sent {' and '.join(over)}; the seeds document chunks of up to "
                "20,000 players and 15 MB: split it",
            )

    def token(self, entry: Entry, seq: int, status: int, client: str | None) -> None:
        if status != 200 or client is None:
            return
        self.check(TOKEN_REUSED)
        now = parse_time(entry["clock"])
        previous = self.grants.get(client)
        if previous is not None:
            at, granted = previous
            age = now - at
            if age < self.token_lifetime * NEAR_EXPIRY and self.unauthorized < granted:
                self.breach(
                    TOKEN_REUSED, "a new OAuth token while the last one was fresh",
                    [granted, seq],
                    f"token #{seq} was asked for {age:.0f} s (mock clock) after token #{granted} "
                    f"of the same client, with no 401 between; a token lives "
                    f"{self.token_lifetime:.0f} s and is reused until its last "
                    f"{NEAR_EXPIRY:.0%} (not one token per event)",
                )
        self.grants[client] = (now, seq)

    def bearer(self, entry: Entry, seq: int, status: int, credential: str) -> None:
        self.check(BEARER_IS_OAUTH)
        if credential in self.foreign or entry.get("auth") not in (None, "bearer"):
            what = "an operator identity token or a client secret" if credential in self.foreign \
                else f"a {entry.get('auth')} credential"
            self.breach(
                BEARER_IS_OAUTH, "not the OAuth token", [seq],
                f"{entry['method']} {entry['path']} carried {what}; the Platform gateway takes "
                "`Authorization: Bearer` of the token `POST /api/oauth/v1/token` granted",
            )
        killed = self.dead.get(credential)
        if killed is not None:
            self.check(NEW_TOKEN_AFTER_401)
            self.breach(
                NEW_TOKEN_AFTER_401, "a refused token sent again", [killed, seq],
                f"the token refused with 401 at #{killed} was sent again at #{seq}; after a "
                "401 the client gets a new token and never resends the dead one",
            )
        elif status == 401:
            self.check(NEW_TOKEN_AFTER_401)
            self.dead[credential] = seq

    def after_5xx(self, entry: Entry, seq: int, status: int, method: str, path: str) -> None:
        """A 5xx's Retry-After (D148): the same request is not sent before it has passed."""
        key = event_key(entry) if method == "POST" and path.startswith("/rx-api/") else None
        identity = key if key is not None else signature(entry)
        if identity is None:
            return
        told = self.unavailable.get(identity)
        if told is not None:
            answered, until, refused, was = told
            start = parse_time(entry["time"])
            if start >= until - RETRY_AFTER_TOLERANCE:
                self.unavailable.pop(identity, None)
            elif start >= answered:
                self.check(WAITS_RETRY_AFTER_5XX)
                self.unavailable.pop(identity, None)
                self.breach(
                    WAITS_RETRY_AFTER_5XX, "the same request before Retry-After had passed",
                    [refused, seq],
                    f"{method} {path} was answered {was} with Retry-After at #{refused} and sent "
                    f"again at #{seq}, {until - start:.2f} s before it had passed; wait as the "
                    "answer says",
                )
        if status < 500:
            return
        end = ended(entry)
        wait = retry_after_seconds(entry, end)
        if wait:
            self.check(WAITS_RETRY_AFTER_5XX)
            self.unavailable.put(identity, (end, end + wait, seq, status))

    def retries(self, entry: Entry, seq: int, status: int, method: str, path: str) -> None:
        key = event_key(entry) if method == "POST" and path.startswith("/rx-api/") else None
        body = entry.get("body_sha256")
        superseded = False
        if key is not None:
            superseded = self.abandoned(key, entry, seq, path, body)
            self.same_event(key, entry, seq, path, body, late=superseded)
        identity = key if key is not None else signature(entry)
        if identity is None or superseded:  # a late answer to an attempt already retried (D151)
            return
        start = parse_time(entry["time"])
        pending = self.pending.get(identity)
        if pending is not None:
            gap = start - pending.ended
            self.backoff(pending, seq, gap)
            pending.gaps.append(gap)
            pending.seqs.append(seq)
            pending.attempts += 1
            if len(pending.seqs) > KEPT_ATTEMPTS:  # the first and the latest: memory bounded
                del pending.seqs[1:-KEPT_ATTEMPTS + 1]
                del pending.gaps[1:-KEPT_ATTEMPTS + 2]
        if failed(status) and (status != 429 or key is not None):  # a fetch's 429: Retry-After
            if pending is None:
                pending = Pending([seq], body)
                self.pending.put(identity, pending)
                if key is not None:
                    self.pending_path[path] = key
            pending.ended = ended(entry)
            # a 5xx's Retry-After is the SHOULD of check_client_platform_waits_retry_after_on_5xx
            pending.wait = (retry_after_seconds(entry, pending.ended) or 0.0) \
                if status == 429 else 0.0
        elif pending is not None:
            self.pending.pop(identity, None)
            if self.pending_path.get(path) == identity:
                self.pending_path.pop(path, None)

    def same_event(self, key: tuple[str, ...], entry: Entry, seq: int, path: str,
                   body: str | None, *, late: bool = False) -> None:
        # a late line (an attempt already retried, D151) is not the next request of its path
        waiting = None if late else self.pending_path.get(path)
        if waiting is not None and waiting != key:
            pending = self.pending.pop(waiting, None)
            del self.pending_path[path]
            self.check(RETRY_SAME_EVENT)
            if pending is not None and pending.attempts < GIVE_UP_ATTEMPTS:
                self.breach(
                    RETRY_SAME_EVENT, "another event instead of the retry", [pending.seqs[-1], seq],
                    f"event {', '.join(waiting[1:])} failed at #{pending.seqs[-1]} after "
                    f"{pending.attempts} attempt(s); the next request to {path} (#{seq}) was "
                    f"{', '.join(key[1:])}: a failed event is sent again with the same "
                    "transactionId and body",
                )
        elif waiting == key:
            self.check(RETRY_SAME_EVENT)
        before = self.sent.get(key)
        if before is not None:
            self.check(KEY_KEEPS_BODY)
            if body is not None and before[0] is not None and before[0] != body:
                self.breach(
                    KEY_KEEPS_BODY, "a changed body under a sent key", [before[1], seq],
                    f"{', '.join(key[1:])} was sent at #{before[1]} with body {before[0]} and at "
                    f"#{seq} with body {body}; an idempotency key names one event, sent "
                    "unchanged",
                )
        self.sent.put(key, (body, seq))

    def abandoned(self, key: tuple[str, ...], entry: Entry, seq: int, path: str,
                  body: str | None) -> bool:
        """An event attempt sent while the one before it on its path had no answer yet: the
        client stopped waiting (its timeout) and this is its retry, or the event given up
        (D151). Lines are written as answered, so a slow attempt comes after its retry: the
        attempts are kept in start order and each new neighbour pair judged. True when a
        later attempt was sent before this one was answered (its answer came too late)."""
        self.tries.put(key, self.tries.get(key, 0) + 1)
        start = parse_time(entry["time"])
        attempt = Attempt(start, ended(entry), key, body, seq)
        kept = self.attempts.setdefault(path, [])
        at = len(kept)
        while at and kept[at - 1].start > start:
            at -= 1
        kept.insert(at, attempt)
        if at > 0:
            self.judge_abandoned(kept[at - 1], attempt, path)
        superseded = False
        if at + 1 < len(kept):
            superseded = self.judge_abandoned(attempt, kept[at + 1], path)
        if len(kept) > ABANDONED_KEPT:
            del kept[0]
        if len(self.attempts) > WINDOW:
            del self.attempts[next(iter(self.attempts))]
        return superseded

    def judge_abandoned(self, first: Attempt, then: Attempt, path: str) -> bool:
        """Judge `then`, sent while `first` was unanswered; False when it was not."""
        if not first.start < then.start < first.end:
            return False  # answered before the next attempt: not a timeout
        self.check(RETRY_SAME_EVENT)
        seqs = sorted((first.seq, then.seq))
        if then.key != first.key:
            if self.tries.get(first.key, 0) < GIVE_UP_ATTEMPTS:
                self.breach(
                    RETRY_SAME_EVENT, "another event instead of the retry after a timeout", seqs,
                    f"event {', '.join(first.key[1:])} (#{first.seq}) was still unanswered "
                    f"when {', '.join(then.key[1:])} (#{then.seq}) was sent to {path} "
                    f"{then.start - first.start:.2f} s after it: a timed-out event is sent "
                    "again with the same transactionId and body",
                )
            return True
        gap = then.start - first.start
        gaps = self.timeout_gaps.get(first.key) or []
        self.check(BACKOFF)
        if gap < FIRST_DELAY:
            self.breach(
                BACKOFF, "a retry without backoff after a timeout", seqs,
                f"the retry #{then.seq} was sent {gap * 1000:.0f} ms after #{first.seq} "
                f"started, its answer not yet sent; wait at least {FIRST_DELAY * 1000:.0f} ms",
            )
        elif gaps and gap < gaps[-1] * SHRINK_TOLERANCE:
            self.breach(
                BACKOFF, "delays that shrink after a timeout", seqs,
                f"the retry #{then.seq} came {gap * 1000:.0f} ms after the attempt before it "
                f"started, the one before {gaps[-1] * 1000:.0f} ms: delays grow",
            )
        elif len(gaps) >= 2 and gap < gaps[0] + FIRST_DELAY:
            self.breach(
                BACKOFF, "delays that do not grow after timeouts", seqs,
                f"the retry #{then.seq} came {gap * 1000:.0f} ms after its attempt started, "
                f"the first retry {gaps[0] * 1000:.0f} ms: each gap holds the client's timeout, "
                f"so the third must exceed the first by at least {FIRST_DELAY * 1000:.0f} ms",
            )
        self.timeout_gaps.put(first.key, [*gaps[-KEPT_ATTEMPTS + 1:], gap])
        return True

    def backoff(self, pending: Pending, seq: int, gap: float) -> None:
        self.check(BACKOFF)
        previous = pending.gaps[-1] if pending.gaps else None
        needed = max(FIRST_DELAY, pending.wait) if previous is None else max(
            previous * SHRINK_TOLERANCE, pending.wait
        )
        where = f"#{pending.seqs[-1]} -> #{seq}"
        if gap < needed:
            self.breach(
                BACKOFF, "a retry without backoff", [*pending.seqs, seq],
                f"retry {where} came {gap * 1000:.0f} ms after the failed answer (gaps so far: "
                f"{', '.join(f'{g * 1000:.0f}' for g in pending.gaps) or 'none'} ms); it must "
                f"wait at least {needed * 1000:.0f} ms: delays grow",
            )
        elif len(pending.gaps) >= 2 and gap < GROWTH * pending.gaps[0]:
            self.breach(
                BACKOFF, "delays that do not grow", [*pending.seqs, seq],
                f"retry {where} waited {gap * 1000:.0f} ms, the first {pending.gaps[0] * 1000:.0f}"
                f" ms: over 3 retries the last waits at least {GROWTH}x the first",
            )

    def four_xx(self, entry: Entry, seq: int, status: int) -> None:
        sig = signature(entry)
        if sig is None:
            return
        before = self.refused.get(sig)
        if before is not None:
            self.check(NO_RETRY_4XX)
            self.breach(
                NO_RETRY_4XX, f"a {before[0]} sent again", [before[1], seq],
                f"{entry['method']} {entry['path']} was refused with {before[0]} at #{before[1]} "
                f"and sent again unchanged at #{seq}; a 4xx other than 401 and 429 is the "
                "request's own error, never retried",
            )
            self.refused.pop(sig, None)
        if 400 <= status < 500 and status not in (401, 429):
            self.check(NO_RETRY_4XX)
            self.refused.put(sig, (status, seq))

    def fetch(self, entry: Entry, seq: int, status: int, credential: str | None) -> None:
        start = parse_time(entry["time"])
        who = credential or ""
        block = self.blocked.get(who)
        if block is not None:
            until, refused, wait = block
            self.check(FETCH_RETRY_AFTER)
            if start < until - RETRY_AFTER_TOLERANCE:
                self.breach(
                    FETCH_RETRY_AFTER, "a data fetch before Retry-After", [refused, seq],
                    f"the 429 at #{refused} said Retry-After: {wait:g}; #{seq} came "
                    f"{until - start:.2f} s too early",
                )
            else:
                del self.blocked[who]
        if status == 429:
            end = ended(entry)
            told = retry_after_seconds(entry, end)
            if told is not None:
                self.blocked[who] = (end + told, seq, told)
        if status != 200:
            return
        query = entry.get("query") or {}
        position = cursor_position(query.get("next"))
        if position is None:
            return
        self.check(FETCH_FOLLOWS_NEXT)
        listing = (entry["path"], str(query.get("delta")))
        walk = self.walks.get(listing)
        if walk is not None:
            last, at = walk
            if position == 0 and last == 0:
                self.breach(
                    FETCH_FOLLOWS_NEXT, "the first page again", [at, seq],
                    f"{entry['path']} was fetched from its start at #{at} and again at #{seq}, "
                    "without `next`: a walk follows the `next` of each page to the end",
                )
            elif 0 < position <= last:
                self.breach(
                    FETCH_FOLLOWS_NEXT, "a page repeated" if position == last else "a walk back",
                    [at, seq],
                    f"#{seq} asked {entry['path']} from item {position}, #{at} had asked from "
                    f"item {last}: each page once, in order",
                )
        self.walks.put(listing, (position, seq))
        answer = entry.get("answer") or {}
        if "next" in answer:  # recorded since D114; an older file's walk is not judged to its end
            if answer["next"]:
                self.unfinished.put(listing, seq)
            else:
                self.unfinished.pop(listing, None)

    def finish(self) -> None:
        """The walks the run left with a `next` still to follow (D114)."""
        for (path, _delta), seq in self.unfinished.items():
            self.breach(
                FETCH_FOLLOWS_NEXT, "a walk stopped before its end", [seq],
                f"#{seq}'s page of {path} answered a `next` cursor and the client never asked "
                "for it: a walk follows `next` until a page answers `next: null`",
            )
        self.unfinished.clear()

    def verdicts_list(self) -> list[Verdict]:
        return list(self.verdicts.values())


def judge(
    entries: Iterable[Entry],
    *,
    token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
    identity_tokens: Iterable[str] = (),
    client_secrets: Iterable[str] = (),
) -> list[Verdict]:
    """One verdict per rule of CATALOG over `entries` (a traffic file's, in order).
    `identity_tokens` and `client_secrets` are the operator's tokens and the Platform secrets
    the run handed out: a Platform call carrying one of them breaks
    check_client_platform_sends_its_oauth_token."""
    foreign = foreign_credentials(identity_tokens, client_secrets)
    state = PlatformJudge(token_lifetime=token_lifetime, foreign_credentials=foreign)
    for entry in entries:
        state.feed(entry)
    state.finish()
    return state.verdicts_list()
