"""The outside linters' configurations (contracts/.spectral.yml, redocly.yml, lint.sh) parse and
cover every contract. The linters themselves run through npx: `contracts/lint.sh`."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pepharness import contracts

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


def load_yaml(name: str) -> dict:
    document = yaml.safe_load((CONTRACTS / name).read_text(encoding="utf-8"))
    assert isinstance(document, dict), name
    return document


def test_spectral_ruleset_extends_the_openapi_rules() -> None:
    ruleset = load_yaml(".spectral.yml")
    assert "spectral:oas" in ruleset["extends"]
    for override in ruleset.get("overrides", []):
        for pattern in override["files"]:
            assert (CONTRACTS / pattern.split("#")[0]).is_file(), pattern


def test_redocly_config_names_every_contract() -> None:
    config = load_yaml("redocly.yml")
    assert "recommended" in config["extends"]
    roots = {name: api["root"] for name, api in config["apis"].items()}
    assert roots == {name: f"{name}.yaml" for name in contracts.names()}


def test_lint_script_lints_every_contract() -> None:
    script = (CONTRACTS / "lint.sh").read_text(encoding="utf-8")
    listed = re.search(r'^CONTRACTS="([^"]*)"', script, re.M)
    assert listed is not None
    assert sorted(listed.group(1).split()) == contracts.names()
    assert "@stoplight/spectral-cli" in script and "--ruleset .spectral.yml" in script
    assert "@redocly/cli" in script and "--config redocly.yml" in script
    assert (CONTRACTS / "lint.sh").stat().st_mode & 0o111, "lint.sh is executable"
