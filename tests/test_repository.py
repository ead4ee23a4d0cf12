"""Checks on the repository and the installed package rather than on the code's behaviour.

A clone must carry no virtualenv or cache (a tracked `.venv/bin/pip` carries another machine's
shebang and broke the README's first command), and CI must test the package as pip installed
it, so that a file missing from the package data fails here instead of in production.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

import aggregator

ROOT = Path(__file__).resolve().parent.parent

# Directories that are made on a machine, never written by hand: none may be tracked.
GENERATED_DIRECTORIES = (
    ".venv",
    "venv",
    "env",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "data",
    "node_modules",
)
GENERATED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".db", ".sqlite3")


def generated_paths(tracked: list[str]) -> list[str]:
    """The tracked paths that lie in a generated directory or are generated files."""
    found = []
    for path in tracked:
        *directories, name = path.split("/")
        in_generated_directory = any(
            part in GENERATED_DIRECTORIES or part.endswith(".egg-info") for part in directories
        )
        if in_generated_directory or name.endswith(GENERATED_SUFFIXES):
            found.append(path)
    return found


def test_generated_paths_finds_environments_and_caches() -> None:
    assert generated_paths(
        [
            ".venv/bin/pip",
            "aggregator/__pycache__/cli.cpython-311.pyc",
            "wsr_aggregator.egg-info/PKG-INFO",
            "aggregator/cli.py",
            "tests/fixtures/sites/env.html",
            "data/demo/aggregator.db",
        ]
    ) == [
        ".venv/bin/pip",
        "aggregator/__pycache__/cli.cpython-311.pyc",
        "wsr_aggregator.egg-info/PKG-INFO",
        "data/demo/aggregator.db",
    ]


def test_no_environment_or_cache_is_tracked() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing is tracked here")
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert listed, "git ls-files listed nothing"
    assert generated_paths(listed) == []


def test_ci_tests_the_installed_package() -> None:
    """Under CI the package must come from site-packages, not from the source tree."""
    if os.environ.get("AGGREGATOR_CI") != "1":
        pytest.skip("only CI installs the package without -e")
    location = Path(aggregator.__file__).resolve()
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert location.is_relative_to(site_packages), (
        f"aggregator was imported from {location}, not from {site_packages}"
    )
