"""The game catalog, providers and marketing assets: rendered to JSON once, filtered per request."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pepharness.fixtures import Dataset, Game, game_document, provider_document
from pepharness.mocks.sinatra.params import CatalogQuery

OPERATOR_SETS = 64
SELECTIONS = 4096
UNFILTERED = CatalogQuery()


def json_bytes(value: Any) -> bytes:
    """Compact JSON keeping the documents' key order (the seed's), non-ASCII escaped."""
    return json.dumps(value, separators=(",", ":")).encode()


def json_array(items: Iterable[bytes]) -> bytes:
    """A JSON array of already-rendered items."""
    return b"[" + b",".join(items) + b"]"


@dataclass(frozen=True, slots=True)
class _Entry:
    """A game with its rendered document and what the filters compare, computed once."""

    position: int
    game: Game
    document: bytes
    folded_name: str
    operators: frozenset[int]


class Catalog:
    """The read-only catalog of one dataset. Thread-safe (nothing changes after construction)."""

    def __init__(self, data: Dataset) -> None:
        self._entries = tuple(
            _Entry(
                position,
                game,
                json_bytes(game_document(game)),
                game.game_name.casefold(),
                frozenset(game.operator_ids),
            )
            for position, game in enumerate(data.games)
        )
        self._by_id = {entry.game.game_id: entry for entry in self._entries}
        self.providers_json = json_array(json_bytes(provider_document(p)) for p in data.providers)
        self._assets: Mapping[str, bytes] = {
            game_id: json_bytes(data.assets_document(game_id)) for game_id in data.assets
        }
        # Selections are a pure function of (operators, filters): a repeated query costs a
        # lookup. Only entry references are kept per query, and whole responses only per
        # operator set, so the caches stay small whatever queries arrive.
        self._offered = functools.lru_cache(maxsize=OPERATOR_SETS)(self._offered_to)
        self._unfiltered = functools.lru_cache(maxsize=OPERATOR_SETS)(self._unfiltered_json)
        self._selected = functools.lru_cache(maxsize=SELECTIONS)(self._select)

    def assets_json(self, game_id: str) -> bytes | None:
        """The marketing assets of a game, None for an unknown one."""
        return self._assets.get(game_id)

    def games_json(self, operators: frozenset[int], query: CatalogQuery) -> bytes:
        """The games offered to any of `operators` that pass every filter of `query` (whose
        `operator_id` the caller has already folded into `operators`), in catalog order."""
        if query == UNFILTERED:
            return self._unfiltered(operators)
        return json_array(entry.document for entry in self._selected(operators, query))

    def _offered_to(self, operators: frozenset[int]) -> tuple[_Entry, ...]:
        return tuple(entry for entry in self._entries if not entry.operators.isdisjoint(operators))

    def _unfiltered_json(self, operators: frozenset[int]) -> bytes:
        return json_array(entry.document for entry in self._offered(operators))

    def _select(self, operators: frozenset[int], query: CatalogQuery) -> tuple[_Entry, ...]:
        if query.game_ids is not None:
            chosen = (self._by_id.get(game_id) for game_id in query.game_ids)
            candidates: Iterable[_Entry] = sorted(
                (e for e in chosen if e is not None and not e.operators.isdisjoint(operators)),
                key=lambda entry: entry.position,
            )
        else:
            candidates = self._offered(operators)
        date_from, providers = query.date_from, query.providers
        identifier, name = query.identifier, query.name
        return tuple(
            entry
            for entry in candidates
            # ISO dates compare as strings; "on or after" (D11).
            if entry.game.release_date >= date_from
            and (providers is None or entry.game.provider_id in providers)
            and (
                identifier is None
                or identifier in entry.game.game_id
                or identifier in entry.folded_name
            )
            and (name is None or name in entry.folded_name)
        )
