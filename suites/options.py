"""What a suite run is told: target, credentials, budgets and switches (pytest options or env)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pepharness.fixtures import (
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    RESTRICTED_EMAIL,
    RESTRICTED_PASSWORD,
)

DEFAULT_MAX_EXAMPLES = 50
DEFAULT_BURST = 50
DEFAULT_CLIENT_ID = "pep-demo-client"
DEFAULT_OPERATOR_PORT = 8102
DEFAULT_OPERATOR_TIMEOUT = 10.0
"""How long a PEP may take to answer when the operator hangs or is down (D45 bounds the
reference at 2 s + 5 s)."""
DOCUMENTED_RATE_LIMIT = (5, 1.0)
"""D26's rate limit, assumed for pacing when --expect-rate-limit is not given."""
PHASES = ("all", "shared", "exclusive")


class OptionError(ValueError):
    """An option value that cannot be used; the message is one line."""


def parse_rate_limit(value: str) -> tuple[int, float]:
    """`N/SECONDS` (N requests per SECONDS seconds, e.g. 5/1 or 100/60) as (N, SECONDS)."""
    limit, slash, period = value.strip().partition("/")
    try:
        parsed = (int(limit), float(period))
    except ValueError:
        parsed = (0, 0.0)
    if not slash or parsed[0] < 1 or not math.isfinite(parsed[1]) or parsed[1] < 0.001:
        raise OptionError(f"{value!r} is not N/SECONDS with N >= 1 and SECONDS >= 0.001")
    return parsed


def parse_clock_control(value: str | None) -> str | None:
    """The clock-control base URL (e.g. http://127.0.0.1:8101/__admin), None for `none`/empty."""
    if value is None or value.strip().lower() in ("", "none"):
        return None
    url = value.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise OptionError(f"--clock-control {value!r} is neither an http(s) URL nor 'none'")
    return url


def split_lines(value: str | None) -> tuple[str, ...]:
    """Values passed one per line (tokens may hold commas, never a newline)."""
    return tuple(line.strip() for line in (value or "").splitlines() if line.strip())


def parse_base_url(value: str) -> str:
    url = value.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise OptionError(f"--base-url {value!r} is not an http(s) URL")
    return url


@dataclass(frozen=True)
class SuiteOptions:
    """One run's settings; `base_url` is None until given (--base-url or PEPHARNESS_BASE_URL)."""

    base_url: str | None = None
    email: str = OPERATOR_EMAIL
    password: str = OPERATOR_PASSWORD
    restricted_email: str = RESTRICTED_EMAIL
    restricted_password: str = RESTRICTED_PASSWORD
    max_examples: int = DEFAULT_MAX_EXAMPLES
    seed: int | None = None
    clock_control: str | None = None
    expect_rate_limit: tuple[int, float] | None = None
    include_slow: bool = False
    report_dir: Path | None = None
    rules: tuple[str, ...] = field(default_factory=tuple)
    operations: tuple[str, ...] = field(default_factory=tuple)
    phase: str = "all"
    strict: bool = False
    valid_tokens: tuple[str, ...] = ()
    """Operator check: identity tokens the operator answers 200 for."""
    expired_tokens: tuple[str, ...] = ()
    """Operator check: identity tokens that have expired (401)."""
    burst: int = DEFAULT_BURST
    """Operator check: concurrent calls in the burst."""
    client_id: str = DEFAULT_CLIENT_ID
    """PEP Frontend check: the API client the casino front end sends."""
    client_secret: str | None = None
    """PEP Frontend check: that client's secret, which must never reach the operator."""
    operator_port: int = DEFAULT_OPERATOR_PORT
    """PEP Frontend check: the loopback port the harness plays the operator on."""
    operator_timeout: float = DEFAULT_OPERATOR_TIMEOUT
    """PEP Frontend check: seconds the PEP may take when the operator hangs or is down."""
    restart_command: str | None = None
    """PEP Platform check: a shell command that restarts the target (from the environment only)."""

    @property
    def paced_examples(self) -> int:
        """Examples for a generated test whose every request spends the rate limit's budget."""
        return max(3, self.max_examples // 8)

    @property
    def pacing(self) -> tuple[int, float]:
        """(requests, seconds) allowed on a rate-limited path: one below the expected limit."""
        limit, period = self.expect_rate_limit or DOCUMENTED_RATE_LIMIT
        return max(1, limit - 1), period
