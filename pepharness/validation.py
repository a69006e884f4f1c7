"""`pepharness contracts validate`: the contracts are valid OpenAPI 3.1 and the data fits them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from itertools import islice
from typing import Any

from pepharness import contracts, fixtures


@dataclass
class Outcome:
    """What one validation step checked and what broke."""

    step: str
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_specs() -> list[Outcome]:
    """Each shipped contract against the OpenAPI 3.1 meta-schema, then its own examples."""
    outcomes = []
    for name in contracts.names():
        outcome = Outcome(f"contract {name}: OpenAPI 3.1 + examples", checked=1)
        outcome.problems.extend(contracts.spec_errors(name))
        if outcome.ok:
            outcome.problems.extend(contracts.example_errors(name))
        outcomes.append(outcome)
    return outcomes


def golden_documents() -> Iterable[tuple[str, str, str, Any]]:
    """(file, contract, schema, document) for each of the seeds' examples kept as golden files."""
    folder = resources.files("pepharness.fixtures") / "golden"
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    for file_name, target in sorted(index.items()):
        document = json.loads((folder / file_name).read_text(encoding="utf-8"))
        items = document if target.get("array") else [document]
        for item in items:
            yield file_name, target["contract"], target["schema"], item


def validate_golden() -> Outcome:
    outcome = Outcome("golden examples from the seeds")
    for file_name, contract, schema, document in golden_documents():
        outcome.checked += 1
        for problem in contracts.record_errors(contract, schema, document):
            outcome.problems.append(f"{file_name} ({contract}:{schema}): {problem}")
    return outcome


def validate_generated(
    seed: int,
    anchor: datetime,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    """Every record the seeded generator makes (or the first `limit`) against its schema."""
    data = fixtures.generate(seed, anchor=anchor)
    outcome = Outcome(f"generated records (seed {seed})")
    kinds: Counter[str] = Counter()
    for kind, document in islice(fixtures.iter_records(data), limit):
        contract, schema = fixtures.RECORD_SCHEMAS[kind]
        kinds[kind] += 1
        outcome.checked += 1
        for problem in contracts.record_errors(contract, schema, document):
            outcome.problems.append(f"{kind} #{kinds[kind]} ({contract}:{schema}): {problem}")
        if progress is not None and outcome.checked % 1000 == 0:
            progress(outcome.checked)
    outcome.step += " — " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    return outcome
