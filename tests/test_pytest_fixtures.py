"""The fixtures for integrators' own pytest suites (issue 14 item 6, D120, D121): a test file of
theirs, run by pytest in a subprocess against the real mocks on loopback."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

WELL_BEHAVED = '''
import requests

def test_catalog(pepharness_sinatra):
    mock = pepharness_sinatra
    login = requests.post(f"{mock.url}/1.0/login/",
                          json={"email": mock.email, "password": mock.password}, timeout=30)
    assert login.status_code == 200
    token = login.headers["jwt-auth"]
    for path in ("/vendors/1.0/view/available", "/games/1.0/view/detailed"):
        assert requests.get(f"{mock.url}{path}", headers={"jwt-auth": token},
                            timeout=30).status_code == 200
    assert mock.admin.clock_advance(60)
    assert len(mock.admin.requests()) >= 3

def test_pep_and_operator(pepharness_pep, pepharness_operator):
    assert pepharness_pep.client_id and pepharness_pep.client_secret
    assert pepharness_operator.identity_token()
    pepharness_pep.admin.rate_limit(100, 1)
    pepharness_pep.admin.faults({"path": "/nowhere", "status": 503})
    pepharness_pep.admin.clear_faults()
    pepharness_pep.admin.reset()
'''

LOGIN_PER_REQUEST = '''
import requests

def test_catalog(pepharness_sinatra):
    mock = pepharness_sinatra
    for path in ("/vendors/1.0/view/available", "/games/1.0/view/detailed"):
        login = requests.post(f"{mock.url}/1.0/login/",
                              json={"email": mock.email, "password": mock.password}, timeout=30)
        assert requests.get(f"{mock.url}{path}", headers={"jwt-auth": login.headers["jwt-auth"]},
                            timeout=30).status_code == 200
'''


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_integrator=source)
    return pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_a_well_behaved_suite_passes_with_the_verdict(pytester: pytest.Pytester) -> None:
    result = _run(pytester, WELL_BEHAVED, "--pepharness-judge-clients")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*pepharness client verdict*", "*MUST*pass*check_client_reuses_its_token"]
    )


def test_login_per_request_fails_the_session_with_the_verdict_on(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npepharness_judge_clients = true\n")
    result = _run(pytester, LOGIN_PER_REQUEST)
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*MUST*FAIL*check_client_reuses_its_token",
        "a MUST client rule failed: check_client_reuses_its_token",
    ])


def test_login_per_request_passes_with_the_verdict_off(pytester: pytest.Pytester) -> None:
    result = _run(pytester, LOGIN_PER_REQUEST)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*pepharness client verdict*")


def test_the_plugins_constants_are_the_mocks() -> None:
    """The plugin names them without importing the mocks (D188): they must not drift."""
    from pepharness import pytest_fixtures
    from pepharness.mocks import pep
    from pepharness.serving import ServeOptions

    assert ServeOptions().seed == pytest_fixtures.SEED
    assert (pytest_fixtures.DEMO_CLIENT_ID, pytest_fixtures.DEMO_CLIENT_SECRET) == (
        pep.DEMO_CLIENT_ID, pep.DEMO_CLIENT_SECRET
    )
