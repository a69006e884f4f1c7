"""Recorded fuzz traffic (a HAR file or a findings.json) as read from the file, and the requests
rebuilt from it for a replay."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

NOT_REPLAYED_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade", "content-length", "host",
    }
)
"""Hop-by-hop headers and those describing the recorded connection: requests sets its own."""
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


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
    latency_budget_ms: float | None = None
    """A findings.json's latency budget: what a `slow` finding is judged by again."""


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
        budget = document.get("latency_budget_ms")
        usable = isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0
        return Recording("findings", exchanges, _base_url_of(document),
                         float(budget) if usable and budget is not None else None)
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
        return decode_base64(post["text"], "request body")
    return str(post["text"]).encode("utf-8")


def decode_base64(text: str, what: str) -> bytes:
    """`text` decoded; a ReplayError naming `what` when it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ReplayError(f"a recorded {what} is marked base64 but is not") from None
