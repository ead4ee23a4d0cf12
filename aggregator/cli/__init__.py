"""The `aggregator` command line (`aggregator = "aggregator.cli:main"`, `python -m
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
"""

from __future__ import annotations

from aggregator.cli.common import EXIT_CONFIG
from aggregator.cli.common import EXIT_LISTEN
from aggregator.cli.common import EXIT_NOTHING
from aggregator.cli.common import EXIT_OK
from aggregator.cli.common import EXIT_STORAGE
from aggregator.cli.main import build_parser
from aggregator.cli.main import main
from aggregator.cli.polling import report_line

__all__ = [
    "EXIT_CONFIG",
    "EXIT_LISTEN",
    "EXIT_NOTHING",
    "EXIT_OK",
    "EXIT_STORAGE",
    "build_parser",
    "main",
    "report_line",
]
