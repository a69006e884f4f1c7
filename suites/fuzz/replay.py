"""Replay recorded fuzz traffic (a HAR file or a findings.json) against a base URL and diff the
answers with the recording."""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests

CompareMode = Literal["status", "shape", "body"]
COMPARE_MODES: tuple[CompareMode, ...] = ("status", "shape", "body")
DEFAULT_TIMEOUT = 10.0
DEFAULT_IGNORED = frozenset(
    {
        "token", "accessToken", "access_token", "refreshToken", "refresh_token",
        "expiresAt", "expires_at", "expiresIn", "expires_in",
        "date", "Date", "timestamp", "requestId", "request_id", "jti", "iat", "exp",
    }
)
"""Keys whose values change on every answer (fresh tokens, clocks, request ids)."""
NOT_REPLAYED_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "content-length", "host",
    }
)
"""Hop-by-hop headers and those describing the recorded connection: requests sets its own."""
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
TEXT_EXCERPT = 80


class ReplayError(ValueError):
    """A file, selection or option that cannot be replayed; the message is one line."""


@dataclass(frozen=True)
class Exchange:
    """One recorded exchange: its HAR entry, where it sits in the file, its finding if any."""

    entry: dict[str, Any]
    position: int
    """1-based place in the file (the entry's, or for a findings.json the finding's)."""
    finding: str | None = None

    @property
    def method(self) -> str:
        return str(self.entry["request"]["method"]).upper()

    @property
    def url(self) -> str:
        return str(self.entry["request"]["url"])

    @property
    def index(self) -> int | None:
        value = (self.entry.get("_pepharness") or {}).get("index")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def step(self) -> int:
        value = (self.entry.get("_pepharness") or {}).get("step")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def label(self) -> str:
        """`#index` of the planned item (`#index.step` within a flow), else `@position`."""
        if self.index is None:
            return f"@{self.position}"
        return f"#{self.index}" + (f".{self.step}" if self.step else "")


@dataclass(frozen=True)
class Recording:
    """A loaded file: its exchanges in file order and the base URL it was recorded against."""

    kind: Literal["har", "findings"]
    exchanges: tuple[Exchange, ...]
    base_url: str | None = None


@dataclass(frozen=True)
class Answer:
    """What came back (or `error`: `timeout` / `connection_error` / … when nothing did)."""

    status: int
    media_type: str | None = None
    body: bytes | None = None
    """None when the recording kept no body."""
    error: str | None = None
    detail: str = ""
    size: int | None = None
    """The body's full length when the recording kept only its first bytes."""

    @property
    def answered(self) -> bool:
        return self.error is None

    @property
    def truncated(self) -> bool:
        return self.body is not None and self.size is not None and self.size > len(self.body)

    def describe(self) -> str:
        return str(self.status) if self.error is None else self.error


@dataclass(frozen=True)
class Difference:
    """One way the new answer differs from the recorded one."""

    where: str
    """`status`, `content-type`, `answer`, a JSON path (`$.a[0].b`) or `line N` of a text body."""
    kind: str
    """`changed`, `missing`, `added`, `changed type`, `changed value`."""
    recorded: str = ""
    new: str = ""

    def describe(self) -> str:
        if self.kind == "missing":
            return f"{self.where}: missing (recorded {self.recorded})"
        if self.kind == "added":
            return f"{self.where}: added ({self.new})"
        return f"{self.where}: {self.kind}: recorded {self.recorded}, now {self.new}"

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "kind": self.kind, "recorded": self.recorded, "new": self.new}


@dataclass(frozen=True)
class Outcome:
    """One replayed exchange: what was sent, what came back, how it differs."""

    exchange: Exchange
    url: str
    header_names: tuple[str, ...]
    recorded: Answer
    new: Answer
    elapsed_ms: float
    differences: tuple[Difference, ...] = field(default=())

    @property
    def same(self) -> bool:
        return not self.differences

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def to_json(self) -> dict[str, Any]:
        """The report's record; header values are left out, as they may hold credentials."""
        exchange = self.exchange
        return {
            "position": exchange.position,
            "index": exchange.index,
            "step": exchange.step,
            "finding": exchange.finding,
            "same": self.same,
            "request": {
                "method": exchange.method,
                "url": self.url,
                "recorded_url": exchange.url,
                "headers": list(self.header_names),
            },
            "recorded": _answer_json(self.recorded),
            "new": _answer_json(self.new),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "differences": [difference.to_json() for difference in self.differences],
        }


def _answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "status": answer.status,
        "content_type": answer.media_type,
        "error": answer.error,
        "detail": answer.detail or None,
    }


# -- loading and selecting -------------------------------------------------------------------


def load(path: Path) -> Recording:
    """A HAR file or a findings.json, told apart by content (`log.entries` or `findings`)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise ReplayError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ReplayError(f"{path} is not JSON: it is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReplayError(f"{path} is not JSON: {error}") from None
    return parse(document, str(path))


def parse(document: Any, name: str = "the file") -> Recording:
    """A loaded HAR or findings.json document as a `Recording`, every entry checked."""
    if isinstance(document, dict) and isinstance(document.get("log"), dict):
        entries = document["log"].get("entries")
        if not isinstance(entries, list):
            raise ReplayError(f"{name} is a HAR file without log.entries")
        if not entries:
            raise ReplayError(f"{name} holds no HAR entries")
        exchanges = tuple(
            Exchange(_checked_entry(entry, f"entry {n}"), n) for n, entry in enumerate(entries, 1)
        )
        return Recording("har", exchanges, _base_url_of(document))
    if isinstance(document, dict) and isinstance(document.get("findings"), list):
        findings = document["findings"]
        exchanges = tuple(
            Exchange(_checked_entry(finding["entry"], f"finding {n}"), n, _finding_key(finding, n))
            for n, finding in enumerate(findings, 1)
            if isinstance(finding, dict) and finding.get("entry") is not None
        )
        if not exchanges:
            raise ReplayError(f"{name} holds no findings with a recorded entry")
        return Recording("findings", exchanges, _base_url_of(document))
    raise ReplayError(
        f"{name} is neither a HAR file (log.entries) nor a findings.json (findings)"
    )


def _base_url_of(document: Mapping[str, Any]) -> str | None:
    value = document.get("base_url")
    if value is None and isinstance(document.get("log"), dict):
        value = document["log"].get("_base_url")
    return value.rstrip("/") if isinstance(value, str) and value.strip() else None


def _finding_key(finding: Mapping[str, Any], number: int) -> str:
    key = finding.get("key")
    return key if isinstance(key, str) else f"finding {number}"


def _checked_entry(entry: Any, name: str) -> dict[str, Any]:
    """The entry itself, once it has what a replay needs: a request and a response status."""
    if not isinstance(entry, dict):
        raise ReplayError(f"{name} is not a HAR entry (a JSON object)")
    request, response = entry.get("request"), entry.get("response")
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise ReplayError(f"{name} has no request or no response")
    for key in ("method", "url"):
        if not isinstance(request.get(key), str) or not request[key]:
            raise ReplayError(f"{name} has no request.{key}")
    if urlsplit(request["url"]).scheme not in ("http", "https"):
        raise ReplayError(f"{name}'s request.url is not an http(s) URL")
    status = response.get("status")
    if not isinstance(status, int) or isinstance(status, bool):
        raise ReplayError(f"{name} has no response.status")
    return entry


def select(
    recording: Recording, finding: str | None = None, index: int | None = None
) -> list[Exchange]:
    """The exchanges to replay: one finding (1-based number or key) and/or one planned item."""
    exchanges = list(recording.exchanges)
    if finding is not None:
        if recording.kind != "findings":
            raise ReplayError("--finding picks from a findings.json, and this is a HAR file")
        wanted = finding.strip()
        if wanted.isdigit():
            chosen = [e for e in exchanges if e.position == int(wanted)]
            if not chosen:
                numbers = ", ".join(str(e.position) for e in exchanges)
                raise ReplayError(f"no finding {wanted}: the findings with an entry are {numbers}")
        else:
            chosen = [e for e in exchanges if e.finding == wanted]
            if not chosen:
                raise ReplayError(f"no finding has the key {wanted!r}")
        exchanges = chosen
    if index is not None:
        exchanges = [e for e in exchanges if e.index == index]
        if not exchanges:
            raise ReplayError(f"no recorded entry has the index {index}")
    return exchanges


# -- building the requests -------------------------------------------------------------------


def check_base_url(value: str) -> str:
    """An http(s) URL with a host and nothing after its path, without a trailing slash."""
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ReplayError(f"--base-url {value!r} is not an http(s) URL like http://host:port/prefix")
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise ReplayError(f"--base-url {value!r} has an invalid port") from None
    return url.rstrip("/")


def rebase(url: str, base_url: str, recorded_base_url: str | None = None) -> str:
    """`url` sent to `base_url`: the recorded base URL (when known and a prefix of `url`) is
    replaced, otherwise only scheme, host and port are, keeping path and query."""
    base = base_url.rstrip("/")
    if recorded_base_url:
        prefix = recorded_base_url.rstrip("/")
        if url == prefix or url.startswith((prefix + "/", prefix + "?")):
            return base + url[len(prefix):]
    parts = urlsplit(url)
    rest = parts.path or "/"
    if parts.query:
        rest += "?" + parts.query
    return base + rest


def parse_header(text: str) -> tuple[str, str]:
    """`Name: value` as (name, value); an empty value drops the recorded header."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon:  # the text is not echoed: it may be a bare token
        raise ReplayError("--header takes 'Name: value', and one has no colon")
    if not HEADER_NAME.match(name):
        raise ReplayError(f"--header {name!r} is not a header name")
    if "\n" in value or "\r" in value:
        raise ReplayError(f"--header {name} has a line break in its value")
    return name, value.strip()


def request_headers(
    entry: Mapping[str, Any], overrides: Sequence[tuple[str, str]] = ()
) -> dict[str, str]:
    """The recorded headers to send again, overridden case-insensitively by `overrides`."""
    headers: dict[str, tuple[str, str]] = {}
    for header in entry["request"].get("headers") or []:
        if not isinstance(header, dict):
            continue
        name, value = str(header.get("name", "")), str(header.get("value", ""))
        lowered = name.lower()
        if not name or lowered in NOT_REPLAYED_HEADERS:
            continue
        if lowered in headers:  # repeated headers are one comma-joined header (cookies: ;)
            joiner = "; " if lowered == "cookie" else ", "
            name, previous = headers[lowered]
            value = previous + joiner + value
        headers[lowered] = (name, value)
    for name, value in overrides:
        if value:
            headers[name.lower()] = (name, value)
        else:
            headers.pop(name.lower(), None)
    return dict(headers.values())


def request_body(entry: Mapping[str, Any]) -> bytes | None:
    """The recorded request body (base64 ones decoded), None without one."""
    post = entry["request"].get("postData")
    if not isinstance(post, dict) or not isinstance(post.get("text"), str):
        return None
    if "base64" in (post.get("_encoding"), post.get("encoding")):
        return _base64(post["text"], "request body")
    return str(post["text"]).encode("utf-8")


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ReplayError(f"a recorded {what} is marked base64 but is not") from None


# -- answers ---------------------------------------------------------------------------------


def media_type(content_type: str | None) -> str | None:
    """`application/json` of `application/json; charset=utf-8`."""
    if not content_type:
        return None
    return content_type.split(";")[0].strip().lower() or None


def error_kind(text: str) -> str:
    """`timeout` of `timeout: no answer within 10 s`; `connection error` is `connection_error`."""
    kind = text.split(":")[0].strip().lower()
    return re.sub(r"[\s-]+", "_", kind) or "error"


def recorded_answer(entry: Mapping[str, Any]) -> Answer:
    """The entry's answer as recorded."""
    response = entry["response"]
    error = response.get("_error")
    if response["status"] == 0 or error:
        text = str(error or "no answer")
        return Answer(0, error=error_kind(text), detail=text)
    content_type = next(
        (
            str(h.get("value"))
            for h in response.get("headers") or []
            if isinstance(h, dict) and str(h.get("name", "")).lower() == "content-type"
        ),
        None,
    )
    content = response.get("content") or {}
    if content_type is None and isinstance(content, dict):
        content_type = content.get("mimeType") or None
    body: bytes | None = None
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        if content.get("encoding") == "base64":
            body = _base64(content["text"], "response body")
        else:
            body = content["text"].encode("utf-8")
    size = content.get("size") if isinstance(content, dict) else None
    size = size if isinstance(size, int) and not isinstance(size, bool) else None
    return Answer(response["status"], media_type(content_type), body, size=size)


def send(
    session: requests.Session,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
) -> tuple[Answer, float]:
    """The answer to one request (never following redirects) and its time in ms."""
    started = time.perf_counter()
    try:
        response = session.request(
            method, url, headers=dict(headers), data=body, timeout=timeout,
            allow_redirects=False,
        )
        answer = Answer(
            response.status_code, media_type(response.headers.get("Content-Type")),
            response.content,
        )
    except requests.Timeout:
        answer = Answer(0, error="timeout", detail=f"timeout: no answer within {timeout:g} s")
    except requests.ConnectionError as error:
        answer = Answer(0, error="connection_error", detail=f"connection_error: {_reason(error)}")
    except requests.RequestException as error:
        answer = Answer(0, error="error", detail=f"error: {type(error).__name__}")
    return answer, (time.perf_counter() - started) * 1000


def _reason(error: Exception) -> str:
    text = str(error).lower()
    return "connection refused" if "refused" in text else type(error).__name__


# -- comparing -------------------------------------------------------------------------------


def compare(
    recorded: Answer,
    new: Answer,
    mode: CompareMode = "body",
    ignore: Collection[str] = DEFAULT_IGNORED,
) -> list[Difference]:
    """How `new` differs from `recorded`: status, then media type, then body (per `mode`)."""
    if not recorded.answered or not new.answered:
        if recorded.error == new.error:
            return []
        return [Difference("answer", "changed", recorded.describe(), new.describe())]
    differences = []
    if recorded.status != new.status:
        differences.append(Difference("status", "changed", str(recorded.status), str(new.status)))
    if mode == "status":
        return differences
    if recorded.media_type != new.media_type:
        differences.append(
            Difference(
                "content-type", "changed", recorded.media_type or "none", new.media_type or "none"
            )
        )
    if recorded.body is None or new.body is None:
        return differences
    if recorded.truncated:
        return differences + (diff_prefix(recorded, new.body) if mode == "body" else [])
    recorded_json, new_json = _json_of(recorded), _json_of(new)
    if recorded_json is not _NOT_JSON and new_json is not _NOT_JSON:
        differences += diff_json(recorded_json, new_json, ignore, values=mode == "body")
    elif mode == "body":
        differences += diff_text(recorded.body, new.body)
    return differences


_NOT_JSON = object()


def _json_of(answer: Answer) -> Any:
    """The parsed body when it is JSON (a JSON media type, or none and a body that parses)."""
    kind = answer.media_type
    if kind is not None and not (kind.endswith("/json") or kind.endswith("+json")):
        return _NOT_JSON
    if answer.body is None or not answer.body.strip():
        return _NOT_JSON
    try:
        return json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def diff_json(
    recorded: Any, new: Any, ignore: Collection[str] = DEFAULT_IGNORED, *, values: bool = True
) -> list[Difference]:
    """The JSON paths where `new` differs from `recorded`: missing, added, changed type and (with
    `values`) changed value. Keys named in `ignore` are skipped at any depth, and so are paths
    in it (`$.a.b`); without `values`, array lengths are not compared either."""
    differences: list[Difference] = []
    _walk(recorded, new, "$", frozenset(ignore), values, differences)
    return differences


def _walk(
    recorded: Any, new: Any, path: str, ignore: frozenset[str], values: bool,
    out: list[Difference],
) -> None:
    if path in ignore:
        return
    kinds = json_type(recorded), json_type(new)
    if kinds[0] != kinds[1]:
        out.append(Difference(path, "changed type", kinds[0], kinds[1]))
    elif isinstance(recorded, dict):
        for key in recorded:
            child = _child(path, key)
            if key in ignore or child in ignore:
                continue
            if key not in new:
                out.append(Difference(child, "missing", recorded=_excerpt(recorded[key])))
            else:
                _walk(recorded[key], new[key], child, ignore, values, out)
        for key in new:
            child = _child(path, key)
            if key not in recorded and key not in ignore and child not in ignore:
                out.append(Difference(child, "added", new=_excerpt(new[key])))
    elif isinstance(recorded, list):
        for position, (old_item, new_item) in enumerate(zip(recorded, new, strict=False)):
            _walk(old_item, new_item, f"{path}[{position}]", ignore, values, out)
        if values:
            for position, item in enumerate(recorded[len(new):], len(new)):
                out.append(Difference(f"{path}[{position}]", "missing", recorded=_excerpt(item)))
            for position, item in enumerate(new[len(recorded):], len(recorded)):
                out.append(Difference(f"{path}[{position}]", "added", new=_excerpt(item)))
    elif values and recorded != new:
        out.append(Difference(path, "changed value", _excerpt(recorded), _excerpt(new)))


def _child(path: str, key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _excerpt(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= TEXT_EXCERPT else text[: TEXT_EXCERPT - 1] + "…"


def diff_text(recorded: bytes, new: bytes) -> list[Difference]:
    """Line differences of two text bodies (bytes that are not UTF-8 are compared whole)."""
    if recorded == new:
        return []
    try:
        old_lines = recorded.decode("utf-8").splitlines()
        new_lines = new.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return [Difference("body", "changed", f"{len(recorded)} bytes", f"{len(new)} bytes")]
    differences = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        for offset in range(max(old_end - old_start, new_end - new_start)):
            old = old_lines[old_start + offset] if old_start + offset < old_end else None
            line = new_lines[new_start + offset] if new_start + offset < new_end else None
            where = f"line {(old_start if old is not None else new_start) + offset + 1}"
            if old is None:
                differences.append(Difference(where, "added", new=_excerpt(line)))
            elif line is None:
                differences.append(Difference(where, "missing", recorded=_excerpt(old)))
            else:
                differences.append(Difference(where, "changed", _excerpt(old), _excerpt(line)))
    if not differences:  # only line endings or a final newline differ
        differences.append(Difference("body", "changed", "line endings", "other line endings"))
    return differences


def diff_prefix(recorded: Answer, new: bytes) -> list[Difference]:
    """A body the recording kept only the first bytes of (the fuzzer keeps 16 KiB): its length
    and those bytes are compared, as a cut JSON document does not parse."""
    kept = recorded.body or b""
    differences = []
    if recorded.size != len(new):
        differences.append(Difference("body size", "changed", f"{recorded.size} bytes",
                                      f"{len(new)} bytes"))
    if new[: len(kept)] != kept:
        offset = next(
            (n for n, (a, b) in enumerate(zip(kept, new, strict=False)) if a != b),
            min(len(kept), len(new)),
        )
        differences.append(Difference(
            f"body byte {offset}", "changed",
            _excerpt(kept[offset: offset + 40].decode("utf-8", "replace")),
            _excerpt(new[offset: offset + 40].decode("utf-8", "replace")),
        ))
    return differences


# -- replaying -------------------------------------------------------------------------------


def replay(
    exchanges: Iterable[Exchange],
    base_url: str,
    *,
    recorded_base_url: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    timeout: float = DEFAULT_TIMEOUT,
    mode: CompareMode = "body",
    ignore: Collection[str] = DEFAULT_IGNORED,
    session: requests.Session | None = None,
) -> Iterator[Outcome]:
    """Send each exchange's request again to `base_url`, one at a time, and yield how its
    answer compares with the recorded one."""
    own = session is None
    if session is None:
        session = requests.Session()
        # The recorded request, as recorded: no default headers, no .netrc, no proxy variables.
        session.headers.clear()
        session.trust_env = False
    try:
        for exchange in exchanges:
            url = rebase(exchange.url, base_url, recorded_base_url)
            sent = request_headers(exchange.entry, headers)
            recorded = recorded_answer(exchange.entry)
            answer, elapsed_ms = send(
                session, exchange.method, url, sent, request_body(exchange.entry), timeout
            )
            differences = tuple(compare(recorded, answer, mode, ignore))
            yield Outcome(exchange, url, tuple(sent), recorded, answer, elapsed_ms, differences)
    finally:
        if own:
            session.close()


def report(outcomes: Sequence[Outcome], **settings: Any) -> dict[str, Any]:
    """The JSON report of a replay: `settings` (base URL, mode, …), totals and every exchange."""
    differing = sum(not outcome.same for outcome in outcomes)
    return {
        **settings,
        "replayed": len(outcomes),
        "same": len(outcomes) - differing,
        "differs": differing,
        "exchanges": [outcome.to_json() for outcome in outcomes],
    }

