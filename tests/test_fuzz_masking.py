"""The fuzzer's curl lines mask every token the harness sent (headers, Bearer, credential
fields of a body or form) as shell variables, and leave a boundary probe's own value as sent."""

from __future__ import annotations

import requests

from pepharness.suites.fuzz.masking import secrets_for
from pepharness.suites.http import Secrets, curl_line

TOKEN = "eyJhbGciOi.J9-token_value"
URL = "http://127.0.0.1:8101/x"


def curl(headers: dict[str, str], *, fields: bool = True, spared: str = "",
         **body: object) -> str:
    request = requests.Request("POST", URL, headers=headers, **body).prepare()  # type: ignore[arg-type]
    return curl_line(request, secrets_for(Secrets(), request.headers, request.body,
                                          fields=fields, spared=spared))


def test_token_headers_and_bearer_are_masked() -> None:
    line = curl({"jwt-auth": TOKEN, "x-authorization": TOKEN + "2",
                 "Authorization": f"Bearer {TOKEN}3"})
    assert TOKEN not in line
    for shown in ('"jwt-auth: $JWT_AUTH"', '"x-authorization: $PEP_PLAYER_TOKEN"',
                  '"Authorization: Bearer $PEP_PLATFORM_TOKEN"'):
        assert shown in line


def test_credential_fields_of_a_json_body_or_a_form_are_masked() -> None:
    json_line = curl({}, json={"identityToken": TOKEN, "clientId": "casino-1",
                               "nested": {"refresh_token": TOKEN + "r"}})
    form_line = curl({}, data={"grant_type": "client_credentials", "client_secret": TOKEN})
    assert TOKEN not in json_line and TOKEN not in form_line
    assert '\\"identityToken\\": \\"$PEP_IDENTITY_TOKEN\\"' in json_line
    assert '\\"refresh_token\\": \\"$PEPHARNESS_REFRESH_TOKEN\\"' in json_line
    assert "casino-1" in json_line
    assert "client_secret=$PEPHARNESS_CLIENT_SECRET" in form_line


def test_a_probed_place_and_short_or_generated_values_stay_as_sent() -> None:
    probed = curl({"jwt-auth": TOKEN}, spared="credentials jwt-auth")
    field = curl({"jwt-auth": TOKEN}, json={"identityToken": "probe-value-1234"},
                 spared="body identityToken")
    short = curl({"jwt-auth": "abc"})
    generated = curl({}, fields=False, json={"identityToken": TOKEN})
    assert TOKEN in probed
    assert "$JWT_AUTH" in field and "probe-value-1234" in field
    assert "jwt-auth: abc" in short
    assert TOKEN in generated
