"""The player model the Frontend gateway serves (VENDOR-FACTS.md), for the seeded players.

The PEP learns players from the operator's platform (bulk sync, events); the reference PEP
stands in for that with the seeded players — the same ones the operator mock has tokens for —
and derives gamification and wallet data from the seed and the player id (D47); once the
reactive engine has applied an event of the player, `ranksData` is the engine's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pepharness.fixtures import Player

RANKS = ("Bronze", "Silver", "Gold", "Platinum", "Diamond")
LEVELS_PER_RANK = 10
XP_PER_LEVEL = 1000


def player_document(seed: int, player_id: str, player: Player | None) -> dict[str, Any]:
    """`{playerId, firstName, lastName, gamificationOpt, ranksData, walletData}` of a player;
    one the PEP has no data for has null names, gamification off and nothing earned."""
    if player is None:
        return {
            "playerId": player_id,
            "firstName": None,
            "lastName": None,
            "gamificationOpt": {"enable": False},
            "ranksData": {"rank": {"name": RANKS[0]}, "level": {"levelNumber": 1}, "xpBalance": 0},
            "walletData": {"balance": 0},
        }
    rng = random.Random(f"pepharness-pep-player:{seed}:{player_id}")
    level = rng.randint(1, LEVELS_PER_RANK * len(RANKS))
    rank = RANKS[(level - 1) // LEVELS_PER_RANK]
    return {
        "playerId": player.player_id,
        "firstName": player.first_name,
        "lastName": player.last_name,
        "gamificationOpt": {"enable": not player.is_test_account and rng.random() < 0.9},
        "ranksData": {
            "rank": {"name": rank},
            "level": {"levelNumber": level},
            "xpBalance": (level - 1) * XP_PER_LEVEL + rng.randrange(XP_PER_LEVEL),
        },
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
    """The player documents of one seed, by player id."""

    def __init__(self, seed: int, players: Mapping[str, Player]) -> None:
        self.seed = seed
        self.players = players

    def document(
        self, player_id: str, engine_state: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The player's document; its `ranksData` is the engine's when the engine has state
        for the player (`engine_state`), derived from the seed otherwise."""
        document = player_document(self.seed, player_id, self.players.get(player_id))
        if engine_state is not None:
            document["ranksData"] = ranks_data(engine_state)
        return document
