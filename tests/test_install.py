"""The install: the base dependencies carry no Locust (the `locust` extra does), `fuzz
--locust-…` without Locust is one line and exit 2, and a non-editable install (the wheel, as
`pip install .` and pipx install it) imports every module and runs from its own files."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pepharness.cli import cli
from pepharness.suites.fuzz import swarm

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
HINT = "needs Locust: pip install 'pep-harness[locust]'"


def names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("<")[0].split("[")[0].split("=")[0].strip().lower()
            for r in requirements}


def test_locust_is_an_extra_not_a_base_dependency() -> None:
    project = PROJECT["project"]
    base = names(project["dependencies"])
    assert not base & {"locust", "gevent", "pyzmq", "geventhttpclient", "psutil"}
    extras = project["optional-dependencies"]
    assert names(extras["locust"]) == {"locust"}
    assert "locust" in names(extras["test"])  # tests/test_fuzz_locust.py runs a cluster


@pytest.fixture
def no_locust(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if Locust were not installed."""
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name.split(".")[0] == "locust" else found(name, *a),
    )
    monkeypatch.setitem(sys.modules, "locust", None)  # `import locust` raises ImportError


@pytest.mark.parametrize(
    "options", [["--locust-workers", "2"], ["--locust-role", "worker"]], ids=["workers", "role"]
)
def test_fuzz_on_locust_without_locust_is_one_line_and_exit_2(
    no_locust: None, tmp_path: Path, options: list[str]
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["fuzz", "sinatra", "--base-url", "http://127.0.0.1:9", "--out", str(out),
              *options],
        env={k: None for k in os.environ if k.startswith("PEPHARNESS_")},
    )
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [f"error: fuzz {options[0]} {HINT}"]
    assert not out.exists()  # said before any work


def test_a_locust_process_without_locust_says_so(
    no_locust: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text("{}", encoding="utf-8")
    assert swarm.main(["--role", "worker", "--settings", str(settings)]) == swarm.EXIT_SETUP
    assert capsys.readouterr().out.splitlines() == [f"error: the Locust worker {HINT}"]


# -- a non-editable install -------------------------------------------------------------------


def _run(*command: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=300, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


IMPORT_ALL = """
import importlib, pkgutil, sys
import pepharness
assert pepharness.__file__.startswith(sys.argv[1]), pepharness.__file__
# Not `__main__` (it runs the CLI) nor the suites' test modules (they run under `check`).
names = [m.name for m in pkgutil.walk_packages(pepharness.__path__, "pepharness.")
         if not m.name.rpartition(".")[2].startswith(("__main__", "test_", "conftest"))]
for name in names:
    module = importlib.import_module(name)
    assert (module.__file__ or "").startswith(sys.argv[1]), (name, module.__file__)
print(len(names))
"""


def folder_of(package: str) -> Path:
    """The checkout's folder of `package`, through pyproject's package-dir mapping."""
    mapping = PROJECT["tool"]["setuptools"]["package-dir"]
    parent = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
    return ROOT / mapping[parent] / Path(*package[len(parent):].split(".")[1:])


def test_every_folder_of_modules_is_a_listed_package() -> None:
    """A folder of .py files missing from pyproject's `packages` would be left out of the
    wheel (an editable install still finds it, so only `pip install .` would break)."""
    setuptools = PROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for package, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                parts = init.parent.relative_to(ROOT / folder).parts
                found.add(".".join((package, *parts)))
    assert found - listed == set(), "add these to pyproject's packages"
    assert all((folder_of(package) / "__init__.py").is_file() for package in listed)


def test_the_wheel_installs_and_runs_from_its_own_files(tmp_path: Path) -> None:
    """`pip install .` builds a wheel from the package-dir mapping: every source module and
    data file is in it, every module imports from the installed copy (not the checkout), and
    the installed `pepharness` validates the contracts and golden files it ships."""
    source = tmp_path / "source"
    folders = set(PROJECT["tool"]["setuptools"]["package-dir"].values())
    for folder in folders:
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", tmp_path / "dist", source)
    (wheel,) = (tmp_path / "dist").glob("pep_harness-*.whl")
    site = tmp_path / "site"
    _run(*pip, "install", "--quiet", "--no-deps", "--no-index", "--target", site, wheel)

    # Every .py file and data file of the checkout's packages, where the mapping puts it.
    for package in PROJECT["tool"]["setuptools"]["packages"]:
        installed = site / Path(*package.split("."))
        for path in folder_of(package).glob("*.py"):
            assert (installed / path.name).is_file(), f"{package}: {path.name} not installed"
    for package, patterns in PROJECT["tool"]["setuptools"]["package-data"].items():
        folder = folder_of(package)
        for pattern in patterns:
            shipped = list(folder.glob(pattern))
            assert shipped, (package, pattern)
            for path in shipped:
                relative = path.relative_to(folder)
                assert (site / Path(*package.split(".")) / relative).is_file(), relative

    environment = {k: v for k, v in os.environ.items() if not k.startswith("PEPHARNESS_")}
    environment["PYTHONPATH"] = str(site)
    imported = _run(sys.executable, "-c", IMPORT_ALL, str(site), env=environment, cwd=tmp_path)
    assert int(imported.stdout) > 100
    validated = _run(sys.executable, "-m", "pepharness", "contracts", "validate",
                     "--records", "20", env=environment, cwd=tmp_path)
    assert "steps passed" in validated.stdout
