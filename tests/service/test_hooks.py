"""The scheduler's hooks: every follower runs, in order, even when one before it fails."""

from __future__ import annotations

import logging

import pytest

from aggregator.service.hooks import Hook


def test_a_failing_callable_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def broken(value: str) -> None:
        raise RuntimeError(f"cannot follow {value}")

    hook: Hook[str] = Hook("after_poll", [lambda value: seen.append(f"first {value}")])
    hook.append(broken)
    hook.append(lambda value: seen.append(f"last {value}"))
    with caplog.at_level(logging.ERROR, logger="aggregator.service.hooks"):
        hook("report")
    assert seen == ["first report", "last report"]
    assert "the after_poll hook" in caplog.text
    assert "cannot follow report" in caplog.text
