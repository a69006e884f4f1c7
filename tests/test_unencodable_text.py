"""Text that cannot be encoded is a 400 in each API's own error shape, never a 500 (issue 13
item 3, D81-D83): lone surrogates (JSON escapes too) and non-UTF-8 bytes in JSON bodies (keys
and values, any depth), and NUL too in form bodies, query names and values and header values,
on every mock (Sinatra, operator, PEP Frontend and Platform, each one's `/__admin`), over HTTP.
Credential headers are each API's auth code's own business: bad bytes there are a 4xx too."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import brotli
import pytest
from flask import Flask

from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.text import WHAT
from pepharness.mocks.operator import create_app as create_operator
from pepharness.mocks.pep import create_app as create_pep
from pepharness.mocks.sinatra import create_app as create_sinatra

JSON = {"Content-Type": b"application/json"}
FORM = {"Content-Type": b"application/x-www-form-urlencoded"}


def _sinatra() -> Flask:
    return create_sinatra({"SEED": 7, "ROUNDS": 20, "ANCHOR": datetime.now(UTC)})


def _operator() -> Flask:
    return create_operator({"SEED": 7})


def _pep() -> Flask:
    # No operator is reached: every request here is refused before the PEP would call it.
    return create_pep({"SEED": 7, "ENGINE": False, "OPERATOR_URL": "http://127.0.0.1:9"})


APPS: dict[str, Callable[[], Flask]] = {
    "sinatra": _sinatra,
    "operator": _operator,
    "pep": _pep,
}


@pytest.fixture(scope="module", params=sorted(APPS))
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    name = request.param
    with ThreadedServer(APPS[name](), threads=2) as server:
        yield name, server.url


def _send(
    base: str,
    method: str,
    target: bytes,
    body: bytes = b"",
    headers: dict[str, bytes] | None = None,
    *,
    parse: bool = True,
) -> tuple[int, dict[str, Any]]:
    """A raw HTTP/1.1 request: bytes in the target, header values and body go out as they are."""
    host, port = base.removeprefix("http://").split(":")
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + host.encode()]
    lines += [name.encode() + b": " + value for name, value in (headers or {}).items()]
    lines += [b"Content-Length: %d" % len(body), b"Connection: close"]
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, raw = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(raw) if raw and parse else {}


# (app, method, path, content-type headers, a body template with {} for the bad text)
BODY_ROUTES: dict[str, list[tuple[str, str, dict[str, bytes], str]]] = {
    "sinatra": [("POST", "/1.0/login", JSON, '{"email": %s, "password": "x"}')],
    "operator": [("POST", "/api/auth/v1/player", JSON, '{"identityToken": %s}')],
    "pep": [
        ("POST", "/api/auth/v1/player", JSON, '{"identityToken": "t", "clientId": %s}'),
        ("POST", "/api/auth/v1/player", JSON, '{"identityToken": %s, "clientId": "c"}'),
        ("POST", "/api/auth/v1/player", JSON, '{"identityToken": "t", "clientId": "c", %s: 1}'),
        ("POST", "/api/auth/v1/player", JSON, '{"clientId": "c", "a": [{"b": {"c": %s}}]}'),
    ],
}
ADMIN_BODY = ("POST", "/__admin/faults", JSON, '{"path": %s, "status": 503}')
JSON_TEXTS = {
    "lone surrogate": '"\\ud800"',
    "low surrogate": '"a\\udfffb"',
    "reversed pair": '"\\udc00\\ud800"',
}


def _is_own_400(name: str, path: str, status: int, document: dict[str, Any]) -> None:
    assert status == 400, (status, document)
    if path.startswith("/__admin"):
        assert WHAT in document["error"], document
    elif name == "sinatra":
        assert document == {"errMsg": "Bad Request"}, document  # the seed's text (D2, D81)
    elif path == "/api/oauth/v1/token":  # RFC 6749 §5.2's shape
        assert document["error"] == "invalid_request", document
        assert WHAT in document["error_description"], document
    else:
        assert document["error"] in ("invalid_request", "invalid_parameter"), document
        assert WHAT in document["message"], document


@pytest.mark.parametrize("text", sorted(JSON_TEXTS))
def test_json_bodies(served: tuple[str, str], text: str) -> None:
    name, base = served
    for method, path, headers, template in [*BODY_ROUTES[name], ADMIN_BODY]:
        body = (template % JSON_TEXTS[text]).encode()
        status, document = _send(base, method, path.encode(), body, headers)
        _is_own_400(name, path, status, document)


def test_a_nul_or_a_surrogate_pair_in_json_is_text(served: tuple[str, str]) -> None:
    # A \\u0000 escape is a valid JSON string the contracts admit, a pair is one character: the
    # guard lets both through to the view, which answers them as any other value (D83).
    name, base = served
    for text in ('"a\\u0000b"', '"\\ud83d\\ude00"'):
        for method, path, headers, template in [*BODY_ROUTES[name], ADMIN_BODY]:
            body = (template % text).encode()
            status, document = _send(base, method, path.encode(), body, headers)
            assert status < 500, (path, status, document)
            assert WHAT not in json.dumps(document), (path, document)


def test_non_utf8_json_body(served: tuple[str, str]) -> None:
    name, base = served
    method, path, headers, template = BODY_ROUTES[name][0]
    for raw in (b'"\xff"', b'"\xed\xa0\x80"'):
        body = (template % '"x"').encode().replace(b'"x"', raw)
        status, document = _send(base, method, path.encode(), body, headers)
        _is_own_400(name, path, status, document)


@pytest.mark.parametrize("query", [b"a=%00", b"a=%ED%A0%80", b"a=%FF", b"%FF=1", b"a=+%00+"])
def test_query(served: tuple[str, str], query: bytes) -> None:
    name, base = served
    for path in ("/nowhere-but-checked-first", "/__admin/requests"):
        status, document = _send(base, "GET", path.encode() + b"?" + query)
        _is_own_400(name, path, status, document)


def test_raw_bytes_in_the_target_are_the_servers_400(served: tuple[str, str]) -> None:
    # Waitress refuses a request line that is not ASCII before any app sees it (D83).
    _, base = served
    status, _ = _send(base, "GET", b"/__admin/requests?a=\xff", parse=False)
    assert status == 400


@pytest.mark.parametrize("value", [b"\xff\xfe", b"\xed\xa0\x80"])
def test_header_values(served: tuple[str, str], value: bytes) -> None:
    name, base = served
    for path in ("/nowhere-but-checked-first", "/__admin/requests"):
        status, document = _send(base, "GET", path.encode(), headers={"X-Note": value})
        _is_own_400(name, path, status, document)


@pytest.mark.parametrize("header", ["Authorization", "x-authorization", "jwt-auth"])
def test_credential_headers_are_the_auth_codes(served: tuple[str, str], header: str) -> None:
    name, base = served
    paths = {
        "sinatra": ("GET", "/transactions/1.0/games/history/api"),
        "operator": ("POST", "/api/auth/v1/player"),
        "pep": ("GET", "/api/players/v1/me"),
    }
    method, path = paths[name]
    for value in (b"Bearer \xff\xfe", b"Basic \xed\xa0\x80", b"Basic /w=="):
        status, _ = _send(base, method, path.encode(), headers={header: value})
        assert 400 <= status < 500, (header, value, status)


def test_form_bodies_on_the_token_endpoint(served: tuple[str, str]) -> None:
    name, base = served
    if name != "pep":
        pytest.skip("only the PEP Platform takes form bodies")
    for body in (b"grant_type=client_credentials&scope=%00", b"grant_type=%ED%A0%80", b"a%FF=1"):
        status, document = _send(base, "POST", b"/api/oauth/v1/token", body, FORM)
        _is_own_400(name, "/api/oauth/v1/token", status, document)


@pytest.mark.parametrize("coding", ["identity", "gzip", "deflate", "br"])
def test_compressed_platform_bodies(served: tuple[str, str], coding: str) -> None:
    name, base = served
    if name != "pep":
        pytest.skip("only the PEP Platform takes compressed bodies")
    basic = b"Basic " + base64.b64encode(b"pep-demo-client:pep-demo-secret")
    form = b"grant_type=client_credentials"
    status, answer = _send(
        base, "POST", b"/api/oauth/v1/token", form, {**FORM, "Authorization": basic}
    )
    assert status == 200, answer
    bearer = f"Bearer {answer['access_token']}".encode()
    player = b'{"playerId": "p\\ud800", "registrationDate": "2026-01-01T00:00:00Z"}'
    body = b'{"players": [%s]}' % player
    encoded = {
        "identity": body,
        "gzip": gzip.compress(body),
        "deflate": zlib.compress(body),
        "br": brotli.compress(body),
    }[coding]
    headers = {**JSON, "Authorization": bearer, "Content-Encoding": coding.encode()}
    path = "/api/players-data/v1/migrate/batch"
    status, document = _send(base, "POST", path.encode(), encoded, headers)
    _is_own_400(name, path, status, document)
