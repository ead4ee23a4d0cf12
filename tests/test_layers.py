"""The dependency rule of the package, checked mechanically: no module imports upward.

Ranks, lowest first: the base modules (models, errors, dedupe, languages, urls, addresses,
text, identity, clock, files; they may import each other) < config < store < ingest = publish
(which may not import each other) < service < demo < cli. A module may import its own
package and any lower rank. The rule is read from the source with an AST walk, so an import inside a
function counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aggregator"

BASE = frozenset(
    {"models", "errors", "dedupe", "languages", "urls", "addresses", "text", "identity", "clock",
     "files"}
)
RANKS = {"config": 1, "store": 2, "ingest": 3, "publish": 3, "service": 4, "demo": 5, "cli": 6}

# Upward imports that cannot be removed in this step, each with the reason it stays.
# None today; keep the table so that a new one has to be written down with its reason.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def layer(module: str) -> str:
    """The layer of a dotted module name under aggregator ("aggregator.ingest.poll" -> "ingest")."""
    parts = module.split(".")
    if parts[0] != "aggregator":
        return "outside"
    if len(parts) == 1:
        return "base"  # aggregator/__init__.py: the version and the user agent
    return parts[1] if parts[1] in RANKS else "base"


def rank(name: str) -> int:
    return 0 if name == "base" else RANKS[name]


def imported_modules(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every module `source` (the text of `module`) imports, relative imports resolved."""
    found: list[str] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from aggregator import config" imports the module aggregator.config.
            if base == "aggregator":
                found += [f"aggregator.{alias.name}" for alias in node.names]
            else:
                found.append(base)
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The upward (or sideways, between ingest and publish) imports of one module."""
    own = layer(module)
    problems = []
    for target in imported_modules(source, module, is_package):
        other = layer(target)
        if other in ("outside", own) or (module, target) in KNOWN_EXCEPTIONS:
            continue
        if rank(other) > rank(own) or (rank(other) == rank(own) and own != "base"):
            problems.append(f"{module} imports {target} ({own} may not import {other})")
    return problems


def package_modules() -> list[tuple[str, Path]]:
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append((".".join(parts), path))
    # A module the rule cannot place is a new top-level package nobody ranked yet.
    assert all(layer(module) in ("base", *RANKS) for module, _ in modules)
    assert {parts.stem for parts in PACKAGE.glob("*.py")} - {"__init__"} <= BASE
    return modules


def test_no_module_imports_upward() -> None:
    problems = []
    for module, path in package_modules():
        is_package = path.name == "__init__.py"
        problems += violations(path.read_text(encoding="utf-8"), module, is_package)
    assert problems == []


def test_every_known_exception_is_still_needed() -> None:
    imports = {
        (module, target)
        for module, path in package_modules()
        for target in imported_modules(
            path.read_text(encoding="utf-8"), module, path.name == "__init__.py"
        )
    }
    assert set(KNOWN_EXCEPTIONS) <= imports


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("aggregator.models", "from aggregator.config import load_config"),
        ("aggregator.config.load", "from aggregator.store import Store"),
        ("aggregator.store.items", "def f():\n    from aggregator.ingest import poll\n"),
        ("aggregator.ingest.poll", "import aggregator.publish.site"),
        ("aggregator.publish.site", "from aggregator.ingest.fetch import Fetcher"),
        ("aggregator.publish.site", "from aggregator import service"),
        ("aggregator.service.web", "from ..cli import main"),
        ("aggregator.demo.server", "from aggregator.cli import main"),
    ],
)
def test_the_checker_catches_an_upward_import(module: str, source: str) -> None:
    assert violations(source, module) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("aggregator.text", "from aggregator.urls import canonical_url"),
        ("aggregator.config.load", "from aggregator.models import Config"),
        ("aggregator.ingest.poll", "from aggregator.store import Store\nimport httpx"),
        ("aggregator.ingest.poll", "from .fetch import Fetcher"),
        ("aggregator.service.web", "from aggregator.publish import site"),
        ("aggregator.cli", "from aggregator.service.scheduler import run"),
    ],
)
def test_the_checker_allows_a_downward_import(module: str, source: str) -> None:
    assert violations(source, module) == []
