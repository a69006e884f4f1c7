"""The operator's identity endpoint seen by the checks: one target, the tokens it was given."""

from __future__ import annotations

import re
import secrets
import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from pepharness.suites.http import Target
from pepharness.suites.options import SuiteOptions

CONTRACT = "operator-identity"
IDENTITY = "/api/auth/v1/player"
OPERATION = f"POST {IDENTITY}"
RFC3339 = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"


def never_limited(request: requests.PreparedRequest) -> bool:
    return False


def body_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def unknown_token() -> str:
    """A token of the usual shape (32 hex digits) that no operator has issued."""
    return secrets.token_hex(16)


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 date-time with an offset (§5.6), as an aware datetime; ValueError else."""
    if not re.fullmatch(RFC3339, value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with an offset")
    parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    return parsed


def answered_at(response: requests.Response) -> datetime:
    """When the target answered: its Date header (RFC 9110 §6.6.1), else this machine's now."""
    header = response.headers.get("Date")
    if header:
        try:
            when = parsedate_to_datetime(header)
            if when.tzinfo is not None:
                return when
        except (TypeError, ValueError, IndexError):
            pass
    return datetime.now(UTC)


class Operator:
    """The operator under test: one per test process, shared by its checks."""

    def __init__(self, options: SuiteOptions) -> None:
        if options.base_url is None:
            raise ValueError("no base URL")
        self.options = options
        self.target = Target(options.base_url, window=None, is_limited=never_limited)
        for number, token in enumerate(options.valid_tokens, start=1):
            self.target.secrets.hide(token, f"$PEPHARNESS_VALID_TOKEN_{number}")
        for number, token in enumerate(options.expired_tokens, start=1):
            self.target.secrets.hide(token, f"$PEPHARNESS_EXPIRED_TOKEN_{number}")
        self._lock = threading.Lock()

    def validate(self, token: Any, **kwargs: Any) -> requests.Response:
        """POST the identity endpoint `{"identityToken": token}`."""
        return self.target.request("POST", IDENTITY, json={"identityToken": token}, **kwargs)

    def post(self, data: bytes | str, content_type: str = "application/json") -> requests.Response:
        """POST the identity endpoint a raw body."""
        raw = data.encode() if isinstance(data, str) else data
        return self.target.request(
            "POST", IDENTITY, data=raw, headers={"Content-Type": content_type}
        )

    def curl(self, response: requests.Response) -> str:
        return self.target.curl(response)

