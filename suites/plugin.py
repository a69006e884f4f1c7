"""The conformance suites' pytest plugin: options (each with its PEPHARNESS_<OPTION> variable),
rule selection, one result per rule and operation gathered on the controller, and the reports.

Loaded through the `pytest11` entry point. It does nothing to a test that is not a suite check
(one without `@covers(...)`), so the project's own tests run with it unchanged.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pepharness.suites import setup
from pepharness.suites.http import RECORDER
from pepharness.suites.options import (
    DEFAULT_BURST,
    DEFAULT_CLIENT_ID,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_OPERATOR_PORT,
    DEFAULT_OPERATOR_TIMEOUT,
    PHASES,
    OptionError,
    SuiteOptions,
    parse_base_url,
    parse_clock_control,
    parse_rate_limit,
    split_lines,
)
from pepharness.suites.rules import (
    EXCLUSIVE,
    MARKER,
    NOT_VERIFIED,
    Rule,
    RuleFailure,
    RuleFailures,
    matches,
    operation_matches,
    operation_of,
    rules_of,
    split_patterns,
)

pytest_plugins = ["pepharness.pytest_fixtures"]  # the fixtures for integrators (D120)
RESULT = "pepharness_result"
OBSERVED = "pepharness_observed"
GROUP = "pepharness"

_options_key = pytest.StashKey[SuiteOptions]()
_active: SuiteOptions | None = None


def active_options() -> SuiteOptions:
    """The options of the current pytest run, for suite modules that build tests at import time
    (a schemathesis schema). Pytest configures plugins before it imports any test module."""
    if _active is None:
        raise RuntimeError("the pepharness plugin is not configured: run the suites under pytest")
    return _active


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get("PEPHARNESS_" + name.upper().replace("-", "_"), default)


def _flag(name: str) -> bool:
    return (_env(name) or "").strip().lower() in ("1", "true", "yes", "on")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "pep-harness conformance suites (each also PEPHARNESS_<OPTION>)")
    group.addoption(
        "--base-url",
        default=_env("base-url"),
        help="base URL of the service under test [env PEPHARNESS_BASE_URL]",
    )
    group.addoption("--email", default=_env("email"), help="login of a user with every permission")
    group.addoption("--password", default=_env("password"), help="that user's password")
    group.addoption(
        "--restricted-email",
        default=_env("restricted-email"),
        help="login of a user without permissions (403 checks; NOT VERIFIED when it cannot log in)",
    )
    group.addoption("--restricted-password", default=_env("restricted-password"))
    group.addoption(
        "--max-examples",
        type=int,
        default=int(_env("max-examples", str(DEFAULT_MAX_EXAMPLES)) or DEFAULT_MAX_EXAMPLES),
        help=f"examples per generated test (default {DEFAULT_MAX_EXAMPLES})",
    )
    group.addoption("--seed", type=int, default=_env("seed"), help="seed of every generator")
    group.addoption(
        "--clock-control",
        default=_env("clock-control"),
        help="URL of the target's clock control (POST {URL}/clock), or 'none'",
    )
    group.addoption(
        "--expect-rate-limit",
        default=_env("expect-rate-limit"),
        metavar="N/SECONDS",
        help="the rate limit the target documents; without it the 429 checks are NOT VERIFIED",
    )
    group.addoption(
        "--include-slow",
        action="store_true",
        default=_flag("include-slow"),
        help="run the checks that really wait (the 20-minute token lifetime)",
    )
    group.addoption(
        "--report-dir",
        default=_env("report-dir"),
        help="write junit.xml, summary.json and report.html there",
    )
    group.addoption(
        "--rules",
        action="append",
        default=split_patterns([_env("rules") or ""]),
        help="only the rules matching these glob patterns (repeatable, comma separated)",
    )
    group.addoption(
        "--operations",
        action="append",
        default=split_patterns([_env("operations") or ""]),
        help="only the checks of the operations matching these globs, e.g. 'GET /games/*'",
    )
    group.addoption(
        "--suite-phase",
        choices=PHASES,
        default="all",
        help="all checks (those that move the target's clock or exhaust its rate limit last), "
        "only the shared ones, or only those exclusive ones",
    )
    group.addoption(
        "--fail-on-should",
        action="store_true",
        default=_flag("strict"),
        help="a failed SHOULD rule fails the verdict too",
    )
    # Identity tokens and the client secret come from the environment only (one per line):
    # a command line is visible to every user of the machine.
    group.addoption(
        "--burst",
        type=int,
        default=int(_env("burst", str(DEFAULT_BURST)) or DEFAULT_BURST),
        help=f"operator: concurrent calls in the burst (default {DEFAULT_BURST}); "
        "tokens come from PEPHARNESS_VALID_TOKENS / PEPHARNESS_EXPIRED_TOKENS, one per line",
    )
    group.addoption(
        "--client-id",
        default=_env("client-id", DEFAULT_CLIENT_ID),
        help="pep-frontend: the API client's id (its secret from PEPHARNESS_CLIENT_SECRET)",
    )
    group.addoption(
        "--operator-port",
        type=int,
        default=int(_env("operator-port", str(DEFAULT_OPERATOR_PORT)) or DEFAULT_OPERATOR_PORT),
        help="pep-frontend: the loopback port the harness plays the operator on",
    )
    group.addoption(
        "--operator-timeout",
        type=float,
        default=float(_env("operator-timeout", str(DEFAULT_OPERATOR_TIMEOUT)) or 10),
        help="pep-frontend: seconds the PEP may take when the operator hangs or is down",
    )


def _options(config: pytest.Config) -> SuiteOptions:
    get = config.getoption
    base_url = get("base_url")
    rate = get("expect_rate_limit")
    report_dir = get("report_dir")
    seed = get("seed")
    defaults = SuiteOptions()
    return SuiteOptions(
        base_url=parse_base_url(base_url) if base_url else None,
        email=get("email") or defaults.email,
        password=get("password") or defaults.password,
        restricted_email=get("restricted_email") or defaults.restricted_email,
        restricted_password=get("restricted_password") or defaults.restricted_password,
        max_examples=max(1, int(get("max_examples"))),
        seed=int(seed) if seed not in (None, "") else None,
        clock_control=parse_clock_control(get("clock_control")),
        expect_rate_limit=parse_rate_limit(rate) if rate else None,
        include_slow=bool(get("include_slow")),
        report_dir=Path(report_dir) if report_dir else None,
        rules=tuple(split_patterns(get("rules") or [])),
        operations=tuple(split_patterns(get("operations") or [])),
        phase=get("suite_phase"),
        strict=bool(get("fail_on_should")),
        valid_tokens=split_lines(_env("valid-tokens")),
        expired_tokens=split_lines(_env("expired-tokens")),
        burst=max(1, int(get("burst"))),
        client_id=get("client_id") or DEFAULT_CLIENT_ID,
        client_secret=_env("client-secret") or None,
        operator_port=int(get("operator_port")),
        operator_timeout=float(get("operator_timeout")),
        restart_command=_env("restart-command") or None,
    )


@dataclass
class RunStore:
    """What the controller gathers: one entry per rule and operation, and every status seen."""

    options: SuiteOptions
    started: float = field(default_factory=time.time)
    results: list[dict[str, Any]] = field(default_factory=list)
    observed: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    apis: set[str] = field(default_factory=set)


def pytest_configure(config: pytest.Config) -> None:
    global _active
    config.addinivalue_line(
        "markers", f"{MARKER}(*rules, operation=None): the conformance rules a test checks"
    )
    config.addinivalue_line(
        "markers",
        f"{EXCLUSIVE}: moves the target's clock or exhausts its rate limit; runs alone, last",
    )
    try:
        options = _options(config)
    except (OptionError, ValueError) as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[_options_key] = options
    _active = options
    if _is_worker(config):
        config.pluginmanager.register(XdistGroups(), "pepharness-xdist-groups")
    else:
        config.pluginmanager.register(ResultCollector(RunStore(options)), "pepharness-results")


def pytest_report_header(config: pytest.Config) -> list[str]:
    options = config.stash.get(_options_key, None)
    if options is None or options.base_url is None:
        return []
    return [f"pepharness: base URL {options.base_url}, seed {options.seed}"]


@pytest.fixture(scope="session")
def suite_options(pytestconfig: pytest.Config) -> SuiteOptions:
    """The run's options; fails the check when no base URL was given."""
    options = pytestconfig.stash[_options_key]
    if options.base_url is None:
        pytest.fail("no target: give --base-url URL or set PEPHARNESS_BASE_URL", pytrace=False)
    return options


def _unique_schemathesis_ids(items: list[pytest.Item]) -> None:
    """Give each schemathesis operation test its own node id. Pytest 9 builds a Function's id from
    `originalname` and its callspec, and schemathesis' items carry the operation only in their
    name, so every operation of one test would share an id (and xdist could not tell them
    apart)."""
    for item in items:
        label = getattr(item, "operation_label", None)
        parent = item.parent
        if isinstance(label, str) and parent is not None and not item.nodeid.endswith("]"):
            originalname = getattr(item, "originalname", item.name)
            item._id = parent.id.child(originalname).with_params(label)


class XdistGroups:
    """Pytest 9 builds `nodeid` from `Node._id`: the `@group` suffix pytest-xdist's loadgroup
    scheduling writes to `item._nodeid` on the workers no longer reaches the controller, which
    then spreads a group over every worker. Copy the suffix into the id (after xdist's hook)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from _pytest.nodeid import NodeId

        for item in items:
            wanted = item.__dict__.get("_nodeid")
            if isinstance(wanted, str) and wanted != item.nodeid and "@" in wanted:
                item._id = NodeId.parse(wanted)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    _unique_schemathesis_ids(items)
    options = config.stash[_options_key]
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        rules = rules_of(item)
        if not rules:
            kept.append(item)
            continue
        exclusive = item.get_closest_marker(EXCLUSIVE) is not None
        wanted = any(matches(rule, options.rules) for rule in rules) and operation_matches(
            operation_of(item), options.operations
        )
        if options.phase != "all" and exclusive != (options.phase == "exclusive"):
            wanted = False
        (kept if wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # The exclusive checks move the target's clock or exhaust its rate limit: last, in order.
    # An xdist group (the rate-limited checks, paced one after another) is the longest chain of
    # work: first, so that it starts while the other workers take everything else.
    kept.sort(
        key=lambda item: (
            item.get_closest_marker(EXCLUSIVE) is not None,
            item.get_closest_marker("xdist_group") is None,
        )
    )
    items[:] = kept


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _flatten(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _flatten(inner)]
    # A rule failed inside a library's callback (an auth provider's, D84): the rule's failure.
    if isinstance(error.__cause__, RuleFailure | RuleFailures):
        return [error.__cause__]
    return [error]


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rule_json(rule: Rule) -> dict[str, str]:
    return {
        "rule": rule.name,
        "level": str(rule.level),
        "source": rule.source,
        "summary": rule.summary,
        "api": rule.api,
    }


def _results(
    item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]
) -> list[dict[str, Any]]:
    """One entry per rule the item covers: passed, failed, error, skipped or not_verified."""
    rules = rules_of(item)
    operation = operation_of(item)
    base = {
        "nodeid": item.nodeid.split("@")[0],
        "operation": operation,
        "duration": round(report.duration, 3),
        "start": round(float(getattr(report, "start", 0.0)), 3),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
    }
    entries: dict[str, dict[str, Any]] = {
        rule.name: {**_rule_json(rule), **base, "outcome": "passed", "reason": "", "failure": None}
        for rule in rules
    }
    if report.skipped:
        reason = _skip_reason(report)
        outcome = "not_verified" if reason.startswith(NOT_VERIFIED) else "skipped"
        for entry in entries.values():
            entry.update(outcome=outcome, reason=reason)
    elif report.failed:
        failures: list[RuleFailure] = []
        others: list[BaseException] = []
        for error in _flatten(call.excinfo.value) if call.excinfo else []:
            if isinstance(error, RuleFailures):
                failures.extend(error.failures)
            elif isinstance(error, RuleFailure):
                failures.append(error)
            else:
                others.append(error)
        if others or not failures:
            reason = _one_line(others[0]) if others else "the check failed"
            outcome = "error" if report.when == "setup" or others else "failed"
            for entry in entries.values():
                entry.update(outcome=outcome, reason=reason)
        else:
            broken = {failure.rule.name for failure in failures}
            for entry in entries.values():
                if entry["rule"] not in broken:
                    entry.update(
                        outcome="skipped",
                        reason="not fully exercised: the check stopped at another rule's failure",
                    )
            for failure in failures:
                entry = entries.setdefault(
                    failure.rule.name, {**_rule_json(failure.rule), **base, "outcome": "failed"}
                )
                detail = failure.to_json()
                detail["operation"] = failure.operation or operation
                previous = entry.get("failure")
                entry.update(
                    outcome="failed",
                    reason=failure.title,
                    operation=detail["operation"],
                    failure=previous or detail,
                )
    return list(entries.values())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    setup.start_testing()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not rules_of(item):
        return report
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if decisive:
        report.user_properties.append(
            (RESULT, {"when": report.when, "results": _results(item, report, call)})
        )
    if report.when == "teardown":
        observed = [list(entry) for entry in RECORDER.drain()]
        report.user_properties.append((OBSERVED, {"when": "teardown", "observed": observed}))
    return report


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


class ResultCollector:
    """Gathers the rule results and observed statuses on the controller (or the only process):
    xdist hands every worker's reports, user properties included, to `pytest_runtest_logreport`
    here."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.summary: dict[str, Any] | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if not isinstance(value, dict) or value.get("when") != report.when:
                continue
            if name == RESULT:
                for entry in value["results"]:
                    self.store.results.append(entry)
                    if entry.get("api"):
                        self.store.apis.add(entry["api"])
            elif name == OBSERVED:
                for method, path, status in value["observed"]:
                    self.store.observed[(method, path, int(status))] += 1

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        options = self.store.options
        if options.report_dir is None or not self.store.results:
            return
        from pepharness.suites import report  # the contracts load jsonschema: only when needed
        part = write_part(self.store, options.report_dir, int(exitstatus))
        if options.phase == "all":
            self.summary = report.render(
                options.report_dir,
                [part],
                strict=options.strict,
                wall_time=time.time() - self.store.started,
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.summary is not None:
            from pepharness.suites import report

            for line in report.summary_lines(self.summary):
                terminalreporter.write_line(line)


def write_part(store: RunStore, report_dir: Path, exitstatus: int) -> Path:
    """The raw results of this run, for `report.render` (and `pepharness check` to merge)."""
    from pepharness.suites import report

    folder = report_dir / report.PARTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{store.options.phase}.json"
    options = asdict(store.options)
    options["password"] = options["restricted_password"] = "***"
    options["valid_tokens"] = ["***"] * len(store.options.valid_tokens)
    options["expired_tokens"] = ["***"] * len(store.options.expired_tokens)
    options["client_secret"] = "***" if store.options.client_secret else None
    options["restart_command"] = "***" if store.options.restart_command else None
    options["report_dir"] = str(store.options.report_dir)
    part = {
        "phase": store.options.phase,
        "apis": sorted(store.apis),
        "options": options,
        "started": store.started,
        "finished": time.time(),
        "pytest_exit": exitstatus,
        "results": store.results,
        "observed": [[m, p, s, n] for (m, p, s), n in sorted(store.observed.items())],
    }
    path.write_text(json.dumps(part, indent=1, default=str), encoding="utf-8")
    return path
