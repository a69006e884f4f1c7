"""Hypothesis settings for the suites' property checks: sized by --max-examples, seeded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, seed, settings

from pepharness.suites.options import SuiteOptions


def run(
    test: Callable[..., None],
    options: SuiteOptions,
    *,
    examples: int,
    shrink: bool = True,
) -> None:
    """Run the `@given` property `test`: `examples` examples, no example database (a target is
    not a pure function to replay against), reproducible with --seed. `shrink=False` where every
    example costs rate-limited requests."""
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    configured: Any = settings(
        max_examples=max(1, examples),
        deadline=None,
        database=None,
        phases=phases,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )(test)
    if options.seed is not None:
        configured = seed(options.seed)(configured)
    configured()
