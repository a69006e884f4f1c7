"""The seeded generator: deterministic bytes, realistic volumes, the six-month window mattering."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pepharness import fixtures

ANCHOR = datetime(2026, 6, 15, tzinfo=UTC)


def digest(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
    }


@pytest.fixture(scope="module")
def data() -> fixtures.Dataset:
    return fixtures.generate(42, anchor=ANCHOR)


def test_same_seed_gives_byte_identical_dumps(tmp_path: Path) -> None:
    first = fixtures.dump(fixtures.generate(42, anchor=ANCHOR, rounds=600), tmp_path / "a")
    fixtures.generate(43, anchor=ANCHOR, rounds=0)  # the thread's one Faker drawn from (D190)
    second = fixtures.dump(fixtures.generate(42, anchor=ANCHOR, rounds=600), tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_different_seeds_differ(tmp_path: Path) -> None:
    fixtures.dump(fixtures.generate(42, anchor=ANCHOR, rounds=600), tmp_path / "a")
    fixtures.dump(fixtures.generate(43, anchor=ANCHOR, rounds=600), tmp_path / "b")
    first, second = digest(tmp_path / "a"), digest(tmp_path / "b")
    for name in ("providers.json", "games.json", "players.json", "rounds.json"):
        assert first[name] != second[name], name


def test_generation_does_not_touch_the_global_random() -> None:
    import random

    random.seed(1)
    expected = random.random()
    random.seed(1)
    fixtures.generate(5, anchor=ANCHOR, rounds=100)
    assert random.random() == expected


def test_volumes_and_variety(data: fixtures.Dataset) -> None:
    assert len(data.providers) >= 10
    assert len(data.games) >= 300
    assert len(data.rounds) == 4000
    assert all(1 <= len(r.transactions) <= 6 for r in data.rounds)
    assert len({g.game_category for g in data.games}) >= 5
    assert len({g.default_rtp for g in data.games}) > 100
    assert len({c for g in data.games for c in g.currencies}) >= 10
    assert len({r for g in data.games for r in g.supported_regulations}) >= 5
    assert len({g.game_name for g in data.games}) == len(data.games)
    assert len({g.game_id for g in data.games}) == len(data.games)
    assert all(float(g.default_rtp) < 100 for g in data.games)
    assert len(data.players) >= 100 and len(data.brands) >= 5


def test_every_provider_has_games(data: fixtures.Dataset) -> None:
    per_provider = Counter(g.provider_id for g in data.games)
    assert set(per_provider) == {p.id for p in data.providers}


def test_seeded_users_are_the_documented_ones(data: fixtures.Dataset) -> None:
    operator = data.user_by_email[fixtures.OPERATOR_EMAIL]
    assert operator.password == fixtures.OPERATOR_PASSWORD
    assert operator.available_operators == (fixtures.SEEDED_OPERATOR_ID,)
    assert set(operator.permissions) == set(fixtures.PERMISSIONS)
    restricted = data.user_by_email[fixtures.RESTRICTED_EMAIL]
    assert restricted.password == fixtures.RESTRICTED_PASSWORD
    assert restricted.permissions == ()
    assert fixtures.VIEW_GAMES_CATALOG == (1, "View games catalog")
    assert fixtures.VIEW_GAME_PROVIDERS == (27, "View Game provider list")


def test_history_spans_eight_months_so_the_six_month_window_matters(
    data: fixtures.Dataset,
) -> None:
    six_months = fixtures.months_before(ANCHOR, 6)
    eight_months = fixtures.months_before(ANCHOR, 8)
    starts = [r.started_at for r in data.rounds]
    assert all(eight_months <= s < ANCHOR for s in starts)
    older = sum(s < six_months for s in starts)
    assert 0.15 < older / len(starts) < 0.4
    assert any(s.date() == ANCHOR.date() or (ANCHOR - s).days < 1 for s in starts)
    assert starts == sorted(starts)


def test_the_seeds_repeated_trans_id_quirk_occurs(data: fixtures.Dataset) -> None:
    repeated = [
        r for r in data.rounds if len({t.trans_id for t in r.transactions}) < len(r.transactions)
    ]
    assert repeated
    for round_ in repeated:
        keys = {(t.trans_id, t.type) for t in round_.transactions}
        assert len(keys) == len(round_.transactions)


def test_mega_matches_mid_word(data: fixtures.Dataset) -> None:
    names = [g.game_name for g in data.games if "mega" in g.game_name.lower()]
    assert any(not name.lower().startswith("mega") for name in names)


def test_months_before_clips_to_the_months_length() -> None:
    assert fixtures.months_before(datetime(2026, 8, 31, tzinfo=UTC), 6) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert fixtures.months_before(datetime(2026, 1, 15, tzinfo=UTC), 8) == datetime(
        2025, 5, 15, tzinfo=UTC
    )


def test_a_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        fixtures.generate(1, anchor=datetime(2026, 1, 1))
