"""The web app's front (web.WebApp): cached published documents and their 304s answered
before Starlette's router, over raw sockets to a real uvicorn server on 127.0.0.1.

The front must answer byte for byte as the router does (status line, every header but
Date, body), only for a GET or HEAD without a query of a path whose rendering is cached and
current, and must stop answering from a rendering as soon as the data (a hide, a staff
merge) or the configuration changes. Whether the front or the router answered is read from
WebState.fast_answers; with VERSION_CHECK_SECONDS at 0 the front never answers (the version
is always due to be read), which gives the router's answer to compare with.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from starlette.applications import Starlette

from aggregator.config import parse_config
from aggregator.demo import sample_sites
from aggregator.models import Config
from aggregator.models import StoryCorrection
from aggregator.publish import site
from aggregator.service import server as server_module
from aggregator.service import web
from aggregator.store import Store
from tests.service.test_web import paged_demo_config_text
from tests.support.polling import poll_once

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PATIENCE = 30.0  # seconds a request may take before the test fails as a hang
# Every kind of published path the front may answer.
PATHS = [
    "/feed.atom",
    "/",
    "/index.html",
    "/embed",
    "/embed.js",
    "/members/dairy/feed.json",
    "/tags/wage-theft/feed.rss",
    "/archive/1.atom",
    "/members.opml",
    "/api/items.json",
]


@dataclass(frozen=True)
class Polled:
    config: Config
    database_file: Path


@dataclass(frozen=True)
class Running:
    app: Starlette
    port: int
    store: Store

    @property
    def state(self) -> web.WebState:
        state = self.app.state.web
        assert isinstance(state, web.WebState)
        return state


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polled]:
    """The demo's sample sites polled once into an SQLite file (4 stories per feed page)."""
    directory = tmp_path_factory.mktemp("front")
    with sample_sites() as sites:
        text = paged_demo_config_text(sites.base_url)
        config = parse_config(text, str(directory / "feeds.yaml"))
        database_file = directory / "aggregator.db"
        store = Store.open(f"sqlite:///{database_file}")
        try:
            store.sync_config(config)

            poll_once(config, store)
        finally:
            store.close()
    yield Polled(config, database_file)


@pytest.fixture
def running(polled: Polled, tmp_path: Path) -> Iterator[Running]:
    """The app under the service's own server, on a copy of the polled database."""
    database_file = tmp_path / "aggregator.db"
    shutil.copyfile(polled.database_file, database_file)
    store = Store.open(f"sqlite:///{database_file}")
    app = web.create_app(polled.config, store, clock=lambda: NOW)
    server = server_module.make_server(app, "127.0.0.1", 0, access_log=False, handle_signals=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Running(app, server.servers[0].sockets[0].getsockname()[1], store)
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE)
        store.close()


def exchange(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    """One request on its own connection; the whole answer as the server sent it."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def without_date(answer: bytes) -> bytes:
    """The answer without its Date header, the one line that changes from second to second."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def header(answer: bytes, name: str) -> str:
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    raise AssertionError(f"no {name} header in {head!r}")


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def router_then_front(
    running: Running,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """The same request answered by the router, then by the front."""
    state = running.state
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", 0.0)
    answered = state.fast_answers
    by_router = exchange(running.port, method, path, headers)
    assert state.fast_answers == answered, "the front answered with the version due"
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", 3600.0)
    by_front = exchange(running.port, method, path, headers)
    assert state.fast_answers == answered + 1, f"the front did not answer {method} {path}"
    return by_router, by_front


@pytest.mark.parametrize("path", PATHS)
def test_the_front_answers_get_and_head_as_the_router_does(
    running: Running, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    by_router, by_front = router_then_front(running, monkeypatch, "GET", path)
    assert status(by_router) == 200
    assert without_date(by_front) == without_date(by_router)
    for name in ("etag", "cache-control", "access-control-allow-origin", "content-type"):
        header(by_front, name)
    head_router, head_front = router_then_front(running, monkeypatch, "HEAD", path)
    assert without_date(head_front) == without_date(head_router)
    assert head_front.endswith(b"\r\n\r\n")  # no body


@pytest.mark.parametrize("path", ["/feed.atom", "/members/dairy/feed.json", "/"])
def test_the_front_answers_conditional_requests_as_the_router_does(
    running: Running, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    first = exchange(running.port, "GET", path)
    etag = header(first, "etag")
    last_modified = header(first, "last-modified")
    cases: list[tuple[dict[str, str], int]] = [
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": f'"x", W/{etag}'}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": last_modified}, 304),
        ({"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 200),
        ({"If-Modified-Since": "garbage"}, 200),
        ({"If-None-Match": '"stale"', "If-Modified-Since": last_modified}, 200),
    ]
    for headers, expected in cases:
        by_router, by_front = router_then_front(running, monkeypatch, "GET", path, headers)
        assert status(by_router) == expected, headers
        assert without_date(by_front) == without_date(by_router), headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/feed.atom?lang=en"),
        ("GET", "/?q=wage"),
        ("GET", "/embed?help"),
        ("GET", "/api/items?limit=2"),
        ("POST", "/feed.atom"),
        ("GET", "//feed.atom"),
        ("GET", "/healthz"),
    ],
)
def test_everything_else_goes_through_the_router(
    running: Running, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", 3600.0)
    for warm in ("/feed.atom", "/", "/embed", "/api/items"):
        exchange(running.port, "GET", warm)
    answered = running.state.fast_answers
    for _ in range(2):
        exchange(running.port, method, path)
    assert running.state.fast_answers == answered


def wait_for_version_check(seconds: float) -> None:
    time.sleep(seconds * 1.5)


def test_a_hidden_story_leaves_the_fronts_answers(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = 0.2
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", check)
    before = exchange(running.port, "GET", "/feed.atom")
    exchange(running.port, "GET", "/feed.atom")
    assert running.state.fast_answers >= 1
    newest = running.store.latest_stories(1)[0]
    assert newest.id.encode() in before
    running.store.hide(newest.id, "test", NOW)
    wait_for_version_check(check)
    after = exchange(running.port, "GET", "/feed.atom")
    assert status(after) == 200
    assert newest.id.encode() not in after
    assert header(after, "etag") != header(before, "etag")
    # The old validator no longer gets a 304, from the router or the front.
    for _ in range(2):
        stale = exchange(
            running.port, "GET", "/feed.atom", {"If-None-Match": header(before, "etag")}
        )
        assert status(stale) == 200 and newest.id.encode() not in stale


def test_a_staff_merge_changes_the_fronts_answers(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = 0.2
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", check)
    stories = running.store.latest_stories(2)
    before = exchange(running.port, "GET", "/feed.json")
    exchange(running.port, "GET", "/feed.json")
    answered = running.state.fast_answers
    assert answered >= 1
    urls = tuple(str(story.credits[0].item_url) for story in stories)
    running.store.sync_corrections([StoryCorrection("merge", urls)])
    wait_for_version_check(check)
    after = exchange(running.port, "GET", "/feed.json")
    assert running.state.fast_answers == answered  # the version was due: the router answered
    assert header(after, "etag") != header(before, "etag")
    # One story now, credited to both members: one of the two ids is gone.
    ids = [story.id.encode() for story in stories]
    assert all(story_id in before for story_id in ids)
    assert sum(story_id in after for story_id in ids) == 1


def test_a_new_configuration_is_never_answered_from_the_old_one(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", 3600.0)
    exchange(running.port, "GET", "/members.opml")
    before = exchange(running.port, "GET", "/members.opml")
    config = running.state.config
    renamed = tuple(
        member if member.id != "faith" else type(member)(**{**member.__dict__, "name": "Renamed"})
        for member in config.members
    )
    web.set_config(running.app, Config(network=config.network, members=renamed))
    answered = running.state.fast_answers
    after = exchange(running.port, "GET", "/members.opml")
    assert running.state.fast_answers == answered
    assert b"Renamed" in after and b"Renamed" not in before
    again = exchange(running.port, "GET", "/members.opml")
    assert running.state.fast_answers == answered + 1
    assert without_date(again) == without_date(after)


def test_one_rendering_of_a_document_at_a_time(polled: Polled, tmp_path: Path) -> None:
    """Requests for a document whose rendering is under way wait for it, not render it too."""
    database_file = tmp_path / "aggregator.db"
    shutil.copyfile(polled.database_file, database_file)
    store = Store.open(f"sqlite:///{database_file}")
    state = web.WebState(config=polled.config, store=store, clock=lambda: NOW)
    rendering = threading.Event()
    release = threading.Event()
    renders: list[int] = []

    def render() -> site.Document:
        renders.append(1)
        rendering.set()
        release.wait(PATIENCE)
        return site.Document("feed.atom", "application/atom+xml; charset=utf-8", b"<feed/>")

    answers: list[web.Rendered] = []
    threads = [
        threading.Thread(target=lambda: answers.append(state.cached(("site", "feed.atom"), render)))
        for _ in range(8)
    ]
    try:
        for thread in threads:
            thread.start()
        assert rendering.wait(PATIENCE)
        time.sleep(0.2)  # the other requests arrive while the first renders
        release.set()
        for thread in threads:
            thread.join(PATIENCE)
    finally:
        release.set()
        store.close()
    assert len(answers) == 8
    assert len(renders) == 1
    assert len({id(answer) for answer in answers}) == 1
