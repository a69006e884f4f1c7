"""The OpenAPI contracts shipped with pep-harness: loading, spec validation, schema validators."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

Document = dict[str, Any]

_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class UnknownContract(LookupError):
    """Raised for a contract name that is not shipped."""


ASYNCAPI_SUFFIX = ".asyncapi.yaml"


def names() -> list[str]:
    """Every OpenAPI contract shipped, by name (the file name without `.yaml`), sorted. The
    AsyncAPI documents (`*.asyncapi.yaml`, e.g. the Socket.IO events) are not OpenAPI: they
    are listed by `asyncapi_names()`."""
    folder = resources.files(__name__)
    return sorted(
        p.name[: -len(".yaml")]
        for p in folder.iterdir()
        if p.name.endswith(".yaml") and not p.name.endswith(ASYNCAPI_SUFFIX)
    )


def asyncapi_names() -> list[str]:
    """Every AsyncAPI document shipped, by name (the file name without `.asyncapi.yaml`)."""
    folder = resources.files(__name__)
    return sorted(
        p.name[: -len(ASYNCAPI_SUFFIX)]
        for p in folder.iterdir()
        if p.name.endswith(ASYNCAPI_SUFFIX)
    )


@functools.cache
def load(name: str) -> Document:
    """The parsed contract `name` (e.g. "sinatra"). Shared and cached: treat it as read-only."""
    path = resources.files(__name__) / f"{name}.yaml"
    if not path.is_file():
        raise UnknownContract(f"no contract named {name!r}; shipped: {', '.join(names())}")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"contract {name!r} is not a YAML mapping")
    return document


def spec_errors(name: str) -> list[str]:
    """Why the contract is not valid OpenAPI 3.1; empty when it is."""
    document = load(name)
    if not str(document.get("openapi", "")).startswith("3.1"):
        return [f"{name}: declares openapi {document.get('openapi')!r}, not 3.1.x"]
    validator = OpenAPIV31SpecValidator(document)
    try:
        return [
            f"{name}: {_path(error.path)}: {error.message}" for error in validator.iter_errors()
        ]
    except (KeyError, TypeError, AttributeError) as error:
        # The validator walks the document before checking its shape: a node of the wrong kind
        # (a string where an object belongs) surfaces as a lookup error, not a validation one.
        return [f"{name}: malformed document near {error!r}"]


@functools.cache
def _registry(name: str) -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(load(name), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_uri(name), resource)
    return registry


def _uri(name: str) -> str:
    return f"urn:pepharness:contract:{name}"


@functools.cache
def schema_validator(contract: str, schema: str) -> Draft202012Validator:
    """A validator for `components.schemas[schema]` of `contract`, with formats checked."""
    if schema not in load(contract).get("components", {}).get("schemas", {}):
        raise KeyError(f"contract {contract!r} has no schema {schema!r}")
    return _validator({"$ref": f"{_uri(contract)}#/components/schemas/{schema}"}, contract)


def _validator(schema: Document, contract: str) -> Draft202012Validator:
    return Draft202012Validator(
        schema,
        registry=_registry(contract),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def record_errors(contract: str, schema: str, document: Any) -> list[str]:
    """Why `document` does not match `components.schemas[schema]`; empty when it does."""
    validator = schema_validator(contract, schema)
    return [f"{_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def operations(name: str) -> Iterator[tuple[str, str, Document]]:
    """(method, path template, operation object) for every operation of the contract."""
    for path, item in load(name).get("paths", {}).items():
        for method in _HTTP_METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def example_errors(name: str) -> list[str]:
    """Every `example`/`examples` value of a request or response body that breaks its schema."""
    problems: list[str] = []
    for method, path, operation in operations(name):
        bodies: list[tuple[str, Document]] = []
        request = operation.get("requestBody", {})
        bodies.extend(("request", media) for media in request.get("content", {}).values())
        for status, response in operation.get("responses", {}).items():
            bodies.extend((status, media) for media in response.get("content", {}).values())
        for where, media in bodies:
            schema = media.get("schema")
            if schema is None:
                continue
            validator = _validator(_rebase(schema, name), name)
            for label, value in _examples(media):
                for error in validator.iter_errors(value):
                    problems.append(
                        f"{name}: {method} {path} {where} example {label!r}: "
                        f"{_path(error.absolute_path)}: {error.message}"
                    )
    return problems


def _examples(media: Document) -> Iterator[tuple[str, Any]]:
    if "example" in media:
        yield "example", media["example"]
    for label, example in media.get("examples", {}).items():
        if isinstance(example, dict) and "value" in example:
            yield label, example["value"]


def _rebase(schema: Any, name: str) -> Any:
    """The schema with local `#/…` refs made absolute, so they resolve in the contract."""
    if isinstance(schema, dict):
        return {
            key: (
                f"{_uri(name)}{value}"
                if key == "$ref" and isinstance(value, str) and value.startswith("#")
                else _rebase(value, name)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(item, name) for item in schema]
    return schema


def _path(parts: Any) -> str:
    rendered = "/".join(str(part) for part in parts)
    return rendered or "(root)"


@functools.cache
def _path_patterns(name: str) -> list[tuple[re.Pattern[str], str]]:
    """Each path template as a full-match regex, the most literal templates first."""
    patterns = []
    for template in load(name).get("paths", {}):
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        patterns.append((re.compile(regex), template))
    patterns.sort(key=lambda item: -len(re.sub(r"\{[^}]+\}", "", item[1])))
    return patterns


def match_operation(name: str, method: str, path: str) -> tuple[str, Document] | None:
    """(path template, operation) that a concrete request path and method fall under."""
    paths = load(name).get("paths", {})
    for pattern, template in _path_patterns(name):
        if pattern.fullmatch(path):
            operation = paths[template].get(method.lower())
            if operation is not None:
                return template, operation
    return None


def _resolve(name: str, node: Document) -> Document:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = load(name)
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _header_value(raw: str, schema: Document) -> Any:
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?[0-9]+", raw.strip()):
        return int(raw)
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def response_problems(
    name: str,
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> list[str]:
    """Why a response breaks contract `name`: an undocumented operation or status, a body that
    is not JSON or does not fit its schema, a required header missing or a header off its
    schema. Empty when it conforms. `headers` must look names up case-insensitively."""
    matched = match_operation(name, method, path)
    if matched is None:
        return [f"{method} {path}: no operation of the {name} contract"]
    template, operation = matched
    where = f"{method} {template} → {status}"
    responses = operation.get("responses", {})
    declared = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    declared = declared or responses.get("default")
    if declared is None:
        documented = ", ".join(sorted(responses))
        return [f"{where}: status not documented (documented: {documented})"]
    response = _resolve(name, declared)
    problems = []
    for header, spec in response.get("headers", {}).items():
        spec = _resolve(name, spec)
        value = headers.get(header)
        if value is None:
            if spec.get("required"):
                problems.append(f"{where}: required header {header} missing")
            continue
        schema = spec.get("schema", {})
        validator = _validator(_rebase(schema, name), name)
        for error in validator.iter_errors(_header_value(value, schema)):
            problems.append(f"{where}: header {header}: {error.message}")
    content = response.get("content", {})
    media = content.get("application/json")
    if media is None:
        return problems
    try:
        document = json.loads(body)
    except ValueError:
        return [*problems, f"{where}: body is not JSON: {body[:80]!r}"]
    validator = _validator(_rebase(media.get("schema", {}), name), name)
    for error in validator.iter_errors(document):
        problems.append(f"{where}: body {_path(error.absolute_path)}: {error.message}")
    return problems
