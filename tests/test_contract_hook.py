"""The hook every HTTP test's response goes through really refuses off-contract answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests


def fake(method: str, url: str, status: int, body: bytes, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.url = url
    response.headers.update(headers)
    response.request = requests.Request(method, url).prepare()
    return response


@pytest.fixture
def conforms_to_contract(response_hooks: list[Callable[[requests.Response], None]]) -> Any:
    (hook,) = response_hooks
    return hook


def test_a_conforming_answer_passes(conforms_to_contract: Any) -> None:
    conforms_to_contract(
        fake("GET", "http://x/games/1.0/view/detailed", 401, b'{"errMsg": "unauthorized"}')
    )


@pytest.mark.parametrize(
    "response",
    [
        fake("GET", "http://x/games/1.0/view/detailed", 404, b'{"errMsg": "x"}'),
        fake("GET", "http://x/games/1.0/view/detailed", 200, b'[{"gameId": 1}]'),
        fake("GET", "http://x/transactions/1/games/history/api", 429, b'{"errMsg": "slow down"}',
             **{"Retry-After": "later"}),
        fake("POST", "http://x/1.0/login/", 400, b"<html>"),
        fake("GET", "http://x/__admin/clock", 200, b'{"now": "yesterday"}'),
    ],
)
def test_an_off_contract_answer_fails(
    conforms_to_contract: Any, response: requests.Response
) -> None:
    with pytest.raises(AssertionError):
        conforms_to_contract(response)
