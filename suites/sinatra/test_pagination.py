"""The paginated history's pages, over windows and page sizes drawn by Hypothesis: they partition
the window's transactions, their envelope agrees, and the bounds of page_number/page_size hold."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
import requests
from hypothesis import given, note
from hypothesis import strategies as st

from pepharness.fixtures import TIME_PERIODS
from pepharness.suites import properties
from pepharness.suites.http import summarize
from pepharness.suites.rules import covers, fail
from pepharness.suites.sinatra import rules
from pepharness.suites.sinatra.client import (
    PAGINATED,
    Sinatra,
    body_of,
    days_ago,
    err_msg,
    label,
    transaction_ids,
)

OPERATION = label("GET", PAGINATED)
MAX_PAGES = 4
"""Pages walked per example: each costs a rate-limited request."""
WHOLE = 10_000

pytestmark = [pytest.mark.xdist_group("paginated")]

windows = st.one_of(
    st.sampled_from(TIME_PERIODS).map(lambda period: {"time_period": period}),
    st.tuples(st.integers(0, 29), st.integers(0, 29)).map(
        lambda days: {"from": days_ago(max(days)), "to": days_ago(min(days))}
    ),
)


def _page(sinatra: Sinatra, window: Mapping[str, str], number: int, size: int) -> requests.Response:
    return sinatra.page({**window, "page_number": str(number), "page_size": str(size)})


def _envelope(
    sinatra: Sinatra, response: requests.Response, number: int, size: int, total: int | None
) -> int:
    body = sinatra.expect(rules.PAGE_ENVELOPE, response, 200, what=f"page {number} of {size}")
    got = (body.get("page_num"), body.get("size_per_page"), body.get("total_count")) if isinstance(
        body, dict) else (None, None, None)
    want_total = got[2] if total is None else total
    if got != (number, size, want_total) or not isinstance(got[2], int):
        fail(
            rules.PAGE_ENVELOPE,
            "the page's envelope does not echo the request and the window",
            received=f"page_num={got[0]}, size_per_page={got[1]}, total_count={got[2]}",
            documented=f"page_num={number}, size_per_page={size}, total_count="
            f"{'the window' if total is None else total}",
            curl=sinatra.curl(response),
        )
    return int(got[2])


@covers(
    rules.PAGES_PARTITION,
    rules.PAGE_ENVELOPE,
    rules.PAGE_SIZE_BOUND,
    rules.PAST_THE_END_EMPTY,
    operation=OPERATION,
)
def test_pages_partition_the_window(sinatra: Sinatra) -> None:
    @given(window=windows, data=st.data())
    def walk(window: dict[str, str], data: st.DataObject) -> None:
        whole = _page(sinatra, window, 1, WHOLE)
        total = _envelope(sinatra, whole, 1, WHOLE, None)
        reference = transaction_ids(body_of(whole))
        complete = total <= WHOLE
        size = data.draw(
            st.integers(max(1, math.ceil(total / MAX_PAGES)), max(1, total + 2)), label="page_size"
        )
        pages = math.ceil(total / size)
        note(f"{total} transactions, {pages} pages of {size}")
        seen: dict[tuple[str, str, str], int] = {}
        last: requests.Response = whole
        for number in range(1, pages + 1):
            last = _page(sinatra, window, number, size)
            _envelope(sinatra, last, number, size, total)
            ids = transaction_ids(body_of(last))
            if len(ids) > size:
                fail(
                    rules.PAGE_SIZE_BOUND,
                    f"page {number} holds {len(ids)} transactions",
                    received=f"{len(ids)} transactions in {len(body_of(last)['responses'])} "
                    f"rounds on page {number} of page_size={size}",
                    documented=f"at most page_size={size} transactions (not rounds)",
                    curl=sinatra.curl(last),
                )
            for identity in ids:
                if identity in seen:
                    fail(
                        rules.PAGES_PARTITION,
                        "a transaction is on two pages",
                        received=f"(round_id, trans_id, type)={identity} on pages "
                        f"{seen[identity]} and {number} (page_size={size})",
                        documented="each transaction on exactly one page",
                        curl=sinatra.curl(last),
                    )
                seen[identity] = number
        if complete and (set(seen) != set(reference) or len(seen) != total):
            missing = set(reference) - set(seen)
            fail(
                rules.PAGES_PARTITION,
                "walking the pages does not give the window's transactions",
                received=f"{len(seen)} transactions over {pages} pages of {size}; "
                f"{len(missing)} of the window missing, e.g. {sorted(missing)[:2]}",
                documented=f"the {total} transactions of the window (total_count), each once",
                curl=sinatra.curl(last),
            )
        beyond = _page(sinatra, window, pages + 1, size)
        body = sinatra.expect(rules.PAST_THE_END_EMPTY, beyond, 200,
                              what=f"page {pages + 1}, after the last")
        extra = transaction_ids(body)
        if extra:
            fail(
                rules.PAST_THE_END_EMPTY,
                f"page {pages + 1} of {pages} holds transactions",
                received=f"{len(extra)} transactions, e.g. {extra[0]}",
                documented="an empty page (responses: [])",
                curl=sinatra.curl(beyond),
            )

    properties.run(walk, sinatra.options, examples=sinatra.options.paced_examples, shrink=False)


BOUNDS = [
    ({"page_number": "0"}, 422),
    ({"page_number": "-1"}, 422),
    ({"page_size": "0"}, 422),
    ({"page_size": "10001"}, 422),
    ({"page_number": "first"}, 400),
    ({"page_size": "1.5"}, 400),
]


@covers(rules.PAGE_BOUNDS, operation=OPERATION)
def test_page_bounds_are_enforced(sinatra: Sinatra) -> None:
    for params, status in BOUNDS:
        response = sinatra.page({"time_period": "last 7 days", **params})
        text = "Invalid parameters" if status == 422 else None
        if response.status_code != status or (text is not None and err_msg(response) != text):
            fail(
                rules.PAGE_BOUNDS,
                f"{'&'.join(f'{k}={v}' for k, v in params.items())} is not refused as documented",
                received=summarize(response),
                documented=f"{status}" + (f" {{\"errMsg\": \"{text}\"}}" if text else ""),
                curl=sinatra.curl(response),
            )
