"""The player model the Frontend gateway serves (VENDOR-FACTS.md), for the seeded players.

The PEP learns players from the operator's platform (bulk sync, events); the reference PEP
stands in for that with the seeded players — the same ones the operator mock has tokens for —
and derives wallet data and a starting XP balance from the seed and the player id (D47).
There is one rank model, the reactive engine's configuration (engine.yaml): a player's level
and rank always follow from its XP through it (D89), and the seeded XP is the engine's
starting state (D90); once the engine has applied an event of the player, `ranksData` is the
engine's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pepharness.fixtures import Player
from pepharness.mocks.pep.engine_config import EngineConfig


def _random(seed: int, player_id: str, part: str = "player") -> random.Random:
    return random.Random(f"pepharness-pep-{part}:{seed}:{player_id}")


def seeded_xp(config: EngineConfig, seed: int, player_id: str, player: Player | None) -> int:
    """The XP a seeded player starts with: a level drawn evenly from the configured ones and
    an XP balance inside it (the top level's band as wide as the one below it); 0 for a
    player the PEP has no data for."""
    if player is None:
        return 0
    rng = _random(seed, player_id, "xp")
    levels = config.levels
    level = rng.randint(1, len(levels))
    low = levels[level - 1]
    if level < len(levels):
        high = levels[level]
    else:
        high = low + (low - levels[-2] if len(levels) > 1 else 1000)
    return low + rng.randrange(high - low)


def xp_ranks_data(config: EngineConfig, xp: int) -> dict[str, Any]:
    """`ranksData` of `xp` in the one rank model (`config`)."""
    level = config.level_for(xp)
    return {
        "rank": {"name": config.rank_for(level)},
        "level": {"levelNumber": level},
        "xpBalance": xp,
    }


def player_document(
    seed: int, player_id: str, player: Player | None, config: EngineConfig | None = None
) -> dict[str, Any]:
    """`{playerId, firstName, lastName, gamificationOpt, ranksData, walletData}` of a player
    before any event; one the PEP has no data for has null names, gamification off and
    nothing earned. `config`: the rank model (None: the shipped engine.yaml)."""
    config = config or EngineConfig.load()
    xp = seeded_xp(config, seed, player_id, player)
    if player is None:
        return {
            "playerId": player_id,
            "firstName": None,
            "lastName": None,
            "gamificationOpt": {"enable": False},
            "ranksData": xp_ranks_data(config, xp),
            "walletData": {"balance": 0},
        }
    rng = _random(seed, player_id)
    enabled = not player.is_test_account and rng.random() < 0.9
    return {
        "playerId": player.player_id,
        "firstName": player.first_name,
        "lastName": player.last_name,
        "gamificationOpt": {"enable": enabled},
        "ranksData": xp_ranks_data(config, xp),
        "walletData": {"balance": round(rng.uniform(0, 2500), 2)},
    }


def ranks_data(state: Mapping[str, Any]) -> dict[str, Any]:
    """`ranksData` of a player from the reactive engine's state (`ReactiveEngine.player_state`)."""
    return {
        "rank": {"name": state["rank"]},
        "level": {"levelNumber": state["level"]},
        "xpBalance": state["xpBalance"],
    }


class Players:
    """The player documents of one seed, by player id, in the rank model `config` (None: the
    shipped engine.yaml) — the reactive engine's."""

    def __init__(
        self, seed: int, players: Mapping[str, Player], config: EngineConfig | None = None
    ) -> None:
        self.seed = seed
        self.players = players
        self.config = config or EngineConfig.load()

    def seeded_xp(self, player_id: str) -> int:
        """The player's XP before any event: the reactive engine's starting state (D90)."""
        return seeded_xp(self.config, self.seed, player_id, self.players.get(player_id))

    def document(
        self, player_id: str, engine_state: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The player's document; its `ranksData` is the engine's when the engine has state
        for the player (`engine_state`), the seeded standing otherwise."""
        document = player_document(
            self.seed, player_id, self.players.get(player_id), self.config
        )
        if engine_state is not None:
            document["ranksData"] = ranks_data(engine_state)
        return document
