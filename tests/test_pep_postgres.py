"""The reference PEP on a real PostgreSQL server (tests/conftest.py starts it): its event log
and reactive engine there, and two PEP instances on one database applying every event exactly
once between them."""

from __future__ import annotations

from pepharness.mocks.pep.store import Store


def test_smoke(postgresql: str) -> None:
    store = Store(postgresql)
    store.close()
