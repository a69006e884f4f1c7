"""The mocks `pepharness serve` can start: each one's default port, app factory and banner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from pepharness.fixtures import (
    OPERATOR_EMAIL,
    OPERATOR_PASSWORD,
    RESTRICTED_EMAIL,
    RESTRICTED_PASSWORD,
    SEEDED_OPERATOR_ID,
)
from pepharness.mocks import sinatra


@dataclass(frozen=True)
class ServeOptions:
    """The `serve` options every mock understands."""

    seed: int = 42
    rounds: int = 4000
    rate_limit: tuple[int, float] = (5, 1.0)
    admin: bool = True


@dataclass(frozen=True)
class Mock:
    """A servable mock: how to build it from the options, and what to tell the user about it."""

    name: str
    default_port: int
    build: Callable[[ServeOptions], Flask]
    banner: Callable[[ServeOptions], list[str]]


def _sinatra_app(options: ServeOptions) -> Flask:
    config: dict[str, Any] = {
        "SEED": options.seed,
        "ROUNDS": options.rounds,
        "RATE_LIMIT": options.rate_limit,
        "ADMIN": options.admin,
    }
    return sinatra.create_app(config)


def _sinatra_banner(options: ServeOptions) -> list[str]:
    limit, period = options.rate_limit
    return [
        f"login {OPERATOR_EMAIL} / {OPERATOR_PASSWORD}"
        f" (every permission, operator {SEEDED_OPERATOR_ID})",
        f"login {RESTRICTED_EMAIL} / {RESTRICTED_PASSWORD} (no permission)",
        f"paginated history: HTTP Basic with the same credentials, {limit} per {period:g}s",
    ]


MOCKS: dict[str, Mock] = {
    mock.name: mock for mock in (Mock("sinatra", 8101, _sinatra_app, _sinatra_banner),)
}
"""Every mock that exists, in the order `serve all` starts them (operator, pep: to come)."""
