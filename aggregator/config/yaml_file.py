"""Reading feeds.yaml from disk and as YAML: the one reader of the file.

Both `load_config` and `import-opml` read feeds.yaml through `read_config_text`, so the
file is decoded (UTF-8, with or without Notepad's byte-order mark) and its read errors are
worded the same way everywhere; YAML syntax errors are turned into plain-words problems.

Two readers give the same data (CommentedMap/CommentedSeq knowing the line of each key and
item): `load_quickly`, through the C parser (ruamel.yaml.clib), for the everyday read of a
good file, and `load_yaml`, the round-trip reader, which is the reader of record: its
errors are the ones staff see, and a file the quick reader finds anything unusual in (or
that the checks find a problem in) is read again by it. Reading and checking a 1,000-source
file took 0.76–0.84 s of CPU with the round-trip reader alone, 0.18–0.23 s this way
(bench/README.md, "Start-up").

It must never use an unsafe YAML loader or build anything from YAML tags (the round-trip
loader only ever produces plain data), never build data from a file whose anchors and
aliases expand past MAX_EXPANDED_NODES (a "billion laughs" file: the checks would walk
every copy; one froze the service for 16 s), never hand the C parser a file that may nest
deeper than MAX_QUICK_DEPTH (its composer recurses on the C stack: 30,000 nested brackets
crash the process), and never check what the file means (check_*.py do).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.constructor import ConstructorError
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode
from ruamel.yaml.nodes import Node
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.nodes import SequenceNode
from ruamel.yaml.reader import Reader
from ruamel.yaml.reader import ReaderError

from aggregator.errors import ConfigError
from aggregator.errors import ConfigProblem

DEFAULT_PATH = "config/feeds.yaml"
# Values (keys, scalars, lists and blocks) the file may hold once every alias (*name) is
# replaced by what its anchor (&name) names. A network of 2,000 members with 10 sources
# each stays under 200,000; an alias bomb of a few lines reaches billions.
MAX_EXPANDED_NODES = 1_000_000
# An upper bound on how deep the quick reader lets a file nest (see _nesting_bound); the
# round-trip reader gives up near 500, the C composer crashes between 20,000 and 30,000.
MAX_QUICK_DEPTH = 5_000


class AliasBombError(ConfigError):
    """feeds.yaml's aliases expand to more than MAX_EXPANDED_NODES values."""


def read_config_text(path: str | os.PathLike[str]) -> str:
    """The text of the feeds.yaml at `path`; raises ConfigError saying why it cannot be read."""
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError as error:
        # Relative paths are read from the current directory: name the folder it looked in.
        problem = ConfigProblem(
            f"the file does not exist (looked for {Path(name).absolute()}); point at your "
            "feeds.yaml with --config PATH or the AGGREGATOR_CONFIG environment variable"
        )
        raise ConfigError(name, [problem]) from error
    except IsADirectoryError as error:
        raise ConfigError(name, [ConfigProblem("this is a folder, not a file")]) from error
    except OSError as error:
        reason = error.strerror or str(error)
        problem = ConfigProblem(f"the file cannot be read ({reason})")
        raise ConfigError(name, [problem]) from error
    try:
        # "-sig" because Notepad on Windows starts UTF-8 files with a byte-order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        problem = ConfigProblem(
            "the file is not saved as UTF-8 text; save it again choosing the UTF-8 encoding",
            line=line,
        )
        raise ConfigError(name, [problem]) from error
    return text


def load_yaml(text: str, path: str) -> object:
    """feeds.yaml's text as plain round-trip data; raises ConfigError on a syntax problem,
    and AliasBombError before building anything when its aliases expand past the limit."""
    try:
        if "*" in text:  # no alias without one: most files skip the count
            _refuse_alias_bomb(text, path)
        return YAML(typ="rt").load(text)
    except YAMLError as error:
        raise ConfigError(path, [_syntax_problem(error, text)]) from error
    except (ValueError, IndexError) as error:
        # ruamel.yaml 0.19 crashes on plain values it mistakes for numbers, such as "-_".
        problem = ConfigProblem(
            "a value here looks like a number but is not one; put it in quotes",
            line=_false_number_line(text),
        )
        raise ConfigError(path, [problem]) from error


def load_quickly(text: str) -> object | None:
    """feeds.yaml's text as the same data `load_yaml` gives, through the C parser, or None
    when only the round-trip reader can say: any error, or anything a good feeds.yaml never
    holds (tabs, merge keys `<<`, tags `!x`, directives, control characters, deep nesting,
    an alias bomb). The line of every key and item is kept, for the `line` of members and sources.
    """
    if (
        "\t" in text
        or "<<" in text
        or _TAG.search(text) is not None
        or text.startswith("%")
        or "\n%" in text
        or Reader.NON_PRINTABLE.search(text) is not None
        or _nesting_bound(text) > MAX_QUICK_DEPTH
    ):
        return None
    try:
        # A reader per read: a YAML object keeps the stream it reads, and the service reads
        # in a thread. Without ruamel.yaml.clib this is ruamel's own (slower) parser.
        reader = YAML(typ="safe")
        reader.Constructor = _LineConstructor
        constructor, _ = reader.get_constructor_parser(text)
        root = constructor.composer.get_single_node()
        if root is None or ("*" in text and _expanded_size(root)[0] > MAX_EXPANDED_NODES):
            return None
        data: object = constructor.construct_document(root)
        return data
    # The round-trip reader reads the file again, and says what is wrong in its own words.
    except (YAMLError, ValueError, IndexError, TypeError):
        return None


# Where a tag (`!!str`, `!custom`) may start, outside comment lines: the readers build
# different things from tags (the round-trip reader keeps `!!str 12` as a tagged value), so
# the quick one reads none. A "!" after a space in a value is taken for one too, which only
# means the round-trip reader reads that file.
_TAG = re.compile(r"^ *(?:[^#\s].*?[\s\[{,])?!", re.MULTILINE)


def _nesting_bound(text: str) -> int:
    """A bound no file's nesting exceeds: in block style a nested block starts in a later
    column than its parent's, but for a list under a key, so two levels take a column at
    least; flow style nests one level per bracket."""
    widest = max((len(line) for line in text.splitlines()), default=0)
    return 2 * (widest + 1) + text.count("[") + text.count("{")


class _LineConstructor(SafeConstructor):
    """Builds what the round-trip reader builds for the checks, without the comments:
    CommentedMap and CommentedSeq, with the line and column of each key and item."""

    def construct_yaml_map(self, node: MappingNode) -> Iterator[CommentedMap]:
        data = CommentedMap()
        data._yaml_set_line_col(node.start_mark.line, node.start_mark.column)
        yield data
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list):
                key = tuple(key)
            try:
                hash(key)
            except TypeError as error:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key",
                    key_node.start_mark,
                ) from error
            value = self.construct_object(value_node, deep=True)
            if self.check_mapping_key(node, key_node, data, key, value):
                data[key] = value
                data._yaml_set_kv_line_col(
                    key,
                    [
                        key_node.start_mark.line,
                        key_node.start_mark.column,
                        value_node.start_mark.line,
                        value_node.start_mark.column,
                    ],
                )

    def construct_yaml_seq(self, node: SequenceNode) -> Iterator[CommentedSeq]:
        data = CommentedSeq()
        data._yaml_set_line_col(node.start_mark.line, node.start_mark.column)
        yield data
        for index, child in enumerate(node.value):
            data.append(self.construct_object(child, deep=True))
            data._yaml_set_idx_line_col(index, [child.start_mark.line, child.start_mark.column])


_LineConstructor.add_constructor("tag:yaml.org,2002:map", _LineConstructor.construct_yaml_map)
_LineConstructor.add_constructor("tag:yaml.org,2002:seq", _LineConstructor.construct_yaml_seq)


def _refuse_alias_bomb(text: str, path: str) -> None:
    """Refuse the file when its aliases, written out, make more than MAX_EXPANDED_NODES."""
    root = YAML(typ="rt").compose(text)
    if root is None:
        return
    size, first_alias = _expanded_size(root)
    if size > MAX_EXPANDED_NODES:
        line = _line(first_alias) if first_alias is not None else None
        raise AliasBombError(
            path,
            [
                ConfigProblem(
                    f"the anchors (&name) and aliases (*name) of this file expand to more "
                    f"than {MAX_EXPANDED_NODES:,} values, which no feeds.yaml needs (an "
                    f"'alias bomb'); write the repeated values out, or use fewer aliases",
                    line=line,
                )
            ],
        )


def _expanded_size(root: Node) -> tuple[int, Node | None]:
    """The values of the composed file as if every alias were written out, and its first
    alias; each node is counted once (memoized), so this costs time in the file's size only."""
    sizes: dict[int, int] = {}
    first_alias: Node | None = None
    # Depth first without recursion: (node, children done?).
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if id(node) in sizes:
            # Met again: an alias use (the node, and so the line, is its anchor's).
            if first_alias is None or _line(node) < _line(first_alias):
                first_alias = node
            continue
        sizes[id(node)] = 0  # in progress: an alias back to an ancestor adds nothing
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return sizes[id(root)], first_alias


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


# The YAML reader's own words ("mapping values are not allowed here") mean nothing to
# staff; these say what usually causes each one. The reader's words are kept at the end.
_SYNTAX_HINTS = (
    (
        "'\\t' that cannot start any token",
        "a tab character is used here; indent with spaces only, never tabs",
    ),
    (
        "cannot start any token",
        "a value here starts with a character YAML reserves (such as @ or `); "
        "put the whole value in quotes",
    ),
    (
        "mapping values are not allowed here",
        "there is an unexpected ':' here; if a value contains ': ', put the whole value "
        "in quotes, otherwise indent this line like the lines around it",
    ),
    (
        "could not find expected ':'",
        "a line is missing the ':' after its key (write 'key: value' with a space after "
        "the colon), or is indented wrongly",
    ),
    (
        "while scanning a quoted scalar",
        "a quote is opened but never closed",
    ),
    (
        "while parsing a flow",
        "a list in [ ] or a block in { } is not closed properly; check the brackets and commas",
    ),
    (
        "alias",
        "a value here starts with '*' or '&', which YAML treats specially; put the whole "
        "value in quotes (a CSS selector such as '*' needs quotes)",
    ),
    (
        "expected <block end>",
        "this line is not indented like the lines around it; keys of the same block must "
        "start in the same column, and each list entry starts with '- '",
    ),
)
_DUPLICATE_KEY = re.compile(r'found duplicate key "(?P<key>[^"]*)"')


def _syntax_problem(error: YAMLError, text: str) -> ConfigProblem:
    if isinstance(error, ReaderError):
        return ConfigProblem(
            "the file contains an invisible control character that is not allowed; "
            "delete it or retype the line",
            line=text[: error.position].count("\n") + 1,
        )
    if not isinstance(error, MarkedYAMLError):
        return ConfigProblem(f"the file is not written correctly as YAML ({error})")
    problem = error.problem or ""
    context = error.context or ""
    mark = error.problem_mark or error.context_mark
    line: int | None = int(mark.line) + 1 if mark is not None else None
    if isinstance(error, DuplicateKeyError):
        found = _DUPLICATE_KEY.search(problem)
        key = found.group("key") if found else "?"
        return ConfigProblem(
            f"the key {key!r} appears twice in the same block; keep only one", line=line
        )
    message = "the file is not written correctly as YAML here; check the indentation and quotes"
    for clue, hint in _SYNTAX_HINTS:
        if clue in problem or clue in context:
            message = hint
            break
    start = error.context_mark
    if start is not None and line is not None and int(start.line) + 1 != line:
        message += f" (the trouble may begin on line {int(start.line) + 1})"
    if problem:
        message += f" [YAML reader: {problem}]"
    return ConfigProblem(message, line=line)


_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


def _false_number_line(text: str) -> int | None:
    """The line of the first plain value the YAML reader takes for a number without digits."""
    try:
        pending: list[Node] = [YAML(typ="rt").compose(text)]
    except YAMLError:
        return None
    lines: list[int] = []
    while pending:
        node = pending.pop()
        if isinstance(node, ScalarNode):
            if str(node.tag) in _NUMBER_TAGS and not any(c.isdigit() for c in node.value):
                lines.append(int(node.start_mark.line) + 1)
        elif isinstance(node, SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, MappingNode):
            pending.extend(part for pair in node.value for part in pair)
    return min(lines, default=None)
