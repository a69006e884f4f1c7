"""The Platform gateway's request bodies, checked field by field into a list of problems.

Each event type is a table of fields: required or not, and a check that answers what is wrong
with a value (None when nothing is). Unknown keys are ignored, as the vendor's clients send
more than the documented fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pepharness.mocks.core.clock import parse_rfc3339

Check = Callable[[Any], str | None]

MONEY_STATUSES = ("APPROVED", "REJECTED", "PENDING", "CANCELED")
MONEY_TYPES = ("DEPOSIT", "WITHDRAW", "MANUAL_CREDIT", "MANUAL_DEBIT")
ROUND_TYPES = ("BET", "WIN")
MAX_ID = 256
MAX_TEXT = 1000
MAX_TAGS = 100
MAX_ROUND_ITEMS = 100
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
# The first day with an offset east of UTC, the last with one west of it: such a date-time may
# fall outside years 1 to 9999, so it is refused whatever its time (pep-platform.yaml DateTime).
_AT_THE_ENDS = re.compile(r"0001-01-01[Tt].*\+|9999-12-31[Tt].*-[0-9]{2}:[0-9]{2}")


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


# JSON Schema's `\S` is ECMA-262's: these are its white space and line terminators (Python's
# str.strip() also strips U+001C-U+001F and U+0085, which ECMA-262 does not).
ECMA_BLANK = frozenset(
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def blank(value: str) -> bool:
    r"""Whether `value` holds nothing but white space, as the contract's `\S` patterns see it."""
    return all(char in ECMA_BLANK for char in value)


def identifier(value: Any) -> str | None:
    if not isinstance(value, str) or blank(value):
        return "must be a non-empty string"
    return f"must be at most {MAX_ID} characters" if len(value) > MAX_ID else None


def text(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    return f"must be at most {MAX_TEXT} characters" if len(value) > MAX_TEXT else None


def id_or_number(value: Any) -> str | None:
    """A provider's or category's id: a string, or an integer >= 0 (JSON Schema counts 7.0 as
    an integer too)."""
    if isinstance(value, bool):
        return "must be a string or an integer >= 0"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return None if value >= 0 else "must be a string or an integer >= 0"
    return identifier(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


def number(value: Any) -> str | None:
    return None if _number(value) is not None else "must be a finite number"


def amount(value: Any) -> str | None:
    parsed = _number(value)
    return None if parsed is not None and parsed >= 0 else "must be a number >= 0"


def rate(value: Any) -> str | None:
    parsed = _number(value)
    return None if parsed is not None and parsed > 0 else "must be a number > 0"


def moment(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be an RFC 3339 date-time string"
    try:
        parse_rfc3339(value)
    except ValueError:
        return "must be an RFC 3339 date-time with an offset, e.g. 2026-11-25T10:00:00Z"
    if _AT_THE_ENDS.match(value):
        return "must not be 0001-01-01 east of UTC nor 9999-12-31 west of it"
    return None


def full_date(value: Any) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return "must be an RFC 3339 full-date, e.g. 1990-04-01"
    try:
        date.fromisoformat(value)
    except ValueError:
        return "is not a calendar date"
    return None


def currency(value: Any) -> str | None:
    ok = isinstance(value, str) and _CURRENCY.fullmatch(value)
    return None if ok else "must be an ISO 4217 code of 3 capital letters"


def country(value: Any) -> str | None:
    ok = isinstance(value, str) and _COUNTRY.fullmatch(value)
    return None if ok else "must be an ISO 3166-1 alpha-2 code"


def email(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) <= MAX_ID and re.fullmatch(r"[^@\s]+@[^@\s]+", value)
    return None if ok else "must be an e-mail address"


def one_of(*allowed: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}"

    return check


def tags(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        return f"must be a list of at most {MAX_TAGS} tags"
    if not all(isinstance(tag, str) and not blank(tag) and len(tag) <= MAX_ID for tag in value):
        return "every tag must be a non-empty string"
    return None


Fields = Mapping[str, tuple[bool, Check]]
"""Field name → (required, check)."""

MONEY: Fields = {
    "playerId": (True, identifier),
    "amount": (True, amount),
    "exchangeRate": (True, rate),
    "date": (True, moment),
    "currency": (True, currency),
    "transactionStatus": (True, one_of(*MONEY_STATUSES)),
    "transactionType": (True, one_of(*MONEY_TYPES)),
    "transactionId": (True, identifier),
    "realMoneyBalance": (True, number),
    "bonusMoneyBalance": (True, number),
    "cardType": (False, text),
    "paymentMethod": (False, text),
    "paymentProvider": (False, text),
    "playerIp": (False, text),
}

ROUND_ITEM: Fields = {
    "playerId": (True, identifier),
    "realMoneyAmount": (True, amount),
    "bonusMoneyAmount": (True, amount),
    "exchangeRate": (True, rate),
    "date": (True, moment),
    "currency": (True, currency),
    "transactionStatus": (True, one_of(*MONEY_STATUSES)),
    "transactionType": (True, one_of(*ROUND_TYPES)),
    "transactionId": (True, identifier),
    "gameCategoryId": (True, id_or_number),
    "gameCategoryName": (True, text),
    "gameProviderId": (True, id_or_number),
    "gameProviderName": (True, text),
    "gameId": (True, identifier),
    "gameName": (True, text),
    "gameSessionId": (True, identifier),
    "realMoneyBalance": (True, number),
    "bonusMoneyBalance": (True, number),
}

REGISTRATION: Fields = {
    "playerId": (True, identifier),
    "registrationDevice": (True, text),
    "date": (True, moment),
}

LOGIN: Fields = {"playerId": (True, identifier), "date": (True, moment)}

TAGS: Fields = {"playerId": (True, identifier), "tags": (True, tags)}

MIGRATED_PLAYER: Fields = {
    "playerId": (True, identifier),
    "registrationDate": (True, moment),
    "country": (False, country),
    "currency": (False, currency),
    "firstName": (False, text),
    "lastName": (False, text),
    "email": (False, email),
    "birthDate": (False, full_date),
    "tags": (False, tags),
}


def check(body: Any, fields: Fields, prefix: str = "") -> list[Problem]:
    """What is wrong with `body` (a JSON object with `fields`), each problem by field path."""
    if not isinstance(body, dict):
        return [Problem(prefix or "body", "must be a JSON object")]
    problems = []
    for name, (required, checker) in fields.items():
        path = f"{prefix}{name}"
        if name not in body or body[name] is None:
            if required:
                problems.append(Problem(path, "is required"))
            continue
        wrong = checker(body[name])
        if wrong:
            problems.append(Problem(path, wrong))
    return problems


def check_round(body: Any) -> list[Problem]:
    """A game round: 1 to 100 transactions of one player."""
    if not isinstance(body, dict):
        return [Problem("body", "must be a JSON object")]
    items = body.get("gameTransactionRound")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ROUND_ITEMS:
        return [Problem("gameTransactionRound", f"must be a list of 1 to {MAX_ROUND_ITEMS} "
                        "transactions")]
    problems = []
    for index, item in enumerate(items):
        problems += check(item, ROUND_ITEM, f"gameTransactionRound[{index}].")
    if not problems:
        players = {item["playerId"] for item in items}
        if len(players) > 1:
            problems.append(Problem("gameTransactionRound", "every transaction of a round "
                                    "belongs to one player"))
    return problems


def when(body: Mapping[str, Any], key: str = "date") -> datetime:
    """The checked date-time of `body[key]`."""
    return parse_rfc3339(str(body[key]))
