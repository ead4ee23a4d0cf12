"""The shared part of the feeds.yaml checker: locating problems, and checking single values.

Every problem is collected (not only the first), located by line, member and field, and
explained in plain words with a hint at the fix.

It must never fetch or check an address over the network, and never let an unchecked value
into what it returns.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from datetime import datetime
from datetime import timedelta
from urllib.parse import urlsplit

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq

from aggregator.errors import ConfigProblem
from aggregator.models import ItemFilter
from aggregator.text import slugify

FILTER_KEYS = ("include", "exclude", "max_age")
_HIDDEN_KEYS = ("item", "reason")
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
LANGUAGE_PATTERN = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
DURATION_PATTERN = re.compile(
    r"(?:(?P<days>\d+)\s*d)?\s*(?:(?P<hours>\d+)\s*h)?\s*"
    r"(?:(?P<minutes>\d+)\s*m)?\s*(?:(?P<seconds>\d+)\s*s)?",
    re.IGNORECASE,
)
DURATION_HELP = "write a number and a unit (s, m, h or d), like '30m', '2h' or '1h30m'"
URL_HELP = (
    "only http and https addresses are allowed, written in full like https://example.org/news/"
)


def parse_duration(text: str) -> timedelta:
    """Read a duration such as "90s", "30m", "2h", "1d" or "1h30m"; raises ValueError."""
    match = DURATION_PATTERN.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a length of time; {DURATION_HELP}")
    numbers = {unit: int(value or 0) for unit, value in match.groupdict().items()}
    try:
        return timedelta(**numbers)
    except OverflowError as error:
        raise ValueError(f"{text!r} is far too long a time") from error


def node_line(node: object) -> int | None:
    if isinstance(node, CommentedMap | CommentedSeq):
        return int(node.lc.line) + 1
    return None


def key_line(mapping: CommentedMap, key: object) -> int | None:
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (KeyError, TypeError):
        return node_line(mapping)


def item_line(sequence: CommentedSeq, index: int) -> int | None:
    try:
        return int(sequence.lc.item(index)[0]) + 1
    except (KeyError, TypeError):
        return node_line(sequence)


def describe(value: object) -> str:
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


def url_problem(text: str) -> str | None:
    """Why `text` cannot be used as a source or site address, or None when it can."""
    if any(character.isspace() for character in text):
        return f"{text!r} contains spaces; {URL_HELP}"
    try:
        parts = urlsplit(text)
    except ValueError:
        return f"{text!r} is not written correctly; {URL_HELP}"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not scheme and "." in text.split("/", 1)[0]:
            return f"{text!r} does not start with https://; {URL_HELP}"
        return f"{text!r} cannot be used: {URL_HELP}"
    if not parts.hostname:
        return f"{text!r} has no site name after '{parts.scheme}://'; {URL_HELP}"
    try:
        parts.port  # noqa: B018 - reading it is what validates it
    except ValueError:
        return f"{text!r} has a port number that is not valid; {URL_HELP}"
    return None


def suggest_slug(text: str) -> str | None:
    slug = slugify(text)
    return slug if ID_PATTERN.fullmatch(slug) else None


class CheckerBase:
    """Walks the loaded YAML once, collecting every problem while building the Config.

    The checks of single values live here; check_network, check_members and check_sources
    add the checks of each part of the file, and load.Checker puts them together.
    """

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
            self.problem(message, key_line(mapping, key), member, prefix + name)

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
                line = block_line if block_line is not None else node_line(mapping)
                self.problem(required, line, member, field)
            return None
        value = mapping[key]
        line = key_line(mapping, key)
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
                f"'{key}' should be text, not {describe(value)}; put it in quotes",
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
        reason = url_problem(text)
        if reason is not None:
            self.problem(reason, key_line(mapping, key), member, field)
            return None
        return text

    def duration(
        self, mapping: CommentedMap, key: str, *, member: str | None, field: str
    ) -> timedelta | None:
        if key not in mapping:
            return None
        value = mapping[key]
        line = key_line(mapping, key)
        if isinstance(value, int) and not isinstance(value, bool):
            self.problem(f"'{key}: {value}' has no unit; {DURATION_HELP}", line, member, field)
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
        if not LANGUAGE_PATTERN.fullmatch(text):
            self.problem(
                f"{text!r} is not a language code; use a short code like 'en' (English) "
                "or 'es' (Spanish)",
                key_line(mapping, "language"),
                member,
                field,
            )
            return None
        return text

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
        line = key_line(node, key)
        example = f'{key}: [farmworkers, "heat stress"]'
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
                f"not {describe(value) if value is not None else 'nothing'}",
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
                    f"each entry of '{key}' should be a word or phrase, not {describe(item)}",
                    item_line(value, index),
                    member,
                    key,
                )
                ok = False
            elif text.casefold() not in {word.casefold() for word in words}:
                words.append(text)
        return tuple(words) if ok else None
