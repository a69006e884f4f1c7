"""Tokens out of the fuzzer's curl lines: each credential the harness sent shows as a shell
variable, as the Basic password already does (`$PEPHARNESS_PASSWORD`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pepharness.suites.http import Secrets

TOKEN_HEADERS = {"jwt-auth": "$JWT_AUTH", "x-authorization": "$PEP_PLAYER_TOKEN"}
"""Token headers and their variables (the names the conformance checks' curl lines use)."""
BEARER = "$PEP_PLATFORM_TOKEN"
TOKEN_FIELDS = {
    "identityToken": "$PEP_IDENTITY_TOKEN",
    "token": "$PEPHARNESS_TOKEN",
    "accessToken": "$PEPHARNESS_ACCESS_TOKEN",
    "access_token": "$PEPHARNESS_ACCESS_TOKEN",
    "refreshToken": "$PEPHARNESS_REFRESH_TOKEN",
    "refresh_token": "$PEPHARNESS_REFRESH_TOKEN",
    "client_secret": "$PEPHARNESS_CLIENT_SECRET",
    "password": "$PEPHARNESS_PASSWORD",
}
"""Body and form fields that carry a credential, and their variables."""
MIN_SECRET = 8
"""Shorter values are not masked: replacing them would garble the rest of the line."""
_FORM_PAIR = re.compile(r"(?:^|&)([^=&]+)=([^&]*)")


class RequestSecrets(Secrets):
    """One request's secrets: the API's own (Basic credentials included) and its tokens."""

    def __init__(self, base: Secrets) -> None:
        super().__init__()
        self._base = base
        for value, variable in base.items():
            self.hide(value, variable)

    def basic(self, header_value: str) -> str | None:
        return self._base.basic(header_value)

    def hide(self, value: str, variable: str) -> None:
        if len(value) >= MIN_SECRET:
            super().hide(value, variable)


def secrets_for(
    base: Secrets,
    headers: Mapping[str, Any],
    body: bytes | str | None = None,
    *,
    fields: bool = False,
    spared: str = "",
) -> Secrets:
    """`base` and the tokens of `headers` (and, with `fields`, of the body's credential
    fields); `spared` names a boundary probe's place (`credentials jwt-auth`, `body
    identityToken`), whose value is the probe's point and stays as sent."""
    secrets = RequestSecrets(base)
    spared = spared.lower()
    for name, value in headers.items():
        lowered = str(name).lower()
        if spared in (f"credentials {lowered}", f"header {lowered}"):
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if lowered in TOKEN_HEADERS:
            secrets.hide(text.strip(), TOKEN_HEADERS[lowered])
        elif lowered == "authorization" and text[:7].lower() == "bearer ":
            secrets.hide(text[7:].strip(), BEARER)
    place = spared.split(" ")
    probed = place[1].rsplit(".", 1)[-1] if len(place) > 1 and place[0] in ("body", "form") else ""
    if fields and body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        for field, shown in _fields(text):
            if field.lower() != probed:
                secrets.hide(shown, TOKEN_FIELDS[field])
    return secrets


def _fields(text: str) -> Iterator[tuple[str, str]]:
    """(field, its value as written in the body) of each credential field of a JSON object
    (at any depth) or a form."""
    try:
        document = json.loads(text)
    except ValueError:
        for name, value in _FORM_PAIR.findall(text):
            if name in TOKEN_FIELDS:
                yield name, value
        return
    yield from _json_fields(document)


def _json_fields(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in TOKEN_FIELDS and isinstance(value, str):
                # As the body spells it: json.dumps escapes what it must, as requests does.
                yield key, json.dumps(value)[1:-1]
                yield key, json.dumps(value, ensure_ascii=False)[1:-1]
            else:
                yield from _json_fields(value)
    elif isinstance(node, list):
        for item in node:
            yield from _json_fields(item)
