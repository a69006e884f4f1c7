"""Issue 13: what sinatra.yaml and admin.yaml must say for tools and generated clients.

Every array schema carries `items` (Spectral's `array-items`; openapi-python-client drops a
model whose array has none, D74), and every integer in the query has a `maximum` the mock
enforces (D71, D73): a validating proxy and the mock then refuse the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pepharness import contracts

CONTRACTS = ("sinatra", "admin")


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every mapping of a document with its JSON pointer."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}/{index}")


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def is_array(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_array_schema_has_items(name: str) -> None:
    document = contracts.load(name)
    missing = [
        where
        for where, node in walk(document)
        if is_array(node) and "items" not in node and "prefixItems" not in node
    ]
    assert not missing, f"{name}.yaml: arrays without items at {missing}"


def query_parameters(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for raw in [*shared, *operation.get("parameters", [])]:
                parameter = resolve(document, raw)
                if parameter["in"] == "query":
                    yield f"{method.upper()} {path} {parameter['name']}", parameter


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_integer_query_parameter_is_bounded(name: str) -> None:
    document = contracts.load(name)
    integers = {
        where: resolve(document, parameter.get("schema", {}))
        for where, parameter in query_parameters(document)
        if resolve(document, parameter.get("schema", {})).get("type") == "integer"
    }
    assert integers, f"{name}.yaml has no integer query parameter"
    unbounded = [where for where, schema in integers.items() if "maximum" not in schema]
    assert not unbounded, f"{name}.yaml: integer query parameters without a maximum: {unbounded}"
    floorless = [where for where, schema in integers.items() if "minimum" not in schema]
    assert not floorless, f"{name}.yaml: integer query parameters without a minimum: {floorless}"


ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_CURL = re.compile(r"\bcurl\s((?:[^|`\n]|\\\n)*)")
_BODY = re.compile(r"(?:^|\s)(?:-d|--data|--data-binary|--data-raw)\s+(\S+)")


def test_readme_curl_bodies_say_their_content_type() -> None:
    """A validating proxy refuses a JSON body sent as curl's default form type: every curl
    line of README.md and docs/ with a body names its Content-Type, unless the body is a form
    (`a=b`), which is what curl's default says."""
    untyped = []
    for match in (m for doc in DOCUMENTS for m in _CURL.finditer(doc.read_text("utf-8"))):
        command = match.group(1)
        body = _BODY.search(command)
        if body is None or re.fullmatch(r"[\w.-]+=\S*", body.group(1)):
            continue
        if "content-type:" not in command.lower():
            untyped.append(command.split("\n")[0][:80])
    assert not untyped, f"curl lines with a body but no Content-Type: {untyped}"
