"""Sinatra's request parameters parsed into typed queries: 400 when unparseable, 422 when refused.

Plain functions over a query mapping (Flask's `request.args` or any dict), so the rules are
tested without HTTP. An empty optional parameter (`game_name=`) is the parameter left out,
except `from=` / `to=`, which the seed defines as today.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

from pepharness.fixtures import TIME_PERIODS
from pepharness.mocks.sinatra.errors import BadRequest, InvalidParameters

DEFAULT_DATE_FROM = "1970-01-01"
DEFAULT_PAGE_NUMBER = 1
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 10_000
MAX_ID_LENGTH = 64
MAX_INTEGER_DIGITS = 18
MAX_INTEGER = 10**MAX_INTEGER_DIGITS - 1

_INTEGER = re.compile(r"([+-]?)([0-9]+)", re.ASCII)
_DIGITS = re.compile(r"\d{1,32}", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_LISTED_ID = re.compile(r"\d{1,18}", re.ASCII)
_ROUND_ID = re.compile(rf"[0-9A-Za-z_-]{{1,{MAX_ID_LENGTH}}}", re.ASCII)

Query = Mapping[str, str]


@dataclass(frozen=True)
class CatalogQuery:
    """The catalog's filters; text filters are case-folded, absent filters None."""

    date_from: str = DEFAULT_DATE_FROM
    operator_id: int | None = None
    providers: frozenset[int] | None = None
    identifier: str | None = None
    game_ids: frozenset[str] | None = None
    name: str | None = None


@dataclass(frozen=True)
class HistoryQuery:
    """Which rounds a history request asks for: `first`/`last` (inclusive days) both or neither;
    `period` counts only without them."""

    period: str = "today"
    first: date | None = None
    last: date | None = None
    round_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Page:
    number: int = DEFAULT_PAGE_NUMBER
    size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class RoundFilters:
    """The plain history's extra filters (VENDOR-FACTS.md); None means "any"."""

    brand_ids: frozenset[int] | None = None
    operator_id: int | None = None
    organization_ids: frozenset[int] | None = None
    provider_ids: frozenset[int] | None = None
    game_categories: frozenset[str] | None = None
    game_types: frozenset[str] | None = None
    game_id: str | None = None
    player_id: str | None = None


def _given(query: Query, name: str) -> str | None:
    """The parameter as sent; an empty value is a value (and malformed where the contract's
    schema refuses ""), so that the mock rejects what the contract rejects."""
    return query.get(name)


def _free_text(query: Query, name: str) -> str | None:
    """A free-text filter; empty filters nothing."""
    return query.get(name) or None


def integer(text: str) -> int | None:
    """`text` as an integer (D37, D71), else None: an optional sign, then ASCII digits of which
    at most 18 are significant (leading zeros allowed: `type: integer` reads `007` as 7); no
    exponent, no decimal point, no blanks, no other script's digits."""
    match = _INTEGER.fullmatch(text)
    if match is None:
        return None
    sign, digits = match.groups()
    significant = digits.lstrip("0") or "0"
    if len(significant) > MAX_INTEGER_DIGITS:
        return None
    return -int(significant) if sign == "-" else int(significant)


def _integer(query: Query, name: str) -> int | None:
    text = _given(query, name)
    if text is None:
        return None
    value = integer(text)
    if value is None:
        raise BadRequest()
    return value


def _integers(query: Query, name: str) -> frozenset[int] | None:
    text = _given(query, name)
    if text is None:
        return None
    items = text.split(",")
    if not all(_LISTED_ID.fullmatch(item) for item in items):
        raise BadRequest()
    return frozenset(int(item) for item in items)


def _words(query: Query, name: str) -> frozenset[str] | None:
    text = _free_text(query, name)
    if text is None:
        return None
    # Free text: empty items (`a,,b`, a lone space) are dropped, and nothing left filters nothing.
    words = frozenset(item.strip().casefold() for item in text.split(",")) - {""}
    return words or None


def _parse_day(text: str) -> date:
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadRequest()


def _day(query: Query, name: str, today: date) -> date | None:
    if name not in query:
        return None
    text = query[name]
    # The seed: "specified with no value, the default value is the current date".
    return _parse_day(text) if text else today


def parse_catalog(query: Query) -> CatalogQuery:
    """The catalog's filters; 400 for a malformed one (D10)."""
    date_from = _given(query, "date_from")
    game_ids = _integers(query, "game_ids")
    identifier = _free_text(query, "game_identifire")
    name = _free_text(query, "game_name")
    return CatalogQuery(
        date_from=DEFAULT_DATE_FROM if date_from is None else _parse_day(date_from).isoformat(),
        operator_id=_integer(query, "operator_id"),
        providers=_integers(query, "sub_provider"),
        identifier=identifier.casefold() if identifier else None,
        game_ids=frozenset(str(i) for i in game_ids) if game_ids is not None else None,
        name=name.casefold() if name else None,
    )


def parse_history(query: Query, today: date) -> HistoryQuery:
    """The window and round ids of either history endpoint (D17, D20, D21); every syntax check
    (400) comes before every rule check (422)."""
    first, last = _day(query, "from", today), _day(query, "to", today)
    period = query.get("time_period", "today")
    both = first is not None and last is not None
    if not both and period not in TIME_PERIODS:
        raise BadRequest()
    round_ids = _round_ids(query)
    if (first is None) != (last is None):
        raise InvalidParameters()
    if first is not None and last is not None and first > last:
        raise InvalidParameters()
    return HistoryQuery(period, first, last, round_ids)


def _round_ids(query: Query) -> tuple[str, ...] | None:
    # The seed: "If empty, all rounds are returned."
    text = _free_text(query, "round_ids")
    if text is None:
        return None
    ids = text.split(",")
    if not all(_ROUND_ID.fullmatch(item) for item in ids):
        raise BadRequest()
    return tuple(dict.fromkeys(ids))


def parse_paged_history(query: Query, today: date) -> tuple[HistoryQuery, Page]:
    """The paginated history's window, round ids and page (D17): `page_number` and `page_size`
    are integers (400), at least 1, and `page_size` at most 10000 (422)."""
    number, size = _integer(query, "page_number"), _integer(query, "page_size")
    history = parse_history(query, today)
    page = Page(
        DEFAULT_PAGE_NUMBER if number is None else number,
        DEFAULT_PAGE_SIZE if size is None else size,
    )
    if page.number < 1 or page.size < 1 or page.size > MAX_PAGE_SIZE:
        raise InvalidParameters()
    return history, page


def parse_plain_history(query: Query, today: date) -> tuple[HistoryQuery, RoundFilters]:
    """The plain history's window, round ids and VENDOR-FACTS.md filters (D28)."""
    filters = _round_filters(query)
    return parse_history(query, today), filters


def _round_filters(query: Query) -> RoundFilters:
    game_id = _given(query, "game_id")
    if game_id is not None and not _DIGITS.fullmatch(game_id):
        raise BadRequest()
    return RoundFilters(
        brand_ids=_integers(query, "brand_ids"),
        operator_id=_integer(query, "operator_id"),
        organization_ids=_integers(query, "organization_ids"),
        provider_ids=_integers(query, "provider_ids"),
        game_categories=_words(query, "game_category"),
        game_types=_words(query, "game_type"),
        game_id=game_id,
        player_id=_free_text(query, "player_id"),
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


_LOGIN_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def parse_login(body: bytes) -> tuple[str, str]:
    """(email, password) from a login body; 400 `Bad Request` unless it is a JSON object with
    string `email` and `password` (D2)."""
    try:
        # json.loads(body, parse_constant=…), without building a decoder for every login.
        document: Any = _LOGIN_JSON.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, RecursionError):
        raise BadRequest() from None
    if not isinstance(document, dict):
        raise BadRequest()
    email, password = document.get("email"), document.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise BadRequest()
    return email, password


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic …` header (RFC 7617), None if there is none
    or it is malformed."""
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None
