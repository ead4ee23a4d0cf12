"""The `aggregator` command line (`aggregator = "aggregator.cli:entry"`, `python -m
aggregator.cli`): argument parsing and printing only, one module per group of commands.

* main.py: the parser, exit codes and dispatch;
* sources.py: check, preview, import-opml;
* polling.py: fetch, run, serve, prune (run and serve start aggregator.service.app);
* publishing.py: export;
* moderation.py: hide, unhide;
* status.py: status, db upgrade;
* demo.py: demo.

This package must never do the pipeline's work itself, and never import the pipeline at
import time (each command imports what it needs), so that `aggregator --help` is quick.
This file itself must never import anything at import time: the `aggregator` console
script imports it, and multiprocessing's spawn runs that script again in every parse
process of the pool (aggregator/ingest/pool.py), which needs none of the command line.
Its names are loaded on first use (`from aggregator.cli import main` works as before).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.cli.common import EXIT_CONFIG
    from aggregator.cli.common import EXIT_LISTEN
    from aggregator.cli.common import EXIT_NOTHING
    from aggregator.cli.common import EXIT_OK
    from aggregator.cli.common import EXIT_SERVICE
    from aggregator.cli.common import EXIT_STORAGE
    from aggregator.cli.main import build_parser
    from aggregator.cli.main import main
    from aggregator.cli.polling import report_line

__all__ = [
    "EXIT_CONFIG",
    "EXIT_LISTEN",
    "EXIT_NOTHING",
    "EXIT_OK",
    "EXIT_SERVICE",
    "EXIT_STORAGE",
    "build_parser",
    "entry",
    "main",
    "report_line",
]

# Each name, and the module of this package that defines it.
_HOMES = {
    "EXIT_CONFIG": "common",
    "EXIT_LISTEN": "common",
    "EXIT_NOTHING": "common",
    "EXIT_OK": "common",
    "EXIT_SERVICE": "common",
    "EXIT_STORAGE": "common",
    "build_parser": "main",
    "main": "main",
    "report_line": "polling",
}


def entry(argv: Sequence[str] | None = None) -> int:
    """The console script's function: main(), imported only when the command runs."""
    run = __getattr__("main")
    assert callable(run)
    result = run(argv)
    assert isinstance(result, int)
    return result


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    # Importing the submodule main.py bound the name `main` here to that module: bind every
    # name to its value, so that `from aggregator.cli import main` is the function.
    for other, other_home in _HOMES.items():
        if other_home == home:
            globals()[other] = getattr(importlib.import_module(f"{__name__}.{home}"), other)
    return value
