"""Issue 14: the transport faults a client must survive (D101), over real HTTP on all three mocks.

A fault rule's `fault` resets the connection, closes it with no byte sent, cuts the body short
of its Content-Length, or sends half a JSON document with a correct Content-Length. A `requests`
client sees each as the failure it is; `times` counts down; the next request is answered as
usual, on the same keep-alive session and on a new connection; the journal records each
faulted exchange; nothing is logged as a warning or an error; a rule mixing `fault` with
`status` or `body`, or naming no known fault, is a 400 in the admin error shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from flask import Flask

from pepharness import contracts
from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.operator import create_app as create_operator
from pepharness.mocks.pep import create_app as create_pep
from pepharness.mocks.sinatra import create_app as create_sinatra

PATH = "/nowhere/transport-faults"
"""No operation of any mock: each answers it with a JSON 404 in its own error shape."""


def _sinatra() -> Flask:
    return create_sinatra({"SEED": 7, "ROUNDS": 20, "ANCHOR": datetime.now(UTC)})


def _operator() -> Flask:
    return create_operator({"SEED": 7})


def _pep() -> Flask:
    # No operator is reached: no request here gets that far.
    return create_pep({"SEED": 7, "ENGINE": False, "OPERATOR_URL": "http://127.0.0.1:9"})


APPS: dict[str, Callable[[], Flask]] = {"sinatra": _sinatra, "operator": _operator, "pep": _pep}


@pytest.fixture(scope="module", params=sorted(APPS))
def served(request: pytest.FixtureRequest) -> Iterator[str]:
    with ThreadedServer(APPS[request.param](), threads=2) as server:
        yield server.url


def _admin(base: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    """An admin request whose answer holds to admin.yaml."""
    response = requests.request(method, f"{base}/__admin{path}", timeout=10, **kwargs)
    problems = contracts.response_problems(
        "admin", method, f"/__admin{path}", response.status_code, response.headers,
        response.content,
    )
    assert not problems, "\n".join(problems)
    return response


def _fails_as(kind: str, session: requests.Session, base: str) -> None:
    """One GET of PATH fails the way `kind` makes it fail."""
    if kind in ("connection_reset", "empty_reply"):
        with pytest.raises(requests.ConnectionError) as caught:
            session.get(base + PATH, timeout=10)
        reason = repr(caught.value)
        expected = "ConnectionResetError" if kind == "connection_reset" else "RemoteDisconnected"
        assert expected in reason, reason
    elif kind == "truncated_body":
        with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
            session.get(base + PATH, timeout=10)
    else:
        response = session.get(base + PATH, timeout=10)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/json")
        assert int(response.headers["Content-Length"]) == len(response.content) > 0
        with pytest.raises(json.JSONDecodeError):
            response.json()


@pytest.mark.parametrize(
    "kind", ["connection_reset", "empty_reply", "truncated_body", "malformed_body"]
)
def test_a_client_sees_the_fault_then_the_server_answers_again(
    served: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    _admin(served, "POST", "/reset")
    normal = requests.get(served + PATH, timeout=10)
    assert normal.status_code == 404 and normal.json()
    rule = {"path": "/nowhere/*", "method": "GET", "fault": kind, "times": 2}
    added = _admin(served, "POST", "/faults", json=rule)
    assert added.status_code == 201 and added.json()["faults"][0]["fault"] == kind
    _admin(served, "DELETE", "/requests")

    caplog.set_level(logging.INFO)
    with requests.Session() as session:
        session.trust_env = False
        # Another method is not this rule's: answered, and no use of `times` spent.
        assert session.head(served + PATH, timeout=10).status_code == 404
        _fails_as(kind, session, served)
        assert _admin(served, "GET", "/faults").json()["faults"][0]["times"] == 1
        _fails_as(kind, session, served)
        assert _admin(served, "GET", "/faults").json() == {"faults": []}
        # The same session (a new connection when the fault closed its own), then another.
        again = session.get(served + PATH, timeout=10)
        assert again.status_code == 404 and again.json() == normal.json()
        assert session.get(served + PATH, timeout=10).json() == normal.json()
    assert requests.get(served + PATH, timeout=10).json() == normal.json()

    assert any(PATH in r.getMessage() for r in caplog.records)  # the mock's log is seen
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]
    entries = _admin(served, "GET", "/requests").json()["requests"]
    mine = [(e["method"], e["status"], e["fault"]) for e in entries if e["path"] == PATH]
    faulted = 0 if kind in ("connection_reset", "empty_reply") else 404
    assert mine == [
        ("HEAD", 404, False),
        ("GET", faulted, True),
        ("GET", faulted, True),
        ("GET", 404, False),
        ("GET", 404, False),
        ("GET", 404, False),
    ]


BAD_RULES = [
    {"path": "/*", "fault": "connection_reset", "status": 500},
    {"path": "/*", "fault": "empty_reply", "body": "oops"},
    {"path": "/*", "fault": "empty_reply", "status": 200, "body": {}},
    {"path": "/*", "fault": "CONNECTION_RESET_BY_PEER"},
    {"path": "/*", "fault": None},
    {"path": "/*", "fault": 1},
    {"path": "/*", "fault": ["empty_reply"]},
    {"fault": "empty_reply"},
    [{"path": "/*", "fault": "empty_reply"}, {"path": "/*", "fault": "reset"}],
]


def test_bad_transport_fault_rules_are_400(served: str) -> None:
    _admin(served, "POST", "/reset")
    for rule in BAD_RULES:
        response = _admin(served, "POST", "/faults", json=rule)
        body = response.json()
        assert response.status_code == 400 and list(body) == ["error"], (rule, body)
    assert _admin(served, "GET", "/faults").json() == {"faults": []}
    # A fault with a latency is a rule, listed as posted.
    rule = {"path": "/x", "fault": "truncated_body", "latency_ms": 1, "probability": 0.5}
    listed = _admin(served, "POST", "/faults", json=rule).json()["faults"][0]
    assert {key: listed[key] for key in rule} == rule and listed["status"] is None
    _admin(served, "DELETE", "/faults")


def test_without_pepharness_serving_a_connection_fault_is_a_502() -> None:
    """A WSGI test client has no connection to break (D102): an injected 502 says so."""
    client = _sinatra().test_client()
    rule = {"path": PATH, "fault": "empty_reply", "times": 1}
    assert client.post("/__admin/faults", json=rule).status_code == 201
    answer = client.get(PATH)
    assert answer.status_code == 502 and b"empty_reply" in answer.data
    assert client.get(PATH).status_code == 404
    entries = client.get("/__admin/requests").get_json()["requests"]
    assert [(e["status"], e["fault"]) for e in entries if e["path"] == PATH] == [
        (502, True),
        (404, False),
    ]


def test_a_streamed_answer_is_cut_inside_its_first_chunk() -> None:
    """An answer with no Content-Length goes chunked: one chunk announced whole, half of it
    sent, no last chunk (D101). No mock streams today; a core-only app does."""
    from flask import Response

    from pepharness.mocks.core import MockCore
    from pepharness.mocks.core.admin import install_core

    app = Flask("streamed")
    install_core(app, MockCore(service="streamed"))

    @app.get("/stream")
    def stream() -> Response:
        return Response(iter([b'{"a": "' + b"x" * 64, b'"}']), mimetype="application/json")

    with ThreadedServer(app, threads=1) as server:
        whole = requests.get(server.url + "/stream", timeout=10)
        assert whole.headers["Transfer-Encoding"] == "chunked"
        assert whole.json() == {"a": "x" * 64}
        rule = {"path": "/stream", "fault": "truncated_body", "times": 1}
        assert requests.post(server.url + "/__admin/faults", json=rule, timeout=10).ok
        with pytest.raises(requests.exceptions.ChunkedEncodingError) as caught:
            requests.get(server.url + "/stream", timeout=10)
        assert "IncompleteRead" in repr(caught.value), repr(caught.value)
        assert requests.get(server.url + "/stream", timeout=10).json() == {"a": "x" * 64}
