"""The contracts as plain documents, read without `pepharness.contracts`' validators: jsonschema
takes a second to import, and every xdist worker would pay it before its first check."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _folder() -> Path:
    # The package's location without executing it (its __init__ imports the validators).
    spec = importlib.util.find_spec("pepharness.contracts")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError("pepharness.contracts is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The parsed contract `name` (e.g. "sinatra"): shared and cached, treat it as read-only."""
    document = yaml.load((_folder() / f"{name}.yaml").read_text(encoding="utf-8"), _Loader)
    if not isinstance(document, dict):
        raise ValueError(f"contract {name!r} is not a YAML mapping")
    return document


def operations(name: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path template, operation object) for every operation of the contract."""
    for path, item in load(name).get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield method.upper(), path, item[method]
