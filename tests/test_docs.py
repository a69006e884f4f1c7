"""README.md and docs/: a short README, a contents page that reaches every page, links that
resolve, and every `pepharness` command and option the documents name as `--help` has it."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import click
import pytest

from pepharness.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
DOCUMENTS = [README, *PAGES]
README_MAX_LINES = 150
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_INVOCATION = re.compile(r"(?:^|[\s/(])pepharness((?:\s+[a-z][a-z-]*)*)")


def test_readme_fits_a_screenful_or_two() -> None:
    lines = README.read_text("utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_the_contents_page_links_every_page() -> None:
    contents = (DOCS / "README.md").read_text("utf-8")
    linked = {target.split("#")[0] for target in _LINK.findall(contents)}
    missing = [page.name for page in PAGES if page.name != "README.md" and page.name not in linked]
    assert not missing, f"docs/README.md does not link {missing}"
    assert "docs/README.md" in README.read_text("utf-8")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_relative_links_resolve(document: Path) -> None:
    broken = []
    for target in _LINK.findall(document.read_text("utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        if not (document.parent / path).exists():
            broken.append(target)
    assert not broken, f"{document.name}: links to nothing: {broken}"


@cache
def _command(path: tuple[str, ...]) -> click.Command | None:
    command: click.Command = cli
    for name in path:
        if not isinstance(command, click.Group):
            return None
        found = command.commands.get(name) or command.get_command(click.Context(command), name)
        if found is None:
            return None
        command = found
    return command


def _options(command: click.Command) -> set[str]:
    return {
        option
        for param in command.params
        if isinstance(param, click.Option)
        for option in (*param.opts, *param.secondary_opts)
    }


def _leaves(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(command, click.Group):
        return [path]
    ctx = click.Context(command)
    return [
        leaf
        for name in command.list_commands(ctx)
        for leaf in _leaves(command.get_command(ctx, name), (*path, name))  # type: ignore[arg-type]
    ]


def _resolve(words: list[str]) -> tuple[tuple[str, ...], click.Command] | None:
    """The longest command path `words` start with, and its command (None: not a command)."""
    path: tuple[str, ...] = ()
    command: click.Command = cli
    for word in words:
        found = _command((*path, word))
        if found is None:
            break
        path, command = (*path, word), found
    return (path, command) if path else None


def _invocations(text: str) -> list[tuple[str, list[str], str]]:
    """(the line, the words after `pepharness`, the rest of the logical line) for every
    `pepharness …` in the document's code blocks; a line ending in `\\` goes on, and a line
    starting with whitespace continues a synopsis (docs/commands.md)."""
    found = []
    for block in _FENCE.findall(text):
        logical: list[str] = []
        for line in block.replace("\\\n", " ").splitlines():
            if logical and line[:1].isspace() and not line.lstrip().startswith("pepharness"):
                logical[-1] += " " + line
            else:
                logical.append(line)
        for line in logical:
            for match in _INVOCATION.finditer(line):
                rest = line[match.end():]
                # what follows a `--` alone is CMD's, and a shell operator or comment ends it
                rest = re.split(r"\s--\s|\s#\s|\s&&|\s\|\s|;|\s&\s*$", " " + rest + " ")[0]
                found.append((line.strip()[:90], match.group(1).split(), rest))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_documented_command_and_option_exists(document: Path) -> None:
    wrong = []
    for line, words, rest in _invocations(document.read_text("utf-8")):
        resolved = _resolve(words)
        if resolved is None:
            if words:
                wrong.append(f"no command `pepharness {' '.join(words)}`: {line}")
            continue
        path, command = resolved
        if isinstance(command, click.Group):
            # `serve {sinatra|…}`, `fuzz {sinatra|…}`: options of any of its commands
            names = command.list_commands(click.Context(command))
            options = set().union(*(_options(_command((*path, n))) for n in names))
        else:
            options = _options(command)
        unknown = sorted(set(_FLAG.findall(rest)) - options - {"--help"})
        if unknown:
            wrong.append(f"`pepharness {' '.join(path)}` has no {', '.join(unknown)}: {line}")
    assert not wrong, "\n".join(wrong)


def test_the_commands_page_names_every_command_and_option() -> None:
    """docs/commands.md is the one place with every command and option `--help` lists."""
    text = (DOCS / "commands.md").read_text("utf-8")
    documented: dict[tuple[str, ...], set[str]] = {}
    for _line, words, rest in _invocations(text):
        resolved = _resolve(words)
        if resolved is None:
            continue
        path, command = resolved
        group = (
            [(*path, name) for name in command.list_commands(click.Context(command))]
            if isinstance(command, click.Group) else [path]
        )
        for leaf in group:
            documented.setdefault(leaf, set()).update(_FLAG.findall(rest))
    missing = []
    for leaf in _leaves(cli):
        options = {o for o in _options(_command(leaf)) if o.startswith("--")} - {"--help"}
        if leaf not in documented:
            missing.append(f"`pepharness {' '.join(leaf)}` is not in docs/commands.md")
            continue
        undocumented = sorted(options - documented[leaf])
        if undocumented:
            missing.append(f"`pepharness {' '.join(leaf)}`: {', '.join(undocumented)}")
    assert not missing, "\n".join(missing)
