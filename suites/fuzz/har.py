"""Exchanges as HAR 1.2 entries (what browsers' and proxies' tools read), with the fuzzer's own
fields under `_pepharness`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

MAX_BODY = 16_384
"""Bytes of an answer's body kept in the HAR; the size says how long it was."""


def _text(data: bytes | str | None, limit: int | None = None) -> tuple[str, str | None]:
    """(text, encoding): UTF-8 as is, anything else base64 (HAR's `encoding`)."""
    if data is None:
        return "", None
    raw = data.encode() if isinstance(data, str) else data
    if limit is not None:
        raw = raw[:limit]
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def _pairs(headers: Mapping[str, Any]) -> list[dict[str, str]]:
    pairs = []
    for name, value in headers.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append({"name": str(name), "value": str(one)})
    return pairs


def request_json(request: requests.PreparedRequest) -> dict[str, Any]:
    url = request.url or ""
    body = request.body
    text, encoding = _text(body)
    entry: dict[str, Any] = {
        "method": request.method or "GET",
        "url": url,
        "httpVersion": "HTTP/1.1",
        "headers": _pairs(dict(request.headers)),
        "queryString": [{"name": k, "value": v}
                        for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)],
        "cookies": [],
        "headersSize": -1,
        "bodySize": len(body) if body else 0,
    }
    if body:
        post: dict[str, Any] = {
            "mimeType": request.headers.get("Content-Type", "application/octet-stream"),
            "text": text,
        }
        if encoding:
            post["_encoding"] = encoding
        entry["postData"] = post
    return entry


def response_json(
    status: int, headers: Mapping[str, Any], content: bytes, http_version: str = "1.1"
) -> dict[str, Any]:
    text, encoding = _text(content, MAX_BODY)
    lowered = {str(k).lower(): v for k, v in headers.items()}
    media = lowered.get("content-type", "")
    media = media[0] if isinstance(media, list) and media else media
    body: dict[str, Any] = {"size": len(content), "mimeType": str(media or ""), "text": text}
    if encoding:
        body["encoding"] = encoding
    if len(content) > MAX_BODY:
        body["comment"] = f"the first {MAX_BODY:,} of {len(content):,} bytes"
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return {
        "status": status,
        "statusText": reason,
        "httpVersion": f"HTTP/{http_version}",
        "headers": _pairs(headers),
        "cookies": [],
        "content": body,
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": len(content),
    }


def no_response(error: str) -> dict[str, Any]:
    return {
        "status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
        "content": {"size": 0, "mimeType": "", "text": ""}, "redirectURL": "",
        "headersSize": -1, "bodySize": -1, "_error": error,
    }


def connection_reason(error: Exception) -> str:
    """Why a connection gave no answer, in a word or two (the `_error` of a HAR entry)."""
    text = str(error)
    for marker in ("Connection refused", "Connection reset", "RemoteDisconnected",
                   "Connection aborted"):
        if marker in text:
            return marker
    return type(error).__name__


def entry(
    started: datetime,
    elapsed_ms: float,
    request: dict[str, Any],
    response: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any]:
    return {
        "startedDateTime": started.isoformat(),
        "time": round(elapsed_ms, 3),
        "request": request,
        "response": response,
        "cache": {},
        "timings": {"send": 0, "wait": round(elapsed_ms, 3), "receive": 0},
        "_pepharness": meta,
    }


def document(entries: Iterable[dict[str, Any]], version: str) -> dict[str, Any]:
    ordered = sorted(entries, key=lambda e: (e["_pepharness"]["index"], e["_pepharness"]["step"]))
    return {"log": {
        "version": "1.2",
        "creator": {"name": "pepharness", "version": version},
        "pages": [],
        "entries": ordered,
    }}


def write(path: Path, entries: Iterable[dict[str, Any]], version: str) -> None:
    path.write_text(json.dumps(document(entries, version), ensure_ascii=False), encoding="utf-8")


def now() -> datetime:
    return datetime.now(UTC)
