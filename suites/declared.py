"""Which fields a contract's response schema declares, and which fields of an answer it does not.

A schema "declares" a field when `properties` (or `patternProperties`) names it, directly or in
any branch of `allOf`, `oneOf` or `anyOf` (or `then`, `else`, `dependentSchemas`), through any
`$ref`; an object whose `additionalProperties` is a schema (or `true`) is a map, so every key of
it is declared; an object schema that names no field at all (no properties, no map) is
free-form and declares whatever it holds (D96). Paths are JSONPath with array indexes and map
keys as `*`: `$.items[*].registeredAt`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

COMBINATORS = ("allOf", "oneOf", "anyOf")
MAX_DEPTH = 32
"""How deep a schema is followed (a recursive `$ref` ends here)."""


def resolve(document: Mapping[str, Any], schema: Any) -> Any:
    """`schema` with its local `$ref`s followed (`#/components/schemas/X`)."""
    seen: set[str] = set()
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if not ref.startswith("#/") or ref in seen:
            return {}
        seen.add(ref)
        target: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, Mapping) else None
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {"allOf": [target, siblings]} if siblings and target is not None else target
    return schema if isinstance(schema, (Mapping, bool)) else {}


@dataclass
class Shape:
    """What one position of an answer may hold, gathered from a schema and all its branches."""

    properties: dict[str, list[Any]] = field(default_factory=dict)
    patterns: list[tuple[str, Any]] = field(default_factory=list)
    maps: list[Any] = field(default_factory=list)
    """`additionalProperties` schemas (a map's values); `True` when any key is allowed."""
    closed: bool = False
    """`additionalProperties: false` somewhere: the schema does not allow more keys."""
    items: list[Any] = field(default_factory=list)

    @property
    def free_form(self) -> bool:
        return not (self.properties or self.patterns or self.maps or self.closed)


def shape(document: Mapping[str, Any], schema: Any, depth: int = 0) -> Shape:
    """The fields `schema` declares at its own level, its branches' included."""
    gathered = Shape()
    _gather(document, schema, gathered, depth)
    return gathered


def _gather(document: Mapping[str, Any], schema: Any, into: Shape, depth: int) -> None:
    schema = resolve(document, schema)
    if depth > MAX_DEPTH or not isinstance(schema, Mapping):
        return
    for name, sub in (schema.get("properties") or {}).items():
        into.properties.setdefault(str(name), []).append(sub)
    for pattern, sub in (schema.get("patternProperties") or {}).items():
        into.patterns.append((str(pattern), sub))
    extra = schema.get("additionalProperties", schema.get("unevaluatedProperties"))
    if extra is False:
        into.closed = True
    elif extra is True or isinstance(extra, Mapping):
        into.maps.append(extra)
    if isinstance(schema.get("items"), (Mapping, bool)):
        into.items.append(schema["items"])
    for sub in schema.get("prefixItems") or []:
        into.items.append(sub)
    for combinator in COMBINATORS:
        for branch in schema.get(combinator) or []:
            _gather(document, branch, into, depth + 1)
    branches = [schema.get("then"), schema.get("else")]
    branches += list((schema.get("dependentSchemas") or {}).values())
    for branch in branches:
        if branch is not None:
            _gather(document, branch, into, depth + 1)


@dataclass
class Walk:
    """What walking one answer found: undeclared fields (path → an example value) and the
    declared fields the answer carried."""

    undeclared: dict[str, Any] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)


def walk(document: Mapping[str, Any], schema: Any, instance: Any) -> Walk:
    """Every field of `instance` that `schema` does not declare, and every declared one it
    carries."""
    found = Walk()
    _walk(document, [schema], instance, "$", found, 0)
    return found


def _walk(
    document: Mapping[str, Any], schemas: list[Any], instance: Any, path: str, found: Walk,
    depth: int,
) -> None:
    if depth > MAX_DEPTH or not schemas:
        return
    merged = Shape()
    for schema in schemas:
        _gather(document, schema, merged, depth)
    if isinstance(instance, Mapping):
        if merged.free_form:
            return
        for key, value in instance.items():
            key = str(key)
            declared = list(merged.properties.get(key, []))
            declared += [sub for pattern, sub in merged.patterns if re.search(pattern, key)]
            if declared:
                child = f"{path}.{key}"
                found.seen.add(child)
                _walk(document, declared, value, child, found, depth + 1)
            elif merged.maps:
                child = f"{path}.*"
                found.seen.add(child)
                values = [sub for sub in merged.maps if isinstance(sub, Mapping)]
                _walk(document, values, value, child, found, depth + 1)
            else:
                found.undeclared.setdefault(f"{path}.{key}", value)
    elif isinstance(instance, list):
        for value in instance:
            _walk(document, merged.items, value, f"{path}[*]", found, depth + 1)


def declared_fields(document: Mapping[str, Any], schema: Any) -> set[str]:
    """Every field path `schema` declares (a schema within itself is not unrolled)."""
    fields: set[str] = set()
    for path in _declared(document, [schema], "$", 0, ()):
        fields.add(path)
    return fields


def _declared(
    document: Mapping[str, Any], schemas: list[Any], path: str, depth: int,
    refs: tuple[str, ...],
) -> Iterator[str]:
    if depth > MAX_DEPTH:
        return
    # A schema that holds itself ($ref to an enclosing one) is listed once, not unrolled.
    own = tuple(s["$ref"] for s in schemas if isinstance(s, Mapping) and "$ref" in s)
    if own and set(own) <= set(refs):
        return
    merged = Shape()
    for schema in schemas:
        _gather(document, schema, merged, depth)
    for name, subs in merged.properties.items():
        child = f"{path}.{name}"
        yield child
        yield from _declared(document, subs, child, depth + 1, refs + own)
    values = [sub for sub in merged.maps if isinstance(sub, Mapping)]
    if values:
        yield from _declared(document, values, f"{path}.*", depth + 1, refs + own)
    if merged.items:
        yield from _declared(document, merged.items, f"{path}[*]", depth + 1, refs + own)


def response_schema(
    document: Mapping[str, Any], method: str, template: str, status: int
) -> Any | None:
    """The JSON schema of `status`'s answer to `method template` (its exact status, else its
    `2XX` range, else `default`); None when the contract gives that answer no JSON body."""
    operation = (document.get("paths", {}).get(template) or {}).get(method.lower()) or {}
    responses = operation.get("responses") or {}
    answer = None
    for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
        if key in responses:
            answer = resolve(document, responses[key])
            break
    if not isinstance(answer, Mapping):
        return None
    for media, content in (answer.get("content") or {}).items():
        kind = str(media).split(";")[0].strip().lower()
        if kind == "application/json" or kind.endswith("+json"):
            return (content or {}).get("schema", {})
    return None
