"""Game history: time windows and transaction-counted pages whose cost is independent of depth."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import accumulate

from pepharness.fixtures import Dataset, Round, Transaction
from pepharness.mocks.sinatra.params import HistoryQuery, Page, RoundFilters

TIME_PERIODS = ("today", "yesterday", "last 7 days", "last 30 days")
HISTORY_MONTHS = 6
DAY = timedelta(days=1)
MAX_SCOPES = 64
"""Operator sets whose index is kept; the oldest is dropped beyond that."""


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) of round start times."""

    start: datetime
    end: datetime


def six_months_before(now: datetime) -> datetime:
    """The same wall time six calendar months earlier (the day clipped to the month's length)."""
    month_index = now.year * 12 + now.month - 1 - HISTORY_MONTHS
    year, month = divmod(month_index, 12)
    month += 1
    following = date(year + month // 12, month % 12 + 1, 1)
    last_day = (following - timedelta(days=1)).day
    return now.replace(year=year, month=month, day=min(now.day, last_day))


def window_for(now: datetime, period: str, first: date | None, last: date | None) -> Window:
    """The window a request asks for; `from`/`to` (inclusive days) win over `time_period`.

    Whatever is asked, history reaches back six months and no further: an older start is
    clamped, never refused.
    """
    midnight = datetime.combine(now.date(), time(), now.tzinfo)
    if first is not None and last is not None:
        start = datetime.combine(first, time(), now.tzinfo)
        # A `to` of today or later ends the window now (D19); only an earlier day has a
        # following midnight to compute, so 9999-12-31 never overflows.
        end = now if last >= now.date() else datetime.combine(last, time(), now.tzinfo) + DAY
    elif period == "today":
        start, end = midnight, now
    elif period == "yesterday":
        start, end = midnight - timedelta(days=1), midnight
    elif period == "last 7 days":
        start, end = midnight - timedelta(days=6), now
    elif period == "last 30 days":
        start, end = midnight - timedelta(days=29), now
    else:
        raise ValueError(f"unknown time period {period!r}")
    start = max(start, six_months_before(now))
    return Window(start, max(start, min(end, now)))


@dataclass(frozen=True)
class PageShare:
    """A round and the part of its transactions that falls on one page."""

    round: Round
    transactions: Sequence[Transaction]


class RoundIndex:
    """Rounds sorted by start time with prefix sums of their transaction counts.

    `page_size` counts transactions, not rounds, so a page starts and ends inside rounds: a
    round straddling a boundary is on both pages with its own share of transactions. Finding a
    page is two binary searches, whatever its number or the size of the data.
    """

    def __init__(self, rounds: Sequence[Round]) -> None:
        self.rounds = sorted(rounds, key=lambda r: (r.started_at, r.round_id))
        self.starts = [r.started_at.timestamp() for r in self.rounds]
        self.offsets = [0, *accumulate(len(r.transactions) for r in self.rounds)]

    def span(self, window: Window) -> tuple[int, int]:
        """Indexes [lo, hi) of the rounds that start within the window."""
        lo = bisect_left(self.starts, window.start.timestamp())
        hi = bisect_left(self.starts, window.end.timestamp(), lo)
        return lo, hi

    def rounds_in(self, window: Window) -> Sequence[Round]:
        lo, hi = self.span(window)
        return self.rounds[lo:hi]

    def transaction_count(self, lo: int, hi: int) -> int:
        return self.offsets[hi] - self.offsets[lo]

    def page(self, lo: int, hi: int, page_number: int, page_size: int) -> list[PageShare]:
        """The shares of rounds [lo, hi) on page `page_number` of `page_size` transactions."""
        end = self.offsets[hi]
        first = self.offsets[lo] + (page_number - 1) * page_size
        if first >= end:
            return []
        last = min(first + page_size, end)
        index = bisect_right(self.offsets, first) - 1
        shares = []
        while index < hi and self.offsets[index] < last:
            base = self.offsets[index]
            round_ = self.rounds[index]
            start, stop = max(first, base) - base, min(last, self.offsets[index + 1]) - base
            shares.append(PageShare(round_, round_.transactions[start:stop]))
            index += 1
        return shares


class History:
    """The rounds of one dataset, with a `RoundIndex` per operator scope built on first use.

    A user sees the rounds of their operators' brands (D25); every user of the same operators
    shares one index, so a page never costs more than its own rounds. Thread-safe.
    """

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self._operator_of = {b.brand_id: b.operator_id for b in data.brands}
        self._indexes: dict[frozenset[int], RoundIndex] = {}
        self._lock = threading.Lock()

    def operator_of(self, round_: Round) -> int:
        return self._operator_of[round_.brand_id]

    def index(self, operators: frozenset[int]) -> RoundIndex:
        """The index of every round of `operators`' brands, built once per operator set."""
        with self._lock:
            index = self._indexes.get(operators)
            if index is None:
                if len(self._indexes) >= MAX_SCOPES:
                    self._indexes.pop(next(iter(self._indexes)))
                index = RoundIndex(
                    [r for r in self.data.rounds if self._operator_of[r.brand_id] in operators]
                )
                self._indexes[operators] = index
            return index

    def select(
        self, operators: frozenset[int], query: HistoryQuery, now: datetime
    ) -> tuple[RoundIndex, int, int]:
        """The index and the span [lo, hi) of its rounds that the query asks for."""
        window = window_for(now, query.period, query.first, query.last)
        if query.round_ids is None:
            index = self.index(operators)
        else:
            # Only the named rounds are indexed: the cost follows the ids, not the data.
            found = (self.data.round_by_id.get(round_id) for round_id in query.round_ids)
            index = RoundIndex(
                [r for r in found if r is not None and self._operator_of[r.brand_id] in operators]
            )
        lo, hi = index.span(window)
        return index, lo, hi

    def page(
        self, operators: frozenset[int], query: HistoryQuery, page: Page, now: datetime
    ) -> tuple[int, list[PageShare]]:
        """(total transactions of the selection, the shares of rounds on the page)."""
        index, lo, hi = self.select(operators, query, now)
        return index.transaction_count(lo, hi), index.page(lo, hi, page.number, page.size)

    def rounds(
        self,
        operators: frozenset[int],
        query: HistoryQuery,
        filters: RoundFilters,
        now: datetime,
    ) -> list[Round]:
        """Every selected round that passes the plain history's filters."""
        index, lo, hi = self.select(operators, query, now)
        return [r for r in index.rounds[lo:hi] if self._passes(r, filters)]

    def _passes(self, round_: Round, filters: RoundFilters) -> bool:
        brand = self.data.brand_by_id[round_.brand_id]
        game = self.data.game_by_id[round_.game_id]
        return (
            (filters.brand_ids is None or brand.brand_id in filters.brand_ids)
            and (filters.operator_id is None or brand.operator_id == filters.operator_id)
            and (
                filters.organization_ids is None
                or brand.organization_id in filters.organization_ids
            )
            and (filters.provider_ids is None or game.provider_id in filters.provider_ids)
            and (
                filters.game_categories is None
                or game.game_category.casefold() in filters.game_categories
            )
            and (filters.game_types is None or game.game_type.casefold() in filters.game_types)
            and (filters.game_id is None or round_.game_id == filters.game_id)
            and (filters.player_id is None or round_.player_id == filters.player_id)
        )

    def find(self, casino_id: int, game_id: str, round_id: str) -> Round | None:
        """The round `round_id` if it is of that game at that casino (operator), else None."""
        round_ = self.data.round_by_id.get(round_id)
        if (
            round_ is None
            or round_.game_id != game_id
            or self._operator_of[round_.brand_id] != casino_id
        ):
            return None
        return round_
