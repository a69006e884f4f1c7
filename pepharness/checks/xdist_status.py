"""A pytest plugin `check` loads into its parallel phase: xdist's "bringing up nodes..." once.

Without a terminal and with -q, pytest-xdist writes its status line when the workers start and
again when they have collected, and the line says the same both times (its counts are shown
only without -q). The first is kept; the repeats are dropped (issue 15 item 2)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    reporter: Any = session.config.pluginmanager.getplugin("terminaldistreporter")
    if reporter is None or not hasattr(reporter, "ensure_show_status"):
        return
    show = reporter.ensure_show_status
    shown: list[str] = []

    def once() -> None:
        if not reporter._isatty and reporter.getstatus() in shown:
            return
        shown.append(reporter.getstatus())
        show()

    reporter.ensure_show_status = once
