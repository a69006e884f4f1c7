"""Boundary values by kind, each as the exact bytes it is sent as: in a path, query or header,
and as a JSON literal in a body (some on purpose not valid JSON, or not UTF-8)."""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class Value:
    """One boundary value: what reports call it, its bytes as text, its bytes as a JSON literal,
    and whether the value is an impossible date (which a service must refuse with a 4xx)."""

    name: str
    text: bytes
    json: bytes
    impossible: bool = False

    @property
    def header_safe(self) -> bool:
        """Whether http.client can send it as a header value (it refuses NUL, CR and LF)."""
        return not any(byte in self.text for byte in b"\x00\r\n")


def _plain(name: str, text: str, *, impossible: bool = False, number: bool = False) -> Value:
    literal = text if number else f'"{text}"'
    return Value(name, text.encode(), literal.encode(), impossible)


DATES = (
    _plain("smallest date", "0001-01-01"),
    _plain("largest date", "9999-12-31"),
    _plain("impossible date 30 February", "2026-02-30", impossible=True),
    _plain("impossible date month 13", "2026-13-01", impossible=True),
    _plain("impossible date day 0", "2026-01-00", impossible=True),
)
"""RFC 3339 full-date: the smallest and largest it admits, and dates that do not exist."""

DATE_TIMES = (
    _plain("smallest date-time", "0001-01-01T00:00:00Z"),
    _plain("largest date-time", "9999-12-31T23:59:59.999999Z"),
    _plain("largest date-time, far west offset", "9999-12-31T23:59:59-23:59"),
    _plain("impossible date-time 30 February", "2026-02-30T00:00:00Z", impossible=True),
    _plain("impossible date-time month 13", "2026-13-01T00:00:00Z", impossible=True),
    _plain("impossible time 24:00:00", "2026-01-01T24:00:00Z", impossible=True),
)
"""RFC 3339 date-time: the smallest and largest it admits, and instants that do not exist."""

INTEGERS = (
    _plain("int64 max", "9223372036854775807", number=True),
    _plain("int64 max + 1", "9223372036854775808", number=True),
    _plain("int64 min - 1", "-9223372036854775809", number=True),
    _plain("18 digits", "123456789012345678", number=True),
    _plain("19 digits", "1234567890123456789", number=True),
    _plain("explicit plus sign", "+1", number=True),
    _plain("minus one", "-1", number=True),
    _plain("leading zeros", "007", number=True),
    _plain("exponent", "1e3", number=True),
    _plain("float", "1.5", number=True),
    _plain("largest double", "1.7976931348623157e308", number=True),
    Value("non-ASCII digits", "١٢".encode(), '"١٢"'.encode()),
)
"""Integers at and past int64, 18 and 19 digits, signs, leading zeros, exponents, floats and
digits that str.isdigit() takes but int() parsers may not."""

TEXTS = (
    # A lone surrogate: JSON can escape it; as bytes it is the UTF-8 encoder's refusal (CESU-8).
    Value("lone surrogate", b"\xed\xa0\x80", b'"\\ud800"'),
    _plain("empty string", ""),
    Value("non-UTF-8 bytes", b"\xff\xfe", b'"\xff\xfe"'),
    Value("NUL", b"\x00", b'"\\u0000"'),
    _plain("blank string", "   "),
)
"""Text no parameter is safe from: what cannot be encoded or stored (first: a capped list keeps
these), empty and blank."""

WHOLE_BODIES = (
    Value("body of non-UTF-8 bytes", b"\xff\xfe\xfd", b"\xff\xfe\xfd"),
    Value("body: a JSON string with a lone surrogate", b'"\\ud800"', b'"\\ud800"'),
    Value("body of a NUL", b"\x00", b"\x00"),
)
"""Bodies that are wrong as a whole, before any field is read."""


def basic(user: bytes, password: bytes) -> bytes:
    return b"Basic " + base64.b64encode(user + b":" + password)


CREDENTIALS_BASIC = (
    Value("Basic with non-UTF-8 user and password", basic(b"\xff\xfe", b"\xff"), b""),
    Value("Basic with a lone surrogate", basic(b"\xed\xa0\x80", b"secret"), b""),
    Value("Basic with a NUL user", basic(b"\x00", b"secret"), b""),
    Value("Basic that is not base64", b"Basic \xff\xfe", b""),
    Value("Basic with no colon", b"Basic " + base64.b64encode(b"\xff"), b""),
)
"""Malformed HTTP Basic credentials (RFC 7617): bytes that are not UTF-8 among them."""

CREDENTIALS_TOKEN = (
    Value("token of non-UTF-8 bytes", b"\xff\xfe", b""),
    Value("token with a lone surrogate", b"\xed\xa0\x80", b""),
    Value("empty token", b"", b""),
)
"""Malformed tokens in a token header (jwt-auth, x-authorization, Bearer)."""


def kinds(types: set[str], formats: set[str]) -> tuple[Value, ...]:
    """The values for a parameter or field of these JSON Schema types and formats: its kind's
    boundaries and the text every value can be, interleaved."""
    own: list[Value] = []
    if "date" in formats:
        own += DATES
    if "date-time" in formats:
        own += DATE_TIMES
    if types & {"integer", "number"}:
        own += INTEGERS
    # Interleaved, so that the first few values of a capped list (a rate-limited operation)
    # hold both kinds.
    found: list[Value] = []
    for index in range(max(len(own), len(TEXTS))):
        found += own[index:index + 1] + list(TEXTS[index:index + 1])
    return tuple(found)
