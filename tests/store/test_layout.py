"""The store's shape: one facade of per-domain mixins, small modules, one "gone" status.

These read the source tree (AST and line counts), so they fail when a domain's methods
pile up in one class again or when 410 is spelled out beside GONE_STATUS.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import aggregator
import aggregator.store
from aggregator.store import Store
from aggregator.store.base import StoreBase

PACKAGE = Path(aggregator.__file__).parent
STORE = Path(aggregator.store.__file__).parent
MAX_MODULE_LINES = 600


def test_no_store_module_is_over_600_lines() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in STORE.glob("*.py")}
    assert {name: size for name, size in sizes.items() if size > MAX_MODULE_LINES} == {}


def test_the_store_facade_defines_no_method_of_its_own() -> None:
    own = [name for name, value in vars(Store).items() if inspect.isfunction(value)]
    assert own == []
    # Every public method comes from a mixin module of aggregator.store, one per domain.
    homes = {
        name: inspect.getmodule(getattr(Store, name)).__name__  # type: ignore[union-attr]
        for name in dir(Store)
        if not name.startswith("_") and inspect.isfunction(getattr(Store, name))
    }
    assert set(homes.values()) >= {
        "aggregator.store.base",
        "aggregator.store.items",
        "aggregator.store.published",
    }
    assert all(module.startswith("aggregator.store.") for module in homes.values())
    assert all(issubclass(base, StoreBase) for base in Store.__mro__[1:-1])


def test_the_gone_status_is_defined_once_and_never_spelled_out() -> None:
    definitions = []
    compared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        where = str(path.relative_to(PACKAGE))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "GONE_STATUS"
                for target in node.targets
            ):
                definitions.append(where)
            if isinstance(node, ast.Compare):
                literals = [
                    constant
                    for operand in [node.left, *node.comparators]
                    for constant in ast.walk(operand)
                    if isinstance(constant, ast.Constant) and constant.value == 410
                ]
                if literals:
                    compared.append(f"{where}:{node.lineno}")
    assert definitions == ["models.py"]
    assert compared == []
