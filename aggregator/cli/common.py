"""What every command module of the CLI shares: exit codes, default paths, and the stream
that keeps control characters from reaching the staff member's terminal.

A module of its own so that the command modules and main.py (which imports them lazily)
never import each other. It must never import a pipeline stage.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TextIO

DEFAULT_CONFIG = "config/feeds.yaml"
DEFAULT_DATA_DIR = "data"
DEFAULT_DEMO_DIR = Path(DEFAULT_DATA_DIR) / "demo"  # `aggregator demo` keeps its files here
EXIT_OK = 0
EXIT_NOTHING = 1  # preview: the address gives nothing that could be added
EXIT_CONFIG = 2
EXIT_STORAGE = 3
EXIT_LISTEN = 4  # run/serve: the port is in use, or the address cannot be listened on
EXIT_SERVICE = 5  # run/serve: a part of the service (a web process) stopped by itself


def default_database_url() -> str:
    data_dir = Path(os.environ.get("AGGREGATOR_DATA_DIR", DEFAULT_DATA_DIR))
    return f"sqlite:///{data_dir / 'aggregator.db'}"


class TerminalSafeStream(io.TextIOBase):
    """stdout or stderr with every write passed through terminal_safe.

    Commands print addresses, titles and errors that members' sites wrote; an escape
    sequence in them would retitle or clear the staff member's terminal or set its
    clipboard. Rich draws with escape sequences of its own, so it writes to `terminal`,
    the stream underneath, and what it is given is cleaned first (terminal_safe).
    """

    def __init__(self, terminal: TextIO) -> None:
        super().__init__()
        self.terminal = terminal

    def write(self, text: str) -> int:
        # Imported here: `--help` and `--version` (printed before any stream is wrapped)
        # need nothing of aggregator.text (it no longer loads nh3 itself: html_to_text does).
        from aggregator.text import terminal_safe

        self.terminal.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()

    def isatty(self) -> bool:
        return self.terminal.isatty()

    def fileno(self) -> int:
        return self.terminal.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.terminal.encoding


def rich_terminal(out: TextIO) -> TextIO:
    """The stream for a rich Console: underneath a TerminalSafeStream (see there)."""
    return out.terminal if isinstance(out, TerminalSafeStream) else out
