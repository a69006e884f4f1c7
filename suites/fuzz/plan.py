"""The planned sequence: which flow or generated request comes next, decided by one seeded
random stream, so that the same seed and contract always plan the same requests in the same
order, whatever the concurrency."""

from __future__ import annotations

import copy
import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from schemathesis import Case
from schemathesis.core import NotSet
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from pepharness.suites.fuzz.apis import FLOW_GENERATED
from pepharness.suites.fuzz.boundary import FLOW_BOUNDARY

MODES = ("positive", "negative", "all")
CHUNK = 32
"""Cases generated at a time for one operation and mode."""
DEFAULT_VARIETY = 64
"""Distinct cases generated per operation and mode before the fuzzer draws from those again:
Hypothesis takes 2 to 20 ms a case, far more than sending it."""

_GENERATING = threading.Lock()
"""Hypothesis runs one generation at a time in a process."""


def derive(*parts: object) -> int:
    """A 64-bit seed from `parts`, the same in every process and on every machine (Python's
    hash() of a string is salted per process)."""
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def parse_profile(value: str, known: Sequence[str]) -> dict[str, float]:
    """`name=weight,…` (a weight may be 0) into weights; an unknown name or a weight that is
    not a non-negative number is a ValueError naming what is known."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, equals, weight = part.partition("=")
        name = name.strip()
        if name not in known:
            raise ValueError(f"unknown flow {name!r} in --profile; known: {', '.join(known)}")
        try:
            number = float(weight) if equals else 1.0
        except ValueError:
            raise ValueError(f"--profile weight of {name!r} is not a number: {weight!r}") from None
        if not number >= 0 or number == float("inf"):
            raise ValueError(f"--profile weight of {name!r} must be >= 0, not {weight}")
        weights[name] = number
    if not weights or sum(weights.values()) <= 0:
        raise ValueError(f"--profile {value!r} gives no flow a weight above 0")
    return weights


class Stream:
    """The generated cases of one operation in one mode: chunk k of it comes from Hypothesis
    seeded with (seed, operation, mode, k), so case n is the same in every run."""

    def __init__(
        self, operation: APIOperation[Any, Any, Any, Any], mode: str, seed: int, variety: int
    ) -> None:
        self.operation = operation
        self.mode = mode
        self.seed = seed
        self.variety = max(1, variety)
        self.cases: list[Case[Any]] = []
        self._chunks = 0
        self._exhausted = False
        self._lock = threading.Lock()
        self.error: str | None = None
        if mode == "negative" and not breakable(operation):
            self._exhausted = True
            self.error = NOTHING_TO_BREAK
        self.generate_in: Callable[[Callable[[], None]], None] = _call
        """Where a chunk is generated: here, or (a Locust worker) in a thread of gevent's
        pool, so that seconds of Hypothesis do not stop the hub."""

    @property
    def label(self) -> str:
        return f"{self.operation.method.upper()} {self.operation.path}"

    def case(self, number: int, rng: random.Random) -> Case[Any] | None:
        """Case `number` of the stream, once `variety` exist one of them drawn with `rng`;
        None when the operation has no case in this mode."""
        with self._lock:
            while len(self.cases) <= min(number, self.variety - 1) and not self._exhausted:
                self.generate_in(self._generate)
            if not self.cases:
                return None
            if number < len(self.cases):
                return self.cases[number]
            return self.cases[rng.randrange(len(self.cases))]

    def _generate(self) -> None:
        found: list[Case[Any]] = []
        mode = GenerationMode.POSITIVE if self.mode == "positive" else GenerationMode.NEGATIVE
        chunk_seed = derive(self.seed, self.label, self.mode, self._chunks)
        self._chunks += 1
        try:
            strategy = self.operation.as_strategy(generation_mode=mode)

            @hypothesis_seed(chunk_seed)
            @settings(
                max_examples=min(CHUNK, self.variety),
                phases=[Phase.generate],
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=False,
            )
            @given(strategy)
            def collect(case: Case[Any]) -> None:
                found.append(case)

            with _GENERATING:
                collect()
        except Exception as error:  # schemathesis and Hypothesis raise many kinds
            self.error = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:200]}" \
                if str(error).strip() else type(error).__name__
        if not found or len(found) < min(CHUNK, self.variety) // 4:
            # Hypothesis ran out of distinct cases: what it found is all there is.
            self._exhausted = True
        self.cases.extend(found)


NOTHING_TO_BREAK = "nothing in it to break"
_SEGMENT = "^[^/]+$"
"""The pattern schemathesis gives every path parameter: a path segment, no constraint."""


def breakable(operation: APIOperation[Any, Any, Any, Any]) -> bool:
    """Whether a negative case of `operation` can exist: a query, header or cookie parameter,
    a body, or a path parameter with a type or constraint to break. A path of plain strings
    has none (any text is a string, and a segment cannot be empty): Hypothesis would take
    seconds to find that out (Unsatisfiable)."""
    if any(len(list(group)) for group in (
        operation.query, operation.headers, operation.cookies, operation.body,
    )):
        return True
    for parameter in operation.path_parameters:
        schema = dict(parameter.definition.get("schema") or {})
        if schema.get("pattern") == _SEGMENT:
            schema.pop("pattern")
        if schema.get("type", "string") != "string" or set(schema) & {
            "pattern", "format", "enum", "const", "maxLength",
        }:
            return True
    return False


def _call(work: Callable[[], None]) -> None:
    work()


def clone(case: Case[Any]) -> Case[Any]:
    """A copy of a generated case to send and mutate: the pooled one is sent again later, and
    maybe by another thread at the same time."""
    copied: Case[Any] = case.operation.Case(
        method=case.method,
        path_parameters=copy.deepcopy(case.path_parameters),
        headers=copy.deepcopy(dict(case.headers)) if case.headers is not None else None,
        cookies=copy.deepcopy(case.cookies),
        query=copy.deepcopy(case.query),
        body=case.body if isinstance(case.body, NotSet) else copy.deepcopy(case.body),
        media_type=case.media_type,
        _meta=copy.deepcopy(case._meta),
    )
    return copied


@dataclass(frozen=True)
class Item:
    """One planned unit of traffic: a flow, or one generated request."""

    index: int
    flow: str
    seed: int
    operation: str | None = None
    mode: str | None = None
    number: int = 0
    """Generated: which case of its stream; boundary: which probe."""

    def rng(self) -> random.Random:
        return random.Random(self.seed)


class Planner:
    """Hands out items in index order; the choices come from one random stream seeded with
    the run's seed, so the sequence does not depend on which worker asks or when."""

    def __init__(
        self,
        operations: Mapping[str, APIOperation[Any, Any, Any, Any]],
        profile: Mapping[str, float],
        *,
        seed: int,
        mode: str,
        variety: int = DEFAULT_VARIETY,
        exclude: Sequence[str] = (),
    ) -> None:
        self.seed = seed
        self.mode = mode
        self.profile = {name: w for name, w in profile.items() if w > 0}
        self._names = list(self.profile)
        self._weights = [self.profile[name] for name in self._names]
        self._generated = sorted(op for op in operations if op not in exclude)
        self._streams = {
            (op, m): Stream(operations[op], m, seed, variety)
            for op in self._generated for m in ("positive", "negative")
        }
        self._rng = random.Random(derive(seed, "plan"))
        self._drawn: Counter[tuple[str, str]] = Counter()
        self._index = 0
        self._lock = threading.Lock()

    def next(self) -> Item:
        with self._lock:
            index = self._index
            self._index += 1
            flow = self._rng.choices(self._names, self._weights)[0]
            item_seed = derive(self.seed, "item", index)
            if flow == FLOW_BOUNDARY:
                number = self._drawn[(FLOW_BOUNDARY, "")]
                self._drawn[(FLOW_BOUNDARY, "")] += 1
                return Item(index, flow, item_seed, number=number)
            if flow != FLOW_GENERATED or not self._generated:
                return Item(index, flow, item_seed)
            operation = self._rng.choice(self._generated)
            mode = self.mode if self.mode != "all" else self._rng.choice(("positive", "negative"))
            number = self._drawn[(operation, mode)]
            self._drawn[(operation, mode)] += 1
            return Item(index, flow, item_seed, operation, mode, number)

    def case(self, item: Item) -> tuple[Case[Any] | None, str | None]:
        """The generated case of `item` and its mode; a mode the operation has no case in
        falls back to the other (a negative case needs something to break)."""
        assert item.operation is not None and item.mode is not None
        rng = item.rng()
        for mode in (item.mode, "negative" if item.mode == "positive" else "positive"):
            found = self._streams[(item.operation, mode)].case(item.number, rng)
            if found is not None:
                return clone(found), mode
        return None, None

    def prepare(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Generate every stream's cases now, one stream after the other: Hypothesis and
        schemathesis' negative cases draw from the process-wide `random`, which requests in
        flight on other threads must not share with them (the same seed would not give the
        same cases)."""
        if FLOW_GENERATED not in self.profile:
            return
        streams = list(self._streams.values())
        for done, stream in enumerate(streams):
            stream.case(stream.variety - 1, random.Random(0))
            if progress is not None:
                progress(done + 1, len(streams))

    def generate_in(self, where: Callable[[Callable[[], None]], None]) -> None:
        """Generate every stream's chunks through `where` (see Stream.generate_in)."""
        for stream in self._streams.values():
            stream.generate_in = where

    def generation_errors(self) -> dict[str, str]:
        return {f"{s.label} ({s.mode})": s.error for s in self._streams.values() if s.error}
