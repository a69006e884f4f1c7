"""Boundary values sent on purpose: from a well-formed request of each operation of a contract,
one request per boundary value in one place (a path, query, header or credential value, a body
field, the body), built and sent as the exact bytes, each 5xx a failure with a curl line."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from pepharness.suites import documents
from pepharness.suites.boundary_values import (
    CREDENTIALS_BASIC,
    CREDENTIALS_TOKEN,
    WHOLE_BODIES,
    Value,
    kinds,
)
from pepharness.suites.http import Expand, Secrets, Target, _quoted, summarize
from pepharness.suites.rules import Rule, RuleFailure, RuleFailures

NO_BODY = object()
MAX_LISTED = 12
"""Failures listed per operation: the rest are counted."""
_SENTINEL = "\u2063pepharness-boundary\u2063"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@dataclass
class Base:
    """A well-formed request of one operation, authenticated as the suite authenticates: each
    probe changes one thing of it."""

    operation: str
    """`GET /games/{version}/view/detailed`: the contract's method and path template."""
    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = NO_BODY
    """A JSON document (a mapping: each field is probed), or NO_BODY."""
    form: Mapping[str, str] | None = None
    credential: str | None = None
    """The header that carries the credentials (probed with malformed ones)."""
    basic: bool = False
    """Whether those credentials are HTTP Basic."""
    companions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Query parameters that go together (`from` and `to`): sent beside the one probed."""

    @property
    def method(self) -> str:
        return self.operation.split(" ", 1)[0]

    @property
    def template(self) -> str:
        return self.operation.split(" ", 1)[1]


@dataclass(frozen=True)
class Probe:
    """One request with one boundary value in one place."""

    operation: str
    where: str
    value: Value
    method: str
    target: str
    """The path and query, percent-encoded: what follows the base URL."""
    headers: Mapping[str, str | bytes]
    body: bytes | None = None

    @property
    def label(self) -> str:
        return f"{self.where} = {self.value.name}"


# -- the contract's parameters ----------------------------------------------------------------


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _types(document: Mapping[str, Any], schema: Any) -> tuple[set[str], set[str]]:
    """The JSON Schema types and formats a schema admits, through refs and combinators."""
    schema = _resolve(document, schema)
    types: set[str] = set()
    formats: set[str] = set()
    if not isinstance(schema, Mapping):
        return types, formats
    kind = schema.get("type")
    types.update([kind] if isinstance(kind, str) else list(kind or []))
    if isinstance(schema.get("format"), str):
        formats.add(schema["format"])
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key) or []:
            more_types, more_formats = _types(document, part)
            types |= more_types
            formats |= more_formats
    if "items" in schema:
        more_types, more_formats = _types(document, schema["items"])
        types |= more_types
        formats |= more_formats
    return types, formats


@dataclass(frozen=True)
class Parameter:
    location: str
    name: str
    types: frozenset[str]
    formats: frozenset[str]

    @property
    def values(self) -> tuple[Value, ...]:
        return kinds(set(self.types), set(self.formats))


def parameters(contract: str, operation: str) -> list[Parameter]:
    """The path, query and header parameters of `operation` in `contract`."""
    document = documents.load(contract)
    method, template = operation.split(" ", 1)
    item = document.get("paths", {}).get(template, {})
    found: dict[tuple[str, str], Parameter] = {}
    for raw in [*item.get("parameters", []), *item.get(method.lower(), {}).get("parameters", [])]:
        parameter = _resolve(document, raw)
        types, formats = _types(document, parameter.get("schema", {}))
        key = (parameter["in"], parameter["name"])
        found[key] = Parameter(key[0], key[1], frozenset(types), frozenset(formats))
    return list(found.values())


def operations(contract: str) -> list[str]:
    return [f"{method} {template}" for method, template, _ in documents.operations(contract)]


def dates_of(contract: str, operation: str) -> list[Parameter]:
    """The parameters of `operation` that are dates or date-times."""
    return [p for p in parameters(contract, operation) if p.formats & {"date", "date-time"}]


# -- building probes ----------------------------------------------------------------------------


def _encoded(value: str | bytes) -> str:
    return quote(value, safe="")


def _query(pairs: Iterable[tuple[str, str | bytes]]) -> str:
    return "&".join(f"{_encoded(name)}={_encoded(value)}" for name, value in pairs)


def _url(base: Base, path: Mapping[str, str | bytes], query: Iterable[tuple[str, str | bytes]]
         ) -> str:
    url = base.template
    for name, value in path.items():
        url = url.replace("{" + name + "}", _encoded(value))
    text = _query(query)
    return f"{url}?{text}" if text else url


def _body_bytes(base: Base) -> tuple[bytes | None, dict[str, str]]:
    if base.form is not None:
        return _query(base.form.items()).encode(), {
            "Content-Type": "application/x-www-form-urlencoded"
        }
    if base.body is not NO_BODY:
        return json.dumps(base.body).encode(), {"Content-Type": "application/json"}
    return None, {}


def _value_kinds(sample: Any) -> tuple[Value, ...]:
    """The values for a body field, from the kind of its well-formed sample."""
    if isinstance(sample, bool):
        return kinds(set(), set())
    if isinstance(sample, int | float):
        return kinds({"number"}, set())
    if isinstance(sample, str) and _DATE_TIME.fullmatch(sample):
        return kinds({"string"}, {"date-time"})
    if isinstance(sample, str) and _DATE.fullmatch(sample):
        return kinds({"string"}, {"date"})
    return kinds({"string"}, set())


def _fields(body: Any) -> Iterable[tuple[str, list[str | int], Any]]:
    """(name, path, sample) of the body's fields: the top level's, and those of the first item
    of a list of objects."""
    if not isinstance(body, Mapping):
        return
    for key, sample in body.items():
        if isinstance(sample, list) and sample and isinstance(sample[0], Mapping):
            for inner, inner_sample in sample[0].items():
                yield f"{key}[0].{inner}", [key, 0, inner], inner_sample
        else:
            yield key, [key], sample


def _with(body: Any, path: Sequence[str | int], replacement: Any) -> Any:
    copied = json.loads(json.dumps(body))
    node = copied
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = replacement
    return copied


def probes(contract: str, base: Base) -> list[Probe]:
    """Every probe of `base`: each boundary value in each parameter, body field and credential,
    whole bodies that are wrong, and each query or form parameter repeated."""
    found: list[Probe] = []
    body, content = _body_bytes(base)
    headers: dict[str, str | bytes] = {**base.headers, **content}
    path: dict[str, str | bytes] = dict(base.path)

    def add(where: str, value: Value, *, url: str | None = None,
            sent: Mapping[str, str | bytes] | None = None, data: bytes | None = body) -> None:
        found.append(Probe(
            base.operation, where, value, base.method,
            url if url is not None else _url(base, path, base.query.items()),
            dict(sent if sent is not None else headers), data,
        ))

    for parameter in parameters(contract, base.operation):
        for value in parameter.values:
            if parameter.location == "path":
                if not value.text:
                    continue  # an empty segment is another route, not this parameter's value
                add(f"path {parameter.name}", value,
                    url=_url(base, {**path, parameter.name: value.text}, base.query.items()))
            elif parameter.location == "query":
                query: dict[str, str | bytes] = {
                    **base.query, **base.companions.get(parameter.name, {}),
                    parameter.name: value.text,
                }
                add(f"query {parameter.name}", value, url=_url(base, path, query.items()))
            elif parameter.location == "header" and value.header_safe:
                add(f"header {parameter.name}", value,
                    sent={**headers, parameter.name: value.text})
        if parameter.location == "query":
            first: str | bytes = base.query.get(parameter.name, "1")
            pairs = [*base.companions.get(parameter.name, {}).items(),
                     *[(k, v) for k, v in base.query.items() if k != parameter.name],
                     (parameter.name, first), (parameter.name, "2")]
            add(f"query {parameter.name} repeated", Value("repeated parameter", b"", b""),
                url=_url(base, path, pairs))
    if base.credential is not None:
        for value in CREDENTIALS_BASIC if base.basic else CREDENTIALS_TOKEN:
            add(f"credentials {base.credential}", value,
                sent={**headers, base.credential: value.text})
    if base.form is not None:
        for name in base.form:
            for value in kinds({"string"}, set()):
                form: dict[str, str | bytes] = {**base.form, name: value.text}
                add(f"form {name}", value, data=_query(form.items()).encode())
            repeated = [*base.form.items(), (name, "password" if name == "grant_type" else "x")]
            add(f"form {name} repeated", Value("repeated parameter", b"", b""),
                data=_query(repeated).encode())
    if base.body is not NO_BODY:
        for name, where, sample in _fields(base.body):
            template = json.dumps(_with(base.body, where, _SENTINEL)).encode()
            placeholder = json.dumps(_SENTINEL).encode()
            for value in _value_kinds(sample):
                add(f"body {name}", value, data=template.replace(placeholder, value.json))
    if body is not None:
        for value in WHOLE_BODIES:
            add("body", value, data=value.json)
    return found


def spread(found: Sequence[Probe], limit: int) -> list[Probe]:
    """At most `limit` probes, taken in turn from each place (so every parameter keeps its first
    values): for the rate-limited operations."""
    if len(found) <= limit:
        return list(found)
    places: dict[str, list[Probe]] = {}
    for probe in found:
        places.setdefault(probe.where, []).append(probe)
    chosen: list[Probe] = []
    turn = 0
    while len(chosen) < limit:
        for queue in places.values():
            if turn < len(queue) and len(chosen) < limit:
                chosen.append(queue[turn])
        turn += 1
    return chosen


def impossible(found: Iterable[Probe]) -> list[Probe]:
    return [probe for probe in found if probe.value.impossible]


# -- sending and judging -----------------------------------------------------------------------


def send(target: Target, probe: Probe, *, raw: bool = False) -> requests.Response:
    """Send `probe` as its exact bytes (the URL already percent-encoded, the body as is)."""
    return target.request(
        probe.method, probe.target, data=probe.body, headers=dict(probe.headers), raw=raw
    )


def curl(base_url: str, probe: Probe, secrets: Secrets | None = None) -> str:
    """A curl line that sends `probe`'s exact bytes (ANSI-C quoting, `$'\\xff'`, where they are
    not printable text), the suite's secrets as shell variables."""
    secrets = secrets or Secrets()
    words: list[str] = ["curl", "-sS", "-i"]
    if probe.method != "GET":
        words += ["-X", probe.method]
    for name, value in probe.headers.items():
        text = value if isinstance(value, str) else None
        credentials = secrets.basic(text) if text and name.lower() == "authorization" else None
        if credentials:
            words += ["-u", _quoted(Expand(credentials), secrets)]
            continue
        words += ["-H", _word(name.encode() + b": " + _bytes(value), secrets)]
    if probe.body is not None:
        words += ["--data-binary", _word(probe.body, secrets)]
    words.append(_word((base_url.rstrip("/") + probe.target).encode(), secrets))
    return " ".join(words)


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def _word(data: bytes, secrets: Secrets) -> str:
    """One shell word holding exactly `data`."""
    if all(0x20 <= byte < 0x7F for byte in data):
        return _quoted(data.decode("ascii"), secrets)
    escaped = "".join(
        chr(byte) if 0x20 <= byte < 0x7F and byte not in b"\\'" else f"\\x{byte:02x}"
        for byte in data
    )
    return f"$'{escaped}'"


def never_5xx(
    target: Target,
    rule: Rule,
    found: Sequence[Probe],
    *,
    send_with: Callable[[Probe], requests.Response] | None = None,
) -> int:
    """Send every probe; fail `rule` for each that gets a 5xx (or no answer). The number sent."""
    return _judge(
        target, rule, found, send_with, lambda status: status >= 500,
        "5xx to a boundary value",
        "any answer but 5xx: the value is accepted, or refused with a 4xx in the API's "
        "own error shape (DESIGN.md: a mock never answers 5xx unless faulted)",
    )


def refused(
    target: Target,
    rule: Rule,
    found: Sequence[Probe],
    *,
    send_with: Callable[[Probe], requests.Response] | None = None,
) -> int:
    """Send every probe; fail `rule` for each that is not answered with a 4xx."""
    return _judge(
        target, rule, found, send_with, lambda status: not 400 <= status < 500,
        "an impossible date is not refused",
        "4xx: a date that does not exist is malformed input (RFC 3339 §5.7)",
    )


def _judge(
    target: Target,
    rule: Rule,
    found: Sequence[Probe],
    send_with: Callable[[Probe], requests.Response] | None,
    wrong: Callable[[int], bool],
    title: str,
    documented: str,
) -> int:
    """Send every probe; one failure of `rule` for each whose status is `wrong` (or no answer)."""
    failures = []
    for probe in found:
        problem = _problem(target, probe, send_with, wrong)
        if problem is not None:
            failures.append(_failure(target, rule, probe, problem, title, documented))
    _raise(failures)
    return len(found)


def _problem(
    target: Target,
    probe: Probe,
    send_with: Callable[[Probe], requests.Response] | None,
    wrong: Callable[[int], bool],
) -> str | None:
    try:
        response = send_with(probe) if send_with is not None else send(target, probe)
    except requests.RequestException as error:
        return f"no answer: {type(error).__name__}: {str(error)[:160]}"
    return summarize(response) if wrong(response.status_code) else None


def _failure(
    target: Target, rule: Rule, probe: Probe, received: str, title: str, documented: str
) -> RuleFailure:
    return RuleFailure(
        rule, f"{title}: {probe.label}", received=received, documented=documented,
        curl=curl(target.base_url, probe, target.secrets), operation=probe.operation,
    )


def _raise(failures: list[RuleFailure]) -> None:
    if not failures:
        return
    listed = failures[:MAX_LISTED]
    more = len(failures) - len(listed)
    message = "\n\n".join(str(failure) for failure in listed)
    if more:
        message += f"\n\n… and {more} more probe(s) of this operation failed the same way"
    raise RuleFailures(listed, message)


# -- each suite's well-formed requests ------------------------------------------------------------


def sinatra_base(client: Any, operation: str) -> Base:
    """`operation` of the Sinatra client's target: the configured user, sample ids, a window."""
    from pepharness.suites.sinatra.client import (
        LOGIN,
        PAGINATED,
        VERSION,
        basic_header,
        days_ago,
    )

    template = operation.split(" ", 1)[1]
    path = {"version": VERSION}
    if "{game_id}" in template and "{round_id}" not in template:
        path["game_id"] = str(client.catalog[0]["gameId"]) if client.catalog else "1"
    if "{round_id}" in template:
        path.update(client.sample_round() or {"casino_id": "1", "game_id": "1", "round_id": "1"})
    window = {"from": {"to": days_ago(0)}, "to": {"from": days_ago(7)}}
    if template == LOGIN:
        return Base(operation, path, body={
            "email": client.options.email, "password": client.options.password,
        })
    if template == PAGINATED:
        header = basic_header(client.options.email, client.options.password)
        return Base(operation, path, {"page_size": "5"}, {"Authorization": header},
                    credential="Authorization", basic=True, companions=window)
    return Base(operation, path, headers={"jwt-auth": client.token()}, credential="jwt-auth",
                companions=window)


def operator_base(client: Any, operation: str) -> Base:
    """The identity endpoint with a valid token when one was given, else one never issued."""
    from pepharness.suites.operator.client import unknown_token

    tokens = client.options.valid_tokens
    return Base(operation, body={"identityToken": tokens[0] if tokens else unknown_token()})


def pep_frontend_base(pep: Any, operator: Any, operation: str) -> Base:
    """The login with a token the harness's operator validates; the player operations with a
    fresh session's x-authorization."""
    from pepharness.suites.pep_frontend.client import HEADER, LOGIN_OPERATION, access_token

    if operation == LOGIN_OPERATION:
        return Base(operation, body={
            "identityToken": operator.program(), "clientId": pep.options.client_id,
        })
    token = access_token(pep.login(operator.program())) or "no-token-issued"
    pep.target.secrets.hide(token, "$PEP_PLAYER_TOKEN")
    return Base(operation, headers={HEADER: token}, credential=HEADER)


def pep_platform_base(platform: Any, operation: str) -> Base:
    """The token endpoint's RFC 6749 form with Basic credentials; the rest with a Bearer token
    of every scope and a sample body (fresh ids)."""
    from pepharness.suites.pep_platform.client import TOKEN_OPERATION, sample_body
    from pepharness.suites.sinatra.client import basic_header

    if operation == TOKEN_OPERATION:
        return Base(operation, form={"grant_type": "client_credentials", "scope": "data:read"},
                    headers={"Authorization": basic_header(platform.client_id, platform.secret)},
                    credential="Authorization", basic=True)
    token = platform.bearer()
    platform.target.secrets.hide(token.removeprefix("Bearer "), "$PEP_PLATFORM_TOKEN")
    body = sample_body(operation)
    return Base(operation, {"taskId": "pepharness-no-such-task"},
                headers={"Authorization": token}, credential="Authorization",
                body=NO_BODY if body is None else body)
