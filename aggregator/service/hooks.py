"""Named lists of callables that one part of the service runs so that others can follow it.

Like lemon24/reader's `_update/hooks.py`: the scheduler says "a poll is over" or "feeds.yaml
was reloaded" by running a hook; whoever wants to know (the web app, WebSub) appends a
callable to it in service/app.py. Nobody rewrites another object's callbacks.

This module must never let one callable's failure stop the others or reach the caller:
each failure is logged with its traceback and the next callable runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Generic
from typing import TypeVar

from aggregator.models import Config
from aggregator.models import PollReport

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Hook(Generic[T]):
    """Callables run in the order they were added, each given the same value."""

    def __init__(self, name: str, callables: list[Callable[[T], None]] | None = None) -> None:
        self.name = name
        self.callables: list[Callable[[T], None]] = list(callables or [])

    def append(self, callable_: Callable[[T], None]) -> None:
        self.callables.append(callable_)

    def __call__(self, value: T) -> None:
        for callable_ in self.callables:
            try:
                callable_(value)
            except Exception:
                # A follower's bug must not stop a poll from being saved or the others
                # from hearing about it.
                logger.exception("the %s hook %r failed", self.name, callable_)


@dataclass
class SchedulerHooks:
    """What PollScheduler tells its followers."""

    # After each poll's decision is saved (the report of that poll).
    after_poll: Hook[PollReport] = field(default_factory=lambda: Hook("after_poll"))
    # After feeds.yaml was reloaded and applied (the new configuration).
    after_reload: Hook[Config] = field(default_factory=lambda: Hook("after_reload"))
