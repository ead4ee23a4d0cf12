"""Read feeds.yaml, the staff-edited list of members and their sources, into a `Config`.

The file is written by people who are not programmers, so every problem in it is collected
(not only the first), located by line, member and field, and explained in plain words with
a hint at the fix. The work is split by job: yaml_file reads the file (the one reader of
feeds.yaml) and explains YAML syntax errors; check_base checks single values;
check_network, check_members, check_sources and check_hidden check each block; load puts
them together. opml_import edits the file. This module only re-exports the public names.

This package must never use an unsafe YAML loader or build anything from YAML tags, never
fetch or check an address over the network, never let an unchecked value into the `Config`
it returns, and never import from a later stage (ingest, store, publish, service, cli).
"""

from __future__ import annotations

from aggregator.config.check_base import parse_duration
from aggregator.config.check_base import suggest_slug
from aggregator.config.check_hidden import hidden_target
from aggregator.config.check_network import MIN_RETENTION
from aggregator.config.load import load_config
from aggregator.config.load import parse_config
from aggregator.config.yaml_file import DEFAULT_PATH
from aggregator.config.yaml_file import read_config_text

__all__ = [
    "DEFAULT_PATH",
    "MIN_RETENTION",
    "hidden_target",
    "load_config",
    "parse_config",
    "parse_duration",
    "read_config_text",
    "suggest_slug",
]
