"""feeds.yaml to a checked `Config`: `load_config` reads the file, `parse_config` checks text.

Only `load_config` touches the file system (through yaml_file); `parse_config` is a pure
function of the text. It must never let an unchecked value into the `Config` it returns.
"""

from __future__ import annotations

import os

from ruamel.yaml.comments import CommentedMap

from aggregator.config.check_base import describe
from aggregator.config.check_base import node_line
from aggregator.config.check_corrections import CorrectionChecks
from aggregator.config.check_hidden import HiddenChecks
from aggregator.config.check_members import MemberChecks
from aggregator.config.check_network import NetworkChecks
from aggregator.config.yaml_file import DEFAULT_PATH
from aggregator.config.yaml_file import load_quickly
from aggregator.config.yaml_file import load_yaml
from aggregator.config.yaml_file import read_config_text
from aggregator.errors import ConfigError
from aggregator.models import Config

_TOP_KEYS = ("network", "members", "hidden", "keep_apart", "merge")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check the feeds.yaml at `path`; raises ConfigError listing every problem."""
    name = os.fspath(path)
    return parse_config(read_config_text(name), name)


def parse_config(text: str, path: str = DEFAULT_PATH) -> Config:
    """Check feeds.yaml's text and return it as a Config.

    Raises ConfigError listing every problem found, in line order.
    """
    quick = load_quickly(text)
    if quick is not None:
        checker = Checker()
        config = checker.config(quick, path)
        if config is not None and not checker.problems:
            return config
    # Any problem: the round-trip reader, the reader of record, reads the file again, so
    # what staff are told is what it says, located by line.
    root = load_yaml(text, path)
    checker = Checker()
    config = checker.config(root, path)
    if checker.problems or config is None:
        problems = sorted(checker.problems, key=lambda problem: problem.line or 0)
        raise ConfigError(path, problems)
    return config


class Checker(MemberChecks, NetworkChecks, HiddenChecks, CorrectionChecks):
    """The whole feeds.yaml checker: the top level, then each block's checks."""

    def config(self, root: object, path: str) -> Config | None:
        if root is None:
            self.problem(
                "the file is empty; it needs a 'network:' block and a 'members:' list", line=1
            )
            return None
        if not isinstance(root, CommentedMap):
            self.problem(
                f"the file should start with 'network:' and 'members:' blocks, "
                f"but it holds {describe(root)}",
                line=node_line(root) or 1,
            )
            return None
        self.unknown_keys(root, _TOP_KEYS, {}, member=None, prefix="")
        network = self.network(root)
        members = self.members(root)
        hidden = self.hidden(root)
        corrections = self.corrections(root)
        if network is None or members is None or hidden is None or corrections is None:
            return None
        return Config(
            network=network,
            members=members,
            path=path,
            hidden=hidden,
            corrections=corrections,
        )
