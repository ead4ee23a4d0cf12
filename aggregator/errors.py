"""The aggregator's exception tree, rooted in AggregatorError.

Every error names what it is about (member, source URL, config line) and the cause in
words a staff member can act on. HTTP faults while polling are *not* raised: the fetcher
reports them in a FetchResult so that one broken member never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass


class AggregatorError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with feeds.yaml, located as precisely as the file allows."""

    message: str
    line: int | None = None
    member: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.member is not None:
            where.append(f"member {self.member!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ConfigError(AggregatorError):
    """feeds.yaml cannot be used; carries every problem found, not only the first."""

    def __init__(self, path: str, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = "\n".join(f"  {path}: {problem}" for problem in self.problems)
        super().__init__(f"{path} has {len(self.problems)} problem(s):\n{lines}")


class SourceError(AggregatorError):
    """Something went wrong with one member's source."""

    def __init__(self, member_id: str, url: str, cause: str) -> None:
        self.member_id = member_id
        self.url = url
        self.cause = cause
        super().__init__(f"{member_id}: {url}: {cause}")


class ParseError(SourceError):
    """A source's body could not be read as a feed or a news page."""


class StorageError(AggregatorError):
    """The database is unusable (cannot open, wrong schema, locked for too long)."""


class PublishError(AggregatorError):
    """The published files could not be written."""


class ListenError(AggregatorError):
    """The web server cannot listen where it was asked to (port in use, no permission)."""


class ServiceError(AggregatorError):
    """A part of the running service stopped by itself (a web process, the web server)."""
