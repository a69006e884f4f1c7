"""Client rules of the PEP's Frontend gateway (a front end or a back end for front end), judged
from a traffic file (issue 14 item 3). One pass; the state is the set of tokens a 401 killed."""

from __future__ import annotations

from collections.abc import Iterable

from pepharness.suites.clients import Breach, Entry, Verdict
from pepharness.suites.clients.pep_platform import foreign_credentials, is_platform
from pepharness.suites.rules import Level, RuleCatalog

API = "pep-frontend-client"
CATALOG = RuleCatalog(API)

SENDS_PEP_JWT = CATALOG.add(
    "check_client_frontend_sends_the_pep_jwt",
    Level.MUST,
    "issue 14 item 3; seeds: Frontend calls carry the PEP's JWT in `x-authorization`",
    "Every Frontend call but the player login carries `x-authorization`, and never the "
    "operator's identity token or a client secret in any header.",
)
RELOGIN_AFTER_401 = CATALOG.add(
    "check_client_frontend_logs_in_again_after_401",
    Level.MUST,
    "issue 14 item 3; seeds: a 401 `expired_token`/`invalid_token` ends the session",
    "After a 401 the player logs in again: the refused JWT is never sent again.",
)
SOCKET_TOKEN = CATALOG.add(
    "check_client_frontend_socketio_connects_with_the_token",
    Level.MUST,
    "issue 14 item 3; seeds: Socket.IO `auth: {token}`",
    "Socket.IO connects with the PEP's JWT (`auth: {token}` or `x-authorization`): never "
    "without a token, never with the operator's identity token or a client secret (the "
    "connect attempts the traffic file records, D116).",
)
SOCKETIO_PATH = "/socket.io/"

LOGIN_PATH = "/api/auth/v1/player"


def is_frontend(path: str) -> bool:
    return path.startswith("/api/") and not is_platform(path)


def connected(verdict: Verdict, entry: Entry, foreign: set[str]) -> None:
    """A Socket.IO connect attempt (D116): with a token, and not a foreign one. A refused
    connect with some other token is not this rule's breach (a dead JWT: D116)."""
    seq, credential = int(entry["seq"]), entry.get("credential")
    verdict.checked += 1
    if credential is None:
        verdict.breaches.append(Breach(
            "a Socket.IO connect without a token", (seq,),
            "the client connected to Socket.IO with no token (neither `auth: {token}` nor "
            "`x-authorization`); it connects with the JWT the PEP's login returned",
        ))
    elif credential in foreign:
        verdict.breaches.append(Breach(
            "the identity token or a secret on Socket.IO", (seq,),
            f"the client connected to Socket.IO with the operator's identity token or a client "
            f"secret (in {entry.get('auth')}); it connects with the PEP's JWT",
        ))


def judge(
    entries: Iterable[Entry],
    *,
    identity_tokens: Iterable[str] = (),
    client_secrets: Iterable[str] = (),
) -> list[Verdict]:
    """One verdict per rule of CATALOG over `entries` (a traffic file's, in order);
    `identity_tokens` and `client_secrets` are the credentials the run handed out that a
    Frontend call must never carry."""
    foreign = foreign_credentials(identity_tokens, client_secrets)
    verdicts = {rule.name: Verdict(rule) for rule in CATALOG}
    jwt, relogin = verdicts[SENDS_PEP_JWT.name], verdicts[RELOGIN_AFTER_401.name]
    dead: dict[str, int] = {}
    socket = verdicts[SOCKET_TOKEN.name]
    for entry in entries:
        path = entry.get("path") or ""
        if entry.get("mock", "pep") != "pep":
            continue
        if path == SOCKETIO_PATH and isinstance(entry.get("socketio"), dict):
            connected(socket, entry, foreign)
            continue
        if not is_frontend(path):
            continue
        seq, status = int(entry["seq"]), int(entry["status"])
        credential, auth = entry.get("credential"), entry.get("auth")
        if path == LOGIN_PATH and entry["method"] == "POST":
            continue
        jwt.checked += 1
        if credential in foreign:
            jwt.breaches.append(Breach(
                "the identity token or a secret sent", (seq,),
                f"{entry['method']} {path} carried the operator's identity token or a client "
                f"secret (in {auth}); a front end sends only the JWT the PEP's login returned, "
                "in `x-authorization`",
            ))
        elif auth != "x-authorization":
            jwt.breaches.append(Breach(
                "no x-authorization", (seq,),
                f"{entry['method']} {path} carried {auth or 'no credential'}; the Frontend takes "
                "the PEP's JWT in `x-authorization`",
            ))
        if credential is None:
            continue
        killed = dead.get(credential)
        if killed is not None:
            relogin.checked += 1
            relogin.breaches.append(Breach(
                "a refused JWT sent again", (killed, seq),
                f"the JWT refused with 401 at #{killed} was sent again at #{seq} ({path}); "
                "after a 401 the player logs in again",
            ))
        elif status == 401:
            relogin.checked += 1
            dead[credential] = seq
    return list(verdicts.values())
