"""The PEP's call to the operator's identity endpoint: bounded in time, never retried, and
every answer the contract does not allow turned into a gateway error (D45)."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

import requests
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from pepharness.mocks.core.clock import parse_rfc3339
from pepharness.mocks.pep.errors import (
    IdentityTokenInvalid,
    IdentityTokenMalformed,
    OperatorBadResponse,
    OperatorError,
    OperatorTimeout,
    OperatorUnreachable,
    PlayerNotFound,
)

IDENTITY_PATH = "/api/auth/v1/player"
DEFAULT_OPERATOR_URL = "http://127.0.0.1:8102"
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 5.0
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "pepharness-pep/1"


@dataclass(frozen=True)
class OperatorIdentity:
    """What the operator's 200 said: the player, and until when the identity token holds."""

    player_id: str
    expires_at: datetime | None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def parse_identity(body: bytes) -> OperatorIdentity:
    """The operator's 200 body as the contract has it (`{playerId, expiresAt?}`), or 502."""
    try:
        document: Any = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise OperatorBadResponse("the operator's 200 answer is not JSON") from None
    if not isinstance(document, dict):
        raise OperatorBadResponse("the operator's 200 answer is not a JSON object")
    player_id = document.get("playerId")
    if not isinstance(player_id, str) or not player_id:
        raise OperatorBadResponse("the operator's 200 answer has no playerId string")
    if "expiresAt" not in document:
        return OperatorIdentity(player_id, None)
    expires = document["expiresAt"]
    if not isinstance(expires, str):
        raise OperatorBadResponse("the operator's expiresAt is not an RFC 3339 string")
    try:
        return OperatorIdentity(player_id, parse_rfc3339(expires))
    except ValueError:
        raise OperatorBadResponse(
            "the operator's expiresAt is not an RFC 3339 date-time with an offset"
        ) from None


class OperatorClient:
    """Calls `POST {base_url}/api/auth/v1/player {identityToken}` — nothing else is sent: no
    clientId, no client secret, no cookie, no proxy from the environment.

    The exchange is bounded: connecting by `connect_timeout`, each read by `read_timeout`,
    and the whole answer by their sum; an answer over MAX_ANSWER_BYTES is refused.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_OPERATOR_URL,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        for name, value in (("connect", connect_timeout), ("read", read_timeout)):
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"the operator {name} timeout must be a positive number")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the operator URL must be http(s)://…, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + IDENTITY_PATH
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            self._local.session = session
        return session

    def validate(self, identity_token: str) -> OperatorIdentity:
        """The operator's identity for the token, or the PEP error its answer maps to."""
        deadline = time.monotonic() + self.connect_timeout + self.read_timeout
        try:
            response = self._session().post(
                self.url,
                json={"identityToken": identity_token},
                # A connection per call: a kept-alive one the operator has since closed would
                # fail the call, and calls are never retried.
                headers={
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                    "Connection": "close",
                },
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise OperatorTimeout() from None
        except requests.ConnectionError:
            raise OperatorUnreachable() from None
        except requests.RequestException:
            raise OperatorBadResponse() from None
        with response:
            status = response.status_code
            if status == 200:
                return parse_identity(self._read(response, deadline))
        if status == 400:
            raise IdentityTokenMalformed()
        if status == 401:
            raise IdentityTokenInvalid()
        if status == 404:
            raise PlayerNotFound()
        raise OperatorError(f"the operator's identity endpoint answered HTTP {status}")

    def _read(self, response: requests.Response, deadline: float) -> bytes:
        body = bytearray()
        try:
            for chunk in response.iter_content(chunk_size=4096):
                body.extend(chunk)
                if len(body) > MAX_ANSWER_BYTES:
                    raise OperatorBadResponse("the operator's answer is too large")
                if time.monotonic() > deadline:
                    raise OperatorTimeout("the operator's answer took too long to arrive")
        except requests.RequestException as error:
            # A read timeout in the body comes wrapped in a ConnectionError.
            cause = error.args[0] if error.args else None
            if isinstance(error, requests.Timeout) or isinstance(cause, Urllib3Timeout):
                raise OperatorTimeout() from None
            raise OperatorBadResponse("the operator's answer broke off") from None
        return bytes(body)
