"""Read feeds.yaml, the staff-edited list of members and their sources, into a `Config`.

The file is written by people who are not programmers, so every problem in it is collected
(not only the first), located by line, member and field, and explained in plain words with
a hint at the fix. Only `load_config` touches the file system; `parse_config` is a pure
function of the text.

This module must never use an unsafe YAML loader or build anything from YAML tags (the
round-trip loader only ever produces plain data), never fetch or check an address over the
network, and never let an unchecked value into the `Config` it returns.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import replace
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import soupsieve
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode
from ruamel.yaml.nodes import Node
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.nodes import SequenceNode
from ruamel.yaml.reader import ReaderError

from aggregator.errors import ConfigError
from aggregator.errors import ConfigProblem
from aggregator.models import AlertSettings
from aggregator.models import Config
from aggregator.models import EmailSettings
from aggregator.models import FetchLimits
from aggregator.models import HiddenStory
from aggregator.models import ItemFilter
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import PageSelectors
from aggregator.models import SourceConfig
from aggregator.models import SourceKind
from aggregator.text import slugify
from aggregator.urls import canonical_url

DEFAULT_PATH = "config/feeds.yaml"

_TOP_KEYS = ("network", "members", "hidden")
# A shorter retention is almost surely a slip ("30m" for 30 months) and would delete
# nearly everything at the next prune.
MIN_RETENTION = timedelta(days=1)
_NETWORK_KEYS = (
    "title",
    "url",
    "feed_url",
    "description",
    "language",
    "items_per_feed",
    "interval",
    "alerts",
    "limits",
    "retention",
    "websub_hub",
    "websub_callback_base",
)
_LIMIT_KEYS = (
    "max_megabytes",
    "total_timeout",
    "connect_timeout",
    "read_timeout",
    "max_redirects",
    "concurrency",
    "per_host",
)
_ALERT_KEYS = ("webhook", "email", "failing_after", "quiet_after")
_ALERT_EMAIL_KEYS = ("to", "from", "smtp_host", "smtp_port", "starttls")
_EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_FILTER_KEYS = ("include", "exclude", "max_age")
_MEMBER_KEYS = ("id", "name", "url", "tags", "language", "interval", "sources", *_FILTER_KEYS)
_SOURCE_KEYS = ("feed", "page", "url", "selectors", "follow", "interval", *_FILTER_KEYS)
_SOURCE_KINDS: tuple[SourceKind, ...] = ("feed", "page", "url")
_HIDDEN_KEYS = ("item", "reason")
_STORY_ID_PATTERN = re.compile(
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_SELECTOR_KEYS = ("item", "title", "link", "date", "summary", "image")

# Keys written one level off are the commonest slip; say where they belong rather than
# offering a did-you-mean that cannot fit.
_MEMBER_HINTS = {
    "feed": "feeds and pages go in the 'sources:' list, like '- feed: https://…'",
    "page": "feeds and pages go in the 'sources:' list, like '- page: https://…'",
    "selectors": "selectors belong to a '- page:' entry in the 'sources:' list",
}
_SOURCE_HINTS = {
    **{
        key: "write the address after 'feed:' for a feed, 'page:' for a news page or 'url:' "
        "for a website whose feed should be found automatically"
        for key in ("address", "link", "href")
    },
    **{key: "CSS selectors go inside 'selectors:' under the page" for key in _SELECTOR_KEYS},
    **{
        key: "this key belongs to the member, not to one of its sources"
        for key in ("id", "name", "tags", "language", "sources")
    },
}

_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_LANGUAGE_PATTERN = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_DURATION_PATTERN = re.compile(
    r"(?:(?P<days>\d+)\s*d)?\s*(?:(?P<hours>\d+)\s*h)?\s*"
    r"(?:(?P<minutes>\d+)\s*m)?\s*(?:(?P<seconds>\d+)\s*s)?",
    re.IGNORECASE,
)
_DURATION_HELP = "write a number and a unit (s, m, h or d), like '30m', '2h' or '1h30m'"
_URL_HELP = (
    "only http and https addresses are allowed, written in full like https://example.org/news/"
)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check the feeds.yaml at `path`; raises ConfigError listing every problem."""
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
    return parse_config(text, name)


def parse_config(text: str, path: str = DEFAULT_PATH) -> Config:
    """Check feeds.yaml's text and return it as a Config.

    Raises ConfigError listing every problem found, in line order.
    """
    try:
        root = YAML(typ="rt").load(text)
    except YAMLError as error:
        raise ConfigError(path, [_syntax_problem(error, text)]) from error
    except (ValueError, IndexError) as error:
        # ruamel.yaml 0.19 crashes on plain values it mistakes for numbers, such as "-_".
        problem = ConfigProblem(
            "a value here looks like a number but is not one; put it in quotes",
            line=_false_number_line(text),
        )
        raise ConfigError(path, [problem]) from error
    checker = _Checker()
    config = checker.config(root, path)
    if checker.problems or config is None:
        problems = sorted(checker.problems, key=lambda problem: problem.line or 0)
        raise ConfigError(path, problems)
    return config


def hidden_target(text: str) -> str | None:
    """A story to hide as the store compares it, or None when `text` names no story.

    Story ids ("urn:uuid:…", or the bare uuid) in lower case; item addresses canonical.
    """
    text = text.strip()
    if _STORY_ID_PATTERN.fullmatch(text):
        return text.lower()
    if _STORY_ID_PATTERN.fullmatch("urn:uuid:" + text):
        return "urn:uuid:" + text.lower()
    if _url_problem(text) is None:
        return canonical_url(text)
    return None


def parse_duration(text: str) -> timedelta:
    """Read a duration such as "90s", "30m", "2h", "1d" or "1h30m"; raises ValueError."""
    match = _DURATION_PATTERN.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a length of time; {_DURATION_HELP}")
    numbers = {unit: int(value or 0) for unit, value in match.groupdict().items()}
    try:
        return timedelta(**numbers)
    except OverflowError as error:
        raise ValueError(f"{text!r} is far too long a time") from error


# --- YAML syntax ----------------------------------------------------------------------

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


# --- checking the structure -----------------------------------------------------------


def _node_line(node: object) -> int | None:
    if isinstance(node, CommentedMap | CommentedSeq):
        return int(node.lc.line) + 1
    return None


def _key_line(mapping: CommentedMap, key: object) -> int | None:
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (KeyError, TypeError):
        return _node_line(mapping)


def _item_line(sequence: CommentedSeq, index: int) -> int | None:
    try:
        return int(sequence.lc.item(index)[0]) + 1
    except (KeyError, TypeError):
        return _node_line(sequence)


def _describe(value: object) -> str:
    """Name a YAML value's kind the way staff would."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a yes/no value"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime | date):
        return "a date"
    if isinstance(value, str):
        return "text"
    if isinstance(value, CommentedMap):
        return "a block of keys"
    if isinstance(value, CommentedSeq):
        return "a list"
    return "a value of an unknown kind"


def _url_problem(text: str) -> str | None:
    """Why `text` cannot be used as a source or site address, or None when it can."""
    if any(character.isspace() for character in text):
        return f"{text!r} contains spaces; {_URL_HELP}"
    try:
        parts = urlsplit(text)
    except ValueError:
        return f"{text!r} is not written correctly; {_URL_HELP}"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not scheme and "." in text.split("/", 1)[0]:
            return f"{text!r} does not start with https://; {_URL_HELP}"
        return f"{text!r} cannot be used: {_URL_HELP}"
    if not parts.hostname:
        return f"{text!r} has no site name after '{parts.scheme}://'; {_URL_HELP}"
    try:
        parts.port  # noqa: B018 - reading it is what validates it
    except ValueError:
        return f"{text!r} has a port number that is not valid; {_URL_HELP}"
    return None


def _address_key(url: str) -> str:
    """What makes two source addresses the same for duplicate detection: http/https,
    host case, a default port and a trailing slash do not matter."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    return urlunsplit(("", host, parts.path.rstrip("/"), parts.query, ""))


def _suggest_slug(text: str) -> str | None:
    slug = slugify(text)
    return slug if _ID_PATTERN.fullmatch(slug) else None


class _Checker:
    """Walks the loaded YAML once, collecting every problem while building the Config."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []
        self._member_lines: dict[str, int | None] = {}
        self._source_lines: dict[str, tuple[int | None, str]] = {}

    def problem(
        self,
        message: str,
        line: int | None,
        member: str | None = None,
        field: str | None = None,
    ) -> None:
        self.problems.append(ConfigProblem(message, line=line, member=member, field=field))

    def config(self, root: object, path: str) -> Config | None:
        if root is None:
            self.problem(
                "the file is empty; it needs a 'network:' block and a 'members:' list", line=1
            )
            return None
        if not isinstance(root, CommentedMap):
            self.problem(
                f"the file should start with 'network:' and 'members:' blocks, "
                f"but it holds {_describe(root)}",
                line=_node_line(root) or 1,
            )
            return None
        self.unknown_keys(root, _TOP_KEYS, {}, member=None, prefix="")
        network = self.network(root)
        members = self.members(root)
        hidden = self.hidden(root)
        if network is None or members is None or hidden is None:
            return None
        return Config(network=network, members=members, path=path, hidden=hidden)

    def unknown_keys(
        self,
        mapping: CommentedMap,
        allowed: tuple[str, ...],
        hints: dict[str, str],
        member: str | None,
        prefix: str,
    ) -> None:
        for key in mapping:
            if isinstance(key, str) and key in allowed:
                continue
            name = str(key)
            message = f"unknown key {name!r}"
            close = difflib.get_close_matches(name, allowed, n=1)
            if name in hints:
                message += f" ({hints[name]})"
            elif close:
                message += f" (did you mean {close[0]!r}?)"
            else:
                message += f" (the keys allowed here are: {', '.join(allowed)})"
            self.problem(message, _key_line(mapping, key), member, prefix + name)

    # --- single values ---

    def text(
        self,
        mapping: CommentedMap,
        key: str,
        *,
        member: str | None,
        field: str,
        required: str | None = None,
        block_line: int | None = None,
        empty_hint: str = "",
    ) -> str | None:
        """The stripped text at `key`; `required` is the complaint when it is absent.

        An absent key is reported at `block_line`, the line naming the block it is missing
        from: a nested block's own first line is one of its keys, not the block's name.
        """
        if key not in mapping:
            if required is not None:
                line = block_line if block_line is not None else _node_line(mapping)
                self.problem(required, line, member, field)
            return None
        value = mapping[key]
        line = _key_line(mapping, key)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.problem(
                f"'{key}:' has nothing after it; write a value or delete the line{empty_hint}",
                line,
                member,
                field,
            )
            return None
        if not isinstance(value, str):
            self.problem(
                f"'{key}' should be text, not {_describe(value)}; put it in quotes",
                line,
                member,
                field,
            )
            return None
        return str(value).strip()

    def url(
        self,
        mapping: CommentedMap,
        key: str,
        *,
        member: str | None,
        field: str,
        required: str | None = None,
        block_line: int | None = None,
    ) -> str | None:
        text = self.text(
            mapping, key, member=member, field=field, required=required, block_line=block_line
        )
        if text is None:
            return None
        reason = _url_problem(text)
        if reason is not None:
            self.problem(reason, _key_line(mapping, key), member, field)
            return None
        return text

    def duration(
        self, mapping: CommentedMap, key: str, *, member: str | None, field: str
    ) -> timedelta | None:
        if key not in mapping:
            return None
        value = mapping[key]
        line = _key_line(mapping, key)
        if isinstance(value, int) and not isinstance(value, bool):
            self.problem(f"'{key}: {value}' has no unit; {_DURATION_HELP}", line, member, field)
            return None
        text = self.text(mapping, key, member=member, field=field)
        if text is None:
            return None
        try:
            interval = parse_duration(text)
        except ValueError as error:
            self.problem(str(error), line, member, field)
            return None
        if interval <= timedelta(0):
            self.problem(f"'{key}' must be longer than zero", line, member, field)
            return None
        return interval

    def language(self, mapping: CommentedMap, *, member: str | None, field: str) -> str | None:
        text = self.text(mapping, "language", member=member, field=field)
        if text is None:
            return None
        if not _LANGUAGE_PATTERN.fullmatch(text):
            self.problem(
                f"{text!r} is not a language code; use a short code like 'en' (English) "
                "or 'es' (Spanish)",
                _key_line(mapping, "language"),
                member,
                field,
            )
            return None
        return text

    # --- network ---

    def network(self, root: CommentedMap) -> NetworkConfig | None:
        if "network" not in root:
            self.problem(
                "the file has no 'network:' block (the network's title and addresses)",
                None,
                field="network",
            )
            return None
        node = root["network"]
        if not isinstance(node, CommentedMap):
            self.problem(
                "'network' should be a block of keys (title:, url:, feed_url:, …), "
                f"not {_describe(node)}",
                _key_line(root, "network"),
                field="network",
            )
            return None
        self.unknown_keys(node, _NETWORK_KEYS, {}, member=None, prefix="network.")
        title = self.text(
            node,
            "title",
            member=None,
            field="network.title",
            required="the network has no 'title:'; it names the combined feed",
            block_line=_key_line(root, "network"),
        )
        url = self.url(
            node,
            "url",
            member=None,
            field="network.url",
            required="the network has no 'url:' (its website)",
            block_line=_key_line(root, "network"),
        )
        feed_url = self.feed_url(node, _key_line(root, "network"))
        description = self.text(node, "description", member=None, field="network.description")
        language = self.language(node, member=None, field="network.language")
        items_per_feed = self.items_per_feed(node)
        interval = self.duration(node, "interval", member=None, field="network.interval")
        alerts = self.alerts(node)
        limits = self.limits(node)
        retention = self.retention(node)
        websub_hub = self.url(node, "websub_hub", member=None, field="network.websub_hub")
        websub_callback_base = self.websub_callback_base(node)
        if title is None or url is None or feed_url is None:
            return None
        optional: dict[str, Any] = {
            "description": description,
            "language": language,
            "items_per_feed": items_per_feed,
            "interval": interval,
            "alerts": alerts,
            "limits": limits,
            "retention": retention,
            "websub_hub": websub_hub,
            "websub_callback_base": websub_callback_base,
        }
        # Absent keys keep the defaults written once in models.NetworkConfig.
        network = NetworkConfig(
            title=title,
            url=url,
            feed_url=feed_url,
            **{key: value for key, value in optional.items() if value is not None},
        )
        return network

    def websub_callback_base(self, node: CommentedMap) -> str | None:
        """`network.websub_callback_base`: this service's public address for WebSub hubs."""
        field = "network.websub_callback_base"
        url = self.url(node, "websub_callback_base", member=None, field=field)
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            self.problem(
                f"{url!r} should be the service's address, without '?' or '#' "
                "(callbacks are made by adding /websub/… to it)",
                _key_line(node, "websub_callback_base"),
                field=field,
            )
            return None
        return url.rstrip("/")

    def retention(self, node: CommentedMap) -> timedelta | None:
        """`network.retention`: how long items are kept (absent: for ever)."""
        retention = self.duration(node, "retention", member=None, field="network.retention")
        if retention is not None and retention < MIN_RETENTION:
            self.problem(
                f"'retention' should be at least a day (items older than it are deleted "
                f"for good), like '365d', not {node['retention']!r}",
                _key_line(node, "retention"),
                field="network.retention",
            )
            return None
        return retention

    def limits(self, node: CommentedMap) -> FetchLimits | None:
        """`network.limits`: the fetcher's caps, each optional (defaults in FetchLimits)."""
        if "limits" not in node:
            return None
        value = node["limits"]
        if not isinstance(value, CommentedMap):
            self.problem(
                f"'limits' should be a block of keys ({', '.join(_LIMIT_KEYS)}), "
                f"not {_describe(value)}",
                _key_line(node, "limits"),
                field="network.limits",
            )
            return None
        self.unknown_keys(value, _LIMIT_KEYS, {}, member=None, prefix="network.limits.")
        seconds = {
            key: duration.total_seconds()
            for key in ("total_timeout", "connect_timeout", "read_timeout")
            if (duration := self.duration(value, key, member=None, field=f"network.limits.{key}"))
        }
        counts = {
            key: number
            for key, example in (
                ("max_megabytes", "10"),
                ("max_redirects", "5"),
                ("concurrency", "16"),
                ("per_host", "2"),
            )
            if (number := self.positive_int(value, key, f"network.limits.{key}", example))
        }
        defaults = FetchLimits()
        limits = FetchLimits(
            concurrency=counts.get("concurrency", defaults.concurrency),
            connect_timeout=seconds.get("connect_timeout", defaults.connect_timeout),
            read_timeout=seconds.get("read_timeout", defaults.read_timeout),
            total_timeout=seconds.get("total_timeout", defaults.total_timeout),
            max_bytes=counts["max_megabytes"] * 1024 * 1024
            if "max_megabytes" in counts
            else defaults.max_bytes,
            max_redirects=counts.get("max_redirects", defaults.max_redirects),
            per_host=counts.get("per_host", defaults.per_host),
        )
        return limits

    def alerts(self, node: CommentedMap) -> AlertSettings | None:
        """`network.alerts`: where staff are told about failing, quiet and moved sources."""
        if "alerts" not in node:
            return None
        value = node["alerts"]
        line = _key_line(node, "alerts")
        if not isinstance(value, CommentedMap):
            self.problem(
                "'alerts' should be a block of keys (webhook:, email:, failing_after:, "
                f"quiet_after:), not {_describe(value)}",
                line,
                field="network.alerts",
            )
            return None
        self.unknown_keys(value, _ALERT_KEYS, {}, member=None, prefix="network.alerts.")
        webhook = self.url(value, "webhook", member=None, field="network.alerts.webhook")
        email = self.alert_email(value)
        failing_after = self.duration(
            value, "failing_after", member=None, field="network.alerts.failing_after"
        )
        quiet_after = self.duration(
            value, "quiet_after", member=None, field="network.alerts.quiet_after"
        )
        settings = AlertSettings(webhook=webhook, email=email)
        if failing_after is not None:
            settings = replace(settings, failing_after=failing_after)
        if quiet_after is not None:
            settings = replace(settings, quiet_after=quiet_after)
        return settings

    def alert_email(self, node: CommentedMap) -> EmailSettings | None:
        if "email" not in node:
            return None
        value = node["email"]
        line = _key_line(node, "email")
        field = "network.alerts.email"
        if not isinstance(value, CommentedMap):
            self.problem(
                "'email' should be a block of keys (to:, from:, smtp_host:, smtp_port:), "
                f"not {_describe(value)}",
                line,
                field=field,
            )
            return None
        self.unknown_keys(value, _ALERT_EMAIL_KEYS, {}, member=None, prefix=f"{field}.")
        recipients = value.get("to")
        to: list[str] = []
        if isinstance(recipients, str):
            recipients = [recipients]
        if not isinstance(recipients, list) or not recipients:
            self.problem(
                "'email' needs 'to:', the address(es) alerts are sent to, like "
                "[staff@example.org]",
                _key_line(value, "to") if "to" in value else line,
                field=f"{field}.to",
            )
        else:
            for address in recipients:
                if isinstance(address, str) and _EMAIL_PATTERN.fullmatch(address.strip()):
                    to.append(address.strip())
                else:
                    self.problem(
                        f"{address!r} is not an email address like staff@example.org",
                        _key_line(value, "to"),
                        field=f"{field}.to",
                    )
        sender = self.text(
            value,
            "from",
            member=None,
            field=f"{field}.from",
            required="'email' needs 'from:', the address alerts are sent from",
            block_line=line,
        )
        if sender is not None and not _EMAIL_PATTERN.fullmatch(sender):
            self.problem(
                f"{sender!r} is not an email address like aggregator@example.org",
                _key_line(value, "from"),
                field=f"{field}.from",
            )
            sender = None
        smtp_host = self.text(value, "smtp_host", member=None, field=f"{field}.smtp_host")
        smtp_port = value.get("smtp_port", 25)
        port_ok = isinstance(smtp_port, int) and not isinstance(smtp_port, bool)
        if not port_ok or not 0 < smtp_port < 65536:
            self.problem(
                f"'smtp_port' should be a port number like 25 or 587, not {_describe(smtp_port)}",
                _key_line(value, "smtp_port"),
                field=f"{field}.smtp_port",
            )
            smtp_port = None
        starttls = value.get("starttls", False)
        if not isinstance(starttls, bool):
            self.problem(
                "'starttls' should be true or false",
                _key_line(value, "starttls"),
                field=f"{field}.starttls",
            )
            starttls = None
        if sender is None or not to or smtp_port is None or starttls is None:
            return None
        return EmailSettings(
            to=tuple(to),
            sender=sender,
            smtp_host=smtp_host or "localhost",
            smtp_port=int(smtp_port),
            starttls=starttls,
        )

    def feed_url(self, node: CommentedMap, block_line: int | None) -> str | None:
        url = self.url(
            node,
            "feed_url",
            member=None,
            field="network.feed_url",
            required="the network has no 'feed_url:' (where the combined feed is published)",
            block_line=block_line,
        )
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            self.problem(
                f"{url!r} should be a folder address, without '?' or '#'",
                _key_line(node, "feed_url"),
                field="network.feed_url",
            )
            return None
        # Published files are named relative to feed_url, so it must read as a folder.
        if not parts.path.endswith("/"):
            url = urlunsplit(parts._replace(path=parts.path + "/"))
        return url

    def items_per_feed(self, node: CommentedMap) -> int | None:
        return self.positive_int(node, "items_per_feed", "network.items_per_feed", "50")

    def positive_int(self, node: CommentedMap, key: str, field: str, example: str) -> int | None:
        if key not in node:
            return None
        value = node[key]
        line = _key_line(node, key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(
                f"'{key}' should be a whole number like {example}, not {_describe(value)}",
                line,
                field=field,
            )
            return None
        if value < 1:
            self.problem(f"'{key}' should be at least 1", line, field=field)
            return None
        return int(value)

    # --- members ---

    def members(self, root: CommentedMap) -> tuple[MemberConfig, ...] | None:
        if "members" not in root:
            self.problem(
                "the file has no 'members:' list (the organizations whose news is collected)",
                None,
                field="members",
            )
            return None
        node = root["members"]
        line = _key_line(root, "members")
        if node is None or (isinstance(node, CommentedSeq) and not node):
            self.problem(
                "'members:' is empty; list at least one member, each starting with '- id:'",
                line,
                field="members",
            )
            return None
        if not isinstance(node, CommentedSeq):
            self.problem(
                f"'members' should be a list, each member starting with '- ', "
                f"not {_describe(node)}",
                line,
                field="members",
            )
            return None
        members = [self.member(item, _item_line(node, index)) for index, item in enumerate(node)]
        if any(member is None for member in members):
            return None
        return tuple(member for member in members if member is not None)

    def member(self, node: object, line: int | None) -> MemberConfig | None:
        if node is None:
            self.problem("there is an empty '-' entry in the members list", line, field="members")
            return None
        if isinstance(node, str):
            self.problem(
                f"this member is only the text {node!r}; a member is a block of keys: "
                "id:, name:, url: and sources:",
                line,
                field="members",
            )
            return None
        if not isinstance(node, CommentedMap):
            self.problem(
                f"a member should be a block of keys (id:, name:, url:, sources:), "
                f"not {_describe(node)}",
                line,
                field="members",
            )
            return None
        member_id = self.member_id(node, line)
        label = member_id or self.label(node)
        self.unknown_keys(node, _MEMBER_KEYS, _MEMBER_HINTS, member=label, prefix="")
        name = self.text(
            node,
            "name",
            member=label,
            field="name",
            required="this member has no 'name:' (the organization's name as readers see it)",
        )
        url = self.url(
            node,
            "url",
            member=label,
            field="url",
            required="this member has no 'url:' (its website's address)",
        )
        tags = self.tags(node, label)
        language = self.language(node, member=label, field="language")
        interval = self.duration(node, "interval", member=label, field="interval")
        item_filter = self.item_filter(node, label)
        sources = self.sources(node, line, label)
        if (
            member_id is None
            or name is None
            or url is None
            or tags is None
            or sources is None
            or item_filter is None
            or ("language" in node and language is None)
            or ("interval" in node and interval is None)
        ):
            return None
        if not item_filter.empty:
            sources = tuple(
                replace(source, filters=(item_filter, *source.filters)) for source in sources
            )
        return MemberConfig(
            id=member_id,
            name=name,
            url=url,
            sources=sources,
            tags=tags,
            language=language,
            interval=interval,
            line=line,
            item_filter=item_filter,
        )

    @staticmethod
    def label(node: CommentedMap) -> str | None:
        """The id as written, even if unusable, so that problems still name the member."""
        value = node.get("id")
        if not isinstance(value, str) or not value.strip():
            return None
        return str(value).strip()

    def member_id(self, node: CommentedMap, line: int | None) -> str | None:
        member_id = self.text(
            node,
            "id",
            member=None,
            field="id",
            required="this member has no 'id:' (a short name for it, like 'ciw')",
        )
        if member_id is None:
            return None
        id_line = _key_line(node, "id")
        if not _ID_PATTERN.fullmatch(member_id):
            message = (
                f"the id {member_id!r} cannot be used; an id uses only lowercase letters, "
                "digits, '-' and '_', starts with a letter or digit and is at most "
                "40 characters long"
            )
            suggestion = _suggest_slug(member_id)
            if suggestion is not None:
                message += f" (try {suggestion!r})"
            self.problem(message, id_line, member_id, "id")
            return None
        if member_id in self._member_lines:
            first = self._member_lines[member_id]
            self.problem(
                f"the id {member_id!r} is already used by the member on line {first}; "
                "each member needs its own id",
                id_line,
                member_id,
                "id",
            )
            return None
        self._member_lines[member_id] = line
        return member_id

    def tags(self, node: CommentedMap, member: str | None) -> tuple[str, ...] | None:
        if "tags" not in node:
            return ()
        value = node["tags"]
        line = _key_line(node, "tags")
        if value is None:
            self.problem(
                "'tags:' has nothing after it; write a list like [labor] or delete the line",
                line,
                member,
                "tags",
            )
            return None
        if isinstance(value, str):
            self.problem(
                f"'tags' should be a list in square brackets, like: tags: [{value}]",
                line,
                member,
                "tags",
            )
            return None
        if not isinstance(value, CommentedSeq):
            self.problem(
                f"'tags' should be a list, like [agriculture, fair-food], not {_describe(value)}",
                line,
                member,
                "tags",
            )
            return None
        tags: list[str] = []
        ok = True
        for index, item in enumerate(value):
            item_line = _item_line(value, index)
            if not isinstance(item, str):
                self.problem(
                    f"each tag should be a word, not {_describe(item)}", item_line, member, "tags"
                )
                ok = False
                continue
            tag = item.strip().lower()
            if not _ID_PATTERN.fullmatch(tag):
                message = (
                    f"the tag {item!r} cannot be used; a tag uses only letters, digits, "
                    "'-' and '_' (no spaces) and is at most 40 characters long"
                )
                suggestion = _suggest_slug(tag)
                if suggestion is not None:
                    message += f" (try {suggestion!r})"
                self.problem(message, item_line, member, "tags")
                ok = False
                continue
            if tag not in tags:
                tags.append(tag)
        return tuple(tags) if ok else None

    # --- sources ---

    def sources(
        self, node: CommentedMap, member_line: int | None, member: str | None
    ) -> tuple[SourceConfig, ...] | None:
        if "sources" not in node:
            self.problem(
                "this member has no 'sources:'; list at least one '- feed:' or '- page:'",
                member_line,
                member,
                "sources",
            )
            return None
        value = node["sources"]
        line = _key_line(node, "sources")
        if value is None or (isinstance(value, CommentedSeq) and not value):
            self.problem(
                "'sources:' is empty; list at least one '- feed:' or '- page:'",
                line,
                member,
                "sources",
            )
            return None
        if not isinstance(value, CommentedSeq):
            self.problem(
                "'sources' should be a list with each source starting with '- ', like "
                f"'- feed: https://…', not {_describe(value)}",
                line,
                member,
                "sources",
            )
            return None
        sources = [
            self.source(item, _item_line(value, index), member) for index, item in enumerate(value)
        ]
        if any(source is None for source in sources):
            return None
        return tuple(source for source in sources if source is not None)

    def source(self, node: object, line: int | None, member: str | None) -> SourceConfig | None:
        if isinstance(node, str):
            self.problem(
                f"this source is only the text {node!r}; write '- feed: <address>' for a "
                "feed or '- page: <address>' for a news page",
                line,
                member,
                "sources",
            )
            return None
        if not isinstance(node, CommentedMap):
            self.problem(
                f"a source should be '- feed: <address>' or '- page: <address>', "
                f"not {_describe(node)}",
                line,
                member,
                "sources",
            )
            return None
        self.unknown_keys(node, _SOURCE_KEYS, _SOURCE_HINTS, member=member, prefix="")
        urls: dict[SourceKind, str | None] = {}
        for kind in _SOURCE_KINDS:
            if kind in node:
                address = self.url(node, kind, member=member, field=kind)
                urls[kind] = address
                if address is not None:
                    self.check_unique_source(address, _key_line(node, kind), member, kind)
        interval = self.duration(node, "interval", member=member, field="interval")
        item_filter = self.item_filter(node, member)
        if len(urls) > 1:
            self.problem(
                f"this source has both {' and '.join(repr(kind + ':') for kind in urls)}; use one "
                "per source (list each as a separate '- feed:', '- page:' or '- url:' source)",
                line,
                member,
            )
            return None
        if not urls:
            self.problem(
                "this source has neither 'feed:', 'page:' nor 'url:'; write 'feed:' and the "
                "address of an RSS, Atom or JSON feed, 'page:' and the address of a news page, "
                "or 'url:' and the member's website to have its feed found automatically",
                line,
                member,
            )
            return None
        [(kind, url)] = urls.items()
        selectors = None
        if kind == "page" and "selectors" in node:
            selectors = self.page_selectors(node, line, member)
        elif "selectors" in node:
            self.problem(
                f"'selectors' only apply to '- page:' sources; a '{kind}:' source needs none",
                _key_line(node, "selectors"),
                member,
                "selectors",
            )
        follow = self.follow(node, kind, member)
        if (
            url is None
            or member is None
            or item_filter is None
            or follow is None
            or (kind == "page" and "selectors" in node and selectors is None)
            or ("interval" in node and interval is None)
        ):
            return None
        return SourceConfig(
            member_id=member,
            kind=kind,
            url=url,
            selectors=selectors,
            interval=interval,
            line=line,
            follow=follow,
            filters=() if item_filter.empty else (item_filter,),
        )

    def follow(self, node: CommentedMap, kind: str, member: str | None) -> bool | None:
        if "follow" not in node:
            return False
        value = node["follow"]
        line = _key_line(node, "follow")
        if not isinstance(value, bool):
            self.problem(
                f"'follow' should be true or false, not {_describe(value)}", line, member, "follow"
            )
            return None
        if kind != "page":
            self.problem(
                "'follow' only applies to '- page:' sources (a feed already gives each "
                "item's date and image)",
                line,
                member,
                "follow",
            )
            return None
        return value

    # --- filters and moderation ---

    def item_filter(self, node: CommentedMap, member: str | None) -> ItemFilter | None:
        """include:/exclude: keyword lists and max_age:, on a member or a source."""
        include = self.keywords(node, "include", member)
        exclude = self.keywords(node, "exclude", member)
        max_age = self.duration(node, "max_age", member=member, field="max_age")
        if include is None or exclude is None or ("max_age" in node and max_age is None):
            return None
        return ItemFilter(include=include, exclude=exclude, max_age=max_age)

    def keywords(self, node: CommentedMap, key: str, member: str | None) -> tuple[str, ...] | None:
        if key not in node:
            return ()
        value = node[key]
        line = _key_line(node, key)
        example = f"{key}: [farmworkers, \"heat stress\"]"
        if isinstance(value, str):
            self.problem(
                f"'{key}' should be a list in square brackets, like: {key}: [{value}]",
                line,
                member,
                key,
            )
            return None
        if not isinstance(value, CommentedSeq) or not value:
            self.problem(
                f"'{key}' should be a list of words or phrases, like {example}, "
                f"not {_describe(value) if value is not None else 'nothing'}",
                line,
                member,
                key,
            )
            return None
        words: list[str] = []
        ok = True
        for index, item in enumerate(value):
            text = " ".join(item.split()) if isinstance(item, str) else ""
            if not text:
                self.problem(
                    f"each entry of '{key}' should be a word or phrase, not {_describe(item)}",
                    _item_line(value, index),
                    member,
                    key,
                )
                ok = False
            elif text.casefold() not in {word.casefold() for word in words}:
                words.append(text)
        return tuple(words) if ok else None

    def hidden(self, root: CommentedMap) -> tuple[HiddenStory, ...] | None:
        """The stories staff took out of the published feeds, each with its reason."""
        if "hidden" not in root or root["hidden"] is None:
            return ()
        value = root["hidden"]
        if not isinstance(value, CommentedSeq):
            self.problem(
                "'hidden' should be a list, each entry like '- item: urn:uuid:…' with a "
                f"'reason:', not {_describe(value)}",
                _key_line(root, "hidden"),
                field="hidden",
            )
            return None
        found: list[HiddenStory] = []
        ok = True
        for index, entry in enumerate(value):
            line = _item_line(value, index)
            if not isinstance(entry, CommentedMap):
                self.problem(
                    "each hidden story is a block with 'item:' (its id urn:uuid:… or its "
                    f"address) and 'reason:', not {_describe(entry)}",
                    line,
                    field="hidden",
                )
                ok = False
                continue
            self.unknown_keys(entry, _HIDDEN_KEYS, {}, member=None, prefix="hidden.")
            target = self.text(
                entry,
                "item",
                member=None,
                field="hidden.item",
                required="this hidden entry has no 'item:' (a story id urn:uuid:… or an address)",
                block_line=line,
            )
            reason = self.text(
                entry,
                "reason",
                member=None,
                field="hidden.reason",
                required="this hidden entry has no 'reason:' (why it was taken down)",
                block_line=line,
            )
            if target is not None:
                written = target
                target = hidden_target(written)
                if target is None:
                    self.problem(
                        f"{written!r} is neither a story id (urn:uuid:…) nor an address: "
                        f"{_url_problem(written) or 'it cannot be read'}",
                        _key_line(entry, "item"),
                        field="hidden.item",
                    )
            if target is None or reason is None:
                ok = False
                continue
            found.append(HiddenStory(target=target, reason=reason, line=line))
        return tuple(found) if ok else None

    def check_unique_source(
        self, url: str, line: int | None, member: str | None, kind: str
    ) -> None:
        key = _address_key(url)
        if key in self._source_lines:
            first_line, first_member = self._source_lines[key]
            self.problem(
                f"the address {url} is listed twice; it is already on line {first_line} "
                f"(member {first_member!r}); list each feed or page only once",
                line,
                member,
                kind,
            )
            return
        self._source_lines[key] = (line, member or "?")

    def page_selectors(
        self, node: CommentedMap, source_line: int | None, member: str | None
    ) -> PageSelectors | None:
        if "selectors" not in node:
            self.problem(
                "a '- page:' source needs 'selectors:' saying which parts of the page are "
                "the news items (at least 'item:')",
                source_line,
                member,
                "selectors",
            )
            return None
        value = node["selectors"]
        line = _key_line(node, "selectors")
        if not isinstance(value, CommentedMap):
            self.problem(
                "'selectors' should be a block of keys (item:, title:, link:, date:, "
                f"summary:, image:), not {_describe(value)}",
                line,
                member,
                "selectors",
            )
            return None
        self.unknown_keys(value, _SELECTOR_KEYS, {}, member=member, prefix="selectors.")
        found: dict[str, str | None] = {}
        ok = True
        for key in _SELECTOR_KEYS:
            required = None
            if key == "item":
                required = (
                    "'selectors' has no 'item:' (the CSS selector matching each news item "
                    "on the page)"
                )
            found[key] = self.selector(value, key, member, required, line)
            if key in value and found[key] is None:
                ok = False
        item = found["item"]
        if not ok or item is None:
            return None
        return PageSelectors(
            item=item,
            title=found["title"],
            link=found["link"],
            date=found["date"],
            summary=found["summary"],
            image=found["image"],
        )

    def selector(
        self,
        node: CommentedMap,
        key: str,
        member: str | None,
        required: str | None,
        block_line: int | None,
    ) -> str | None:
        field = f"selectors.{key}"
        text = self.text(
            node,
            key,
            member=member,
            field=field,
            required=required,
            block_line=block_line,
            empty_hint=" (a selector that starts with '#' must be put in quotes)",
        )
        if text is None:
            return None
        try:
            soupsieve.compile(text)
        except soupsieve.SelectorSyntaxError as error:
            reason = str(error).splitlines()[0]
            self.problem(
                f"{text!r} is not a valid CSS selector ({reason})",
                _key_line(node, key),
                member,
                field,
            )
            return None
        return text
