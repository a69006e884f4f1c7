"""The fuzzer's `boundary` flow: the conformance checks' boundary probes (suites/boundaries.py),
one per planned item in turn, sent as their exact bytes; a 5xx or no answer is a finding."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pepharness.suites.boundaries import Base, Probe, probes

FLOW_BOUNDARY = "boundary"
REBUILD_SECONDS = 300
"""The probes carry credentials (a Sinatra token lives 20 minutes): rebuilt this often."""


class BoundaryPlan:
    """Every probe of the contract's operations, handed out in turn (the item's index picks
    which, so a seed sends the same probes in the same order)."""

    def __init__(self, contract: str, bases: Callable[[], list[Base]]) -> None:
        self.contract = contract
        self.bases = bases
        self._probes: list[Probe] = []
        self._built = 0.0
        self._lock = threading.Lock()

    def probe(self, number: int) -> Probe | None:
        """Probe `number` (modulo their count); None when the contract gives none."""
        with self._lock:
            if not self._probes or time.monotonic() - self._built > REBUILD_SECONDS:
                self._probes = [p for base in self.bases() for p in probes(self.contract, base)]
                self._built = time.monotonic()
            if not self._probes:
                return None
            return self._probes[number % len(self._probes)]

    def count(self) -> int:
        with self._lock:
            return len(self._probes)
