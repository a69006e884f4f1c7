"""A planted-fault Sinatra client for `pepharness run`: it logs in before every catalog call.

Breaks check_client_reuses_its_token (and nothing else): a careless job that asks for a new
token per request instead of reusing the one the `jwt-auth` header handed it. Configured as
examples/sinatra_client.py is, by PEPHARNESS_SINATRA_URL, _EMAIL and _PASSWORD.
"""

from __future__ import annotations

import os

import requests

TIMEOUT = 10


def main() -> int:
    url = os.environ["PEPHARNESS_SINATRA_URL"]
    credentials = {
        "email": os.environ["PEPHARNESS_SINATRA_EMAIL"],
        "password": os.environ["PEPHARNESS_SINATRA_PASSWORD"],
    }
    for path in ("/vendors/1.0/view/available", "/games/1.0/view/detailed"):
        login = requests.post(f"{url}/1.0/login/", json=credentials, timeout=TIMEOUT)
        login.raise_for_status()
        answer = requests.get(
            f"{url}{path}", headers={"jwt-auth": login.headers["jwt-auth"]}, timeout=TIMEOUT
        )
        answer.raise_for_status()
    print("sinatra_login_per_request_client: done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
