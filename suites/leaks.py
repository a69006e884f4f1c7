"""What an error answer must never show: a stack trace, an exception with its location, a path
of the server's source (OWASP ASVS 7.4.1: generic messages only)."""

from __future__ import annotations

import re
from typing import Any

SIGNS = (
    ("a Python traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("a Python frame", re.compile(r'File "[^"]+", line \d+')),
    ("a Java frame", re.compile(r"\bat [\w$.]+\([\w$]+\.(?:java|kt|scala):\d+\)")),
    ("a .NET frame", re.compile(r"\bat [\w.`<>]+\(.*\) in .+:line \d+")),
    ("a JavaScript frame", re.compile(r"\bat .+\((?:/|[A-Za-z]:\\).+\.[cm]?js:\d+:\d+\)")),
    ("a PHP error location", re.compile(r"\.php(?: on line |:)\d+")),
    ("a Go panic", re.compile(r"goroutine \d+ \[running\]")),
    ("a Ruby frame", re.compile(r"\.rb:\d+:in `")),
    ("an exception class", re.compile(
        r"\b(?:java\.lang\.|System\.)\w*Exception\b|\b(?:NullPointerException|KeyError|"
        r"TypeError|AttributeError|ValueError|IndexError|ZeroDivisionError|SQLException|"
        r"OperationalError|IntegrityError)\b"
    )),
    ("a SQL error", re.compile(r"(?i)\b(?:syntax error at or near|sqlite3?\.|ORA-\d{5}|"
                               r"You have an error in your SQL syntax)")),
    ("a debugger page", re.compile(r"(?i)werkzeug debugger|whitelabel error page")),
    ("a source path", re.compile(r"(?:/(?:home|usr|opt|srv|var|app)/[\w./-]+\.(?:py|rb|js|php|"
                                 r"java|go|cs))|site-packages/")),
)


def leaked(text: str) -> str | None:
    """What `text` (an answer's headers and body) shows of the server's insides, None if
    nothing: `a Python traceback: 'Traceback (most recent call last)'`."""
    for what, pattern in SIGNS:
        match = pattern.search(text)
        if match:
            return f"{what}: {match.group(0)[:120]!r}"
    return None


def answer_leaks(response: Any) -> str | None:
    """What an HTTP answer — its headers and its body — shows of the server's insides."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    return leaked(f"{headers}\n{response.text}")
