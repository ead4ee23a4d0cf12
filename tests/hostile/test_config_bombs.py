"""A feeds.yaml alias bomb is refused before anything is built, and never stalls the service.

An edit combining a YAML alias bomb with a bad value froze the running service: the error
path walked every alias without memoizing, on the event loop, and /healthz stopped
answering for 16 s. The reader now counts what the aliases expand to first (memoized) and
refuses the file naming the line; the service reads and checks an edit in a thread, so
its web server answers while a reload is under way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import httpx
import pytest

from aggregator.config import parse_config
from aggregator.config.yaml_file import MAX_EXPANDED_NODES
from aggregator.config.yaml_file import AliasBombError
from aggregator.errors import ConfigError
from aggregator.ingest.fetch import Fetcher
from aggregator.models import Config
from aggregator.service import web
from aggregator.service.scheduler import PollScheduler
from aggregator.store import Store
from tests.hostile.test_config_cli import good_config
from tests.service.test_websub import serving

WAIT = 60.0  # seconds a blocked reload waits for /healthz at most: a hang, not a timing


def bomb(levels: int = 8) -> str:
    """A good file, a bad value, and nine-fold aliases nested `levels` deep (9**levels)."""
    lines = [
        "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
        *(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)),
    ]
    text = good_config("https://good.example.org/feed.xml").replace(
        "  feed_url:", "  items_per_feed: many\n  feed_url:"
    )
    return text + "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_naming_its_line() -> None:
    assert MAX_EXPANDED_NODES < 9**8
    text = bomb()
    line = text.splitlines().index("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]") + 1
    with pytest.raises(AliasBombError) as caught:
        parse_config(text, "bomb.yaml")
    [problem] = caught.value.problems
    assert problem.line == line
    assert "alias bomb" in str(caught.value)
    assert f"more than {MAX_EXPANDED_NODES:,} values" in str(caught.value)


def test_a_few_aliases_are_still_fine() -> None:
    text = good_config("https://good.example.org/feed.xml") + "x0: &a0 [1, 2]\nx1: [*a0, *a0]\n"
    with pytest.raises(ConfigError) as caught:  # x0 and x1 are unknown keys, no more
        parse_config(text, "fine.yaml")
    assert not isinstance(caught.value, AliasBombError)
    assert "x0" in str(caught.value)


def test_a_reload_is_read_off_the_event_loop_while_healthz_answers(
    sqlite_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(good_config("http://127.0.0.1:9/feed.xml"), encoding="utf-8")
    config: Config = parse_config(path.read_text(encoding="utf-8"), str(path))
    sqlite_store.sync_config(config)
    app = web.create_app(config, sqlite_store)
    released = threading.Event()
    seen: list[bool] = []

    async def scenario() -> None:
        async with Fetcher() as fetcher, serving(app) as base:
            scheduler = PollScheduler(config, sqlite_store, fetcher, config_path=path)
            real_changed = scheduler.watcher.changed

            def slow_changed() -> Config | None:
                # Stands in for a reload that takes long: it returns once /healthz has
                # answered, which it can only do if this runs off the event loop.
                seen.append(released.wait(WAIT))
                return real_changed()

            scheduler.watcher.changed = slow_changed  # type: ignore[method-assign]
            path.write_text(bomb(), encoding="utf-8")
            reload = asyncio.create_task(scheduler._reload())
            async with httpx.AsyncClient(base_url=base) as client:
                response = await client.get("/healthz", timeout=WAIT * 2)
            released.set()
            assert response.status_code == 200
            with caplog.at_level(logging.ERROR, logger="aggregator.service.reload"):
                await reload
            assert scheduler.config is config  # the bomb is refused, the running file stays

    asyncio.run(scenario())
    assert seen == [True], "the reload blocked the event loop until it gave up waiting"
    assert "alias bomb" in caplog.text
