"""What every command shares: click's context settings and options that read PEPHARNESS_<OPTION>."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

Decorated = TypeVar("Decorated", bound=Callable[..., Any])


def env_option(*names: str, **kwargs: Any) -> Callable[[Decorated], Decorated]:
    """A click option that also reads PEPHARNESS_<OPTION> (DESIGN.md: for CI secrets)."""
    long_name = next(n for n in names if n.startswith("--"))
    envvar = "PEPHARNESS_" + long_name[2:].replace("-", "_").upper()
    return click.option(*names, envvar=envvar, show_envvar=True, **kwargs)
