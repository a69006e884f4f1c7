"""How a replayed answer is compared with the recorded one: status, media type, and the body
(JSON structurally, by path; text line by line)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pepharness.suites.fuzz.recording import decode_base64

CompareMode = Literal["status", "shape", "body"]
COMPARE_MODES: tuple[CompareMode, ...] = ("status", "shape", "body")
DEFAULT_IGNORED = frozenset(
    {
        "token", "accessToken", "access_token", "refreshToken", "refresh_token",
        "expiresAt", "expires_at", "expiresIn", "expires_in",
        "date", "Date", "timestamp", "requestId", "request_id", "jti", "iat", "exp",
    }
)
"""Keys whose values change on every answer (fresh tokens, clocks, request ids)."""
TEXT_EXCERPT = 80


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
    retry_after: float | None = None
    """A 429's Retry-After in seconds (replay waits it out)."""

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
            body = decode_base64(content["text"], "response body")
        else:
            body = content["text"].encode("utf-8")
    size = content.get("size") if isinstance(content, dict) else None
    size = size if isinstance(size, int) and not isinstance(size, bool) else None
    return Answer(response["status"], media_type(content_type), body, size=size)


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
