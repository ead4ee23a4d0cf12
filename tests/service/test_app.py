"""`aggregator run --role all` through the real CLI in a subprocess (service/app.py): the
web is served by a child process while the `run` process itself polls, told apart through
Linux's /proc (which process holds each end of a TCP connection), not through anything the
service says about itself; both halves stop together on SIGTERM and on Ctrl-C, a web
process that dies stops the polling with an error, a killed `run` takes its web process
with it, and WebSub and feeds.yaml edits still work across the two processes.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from aggregator.cli import EXIT_SERVICE
from aggregator.demo.server import Route
from aggregator.demo.server import send
from aggregator.store import Store
from tests.service.test_websub import NEW_TITLE
from tests.service.test_websub import PUSHED
from tests.service.test_websub import RSS
from tests.service.test_websub import WORDPRESS
from tests.service.test_websub import Hub
from tests.service.test_websub import config_text
from tests.service.test_websub import feed_body
from tests.service.test_websub import free_port
from tests.service.test_websub import titles
from tests.support.processes import connection_owner
from tests.support.processes import environment
from tests.support.processes import running
from tests.support.processes import spawned_children
from tests.support.server import FixtureServer

PATIENCE = 120.0  # seconds: a hang fails the test, not a timing assertion
TITLE = "Dairy workers win a heat safety agreement"
SECOND_TITLE = "Greenhouse workers elect their first safety committee"


def rss(title: str, slug: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Members</title>'
        "<link>https://news.example.org/</link>"
        f"<item><title>{title}</title><link>https://news.example.org/{slug}</link>"
        f"<guid>{slug}</guid><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description>{title}, the members report.</description></item>"
        "</channel></rss>"
    ).encode()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


class Service:
    """`aggregator run` (role all) on a free port, in its own session, so that a Ctrl-C to
    its process group reaches it and its children only."""

    def __init__(self, config: Path, database: str, port: int | None = None) -> None:
        self.config = config
        self.port = port if port is not None else free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "aggregator.cli", "--config", str(config),
            "--database", database, "run", "--port", str(self.port), "--tick-seconds", "0.2",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first == f"serving on {self.base}/ (Ctrl-C to stop)\n", self.finish()
        wait_for(lambda: len(spawned_children(self.process.pid)) == 1, "the web process")
        (self.web,) = spawned_children(self.process.pid)
        # The web process listens once it can answer (connections are refused until then).
        wait_for(lambda: self.answers("/healthz", ""), "the web process answering")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=PATIENCE)

    def answers(self, path: str, text: str) -> bool:
        try:
            response = self.get(path)
        except httpx.TransportError:
            return False
        return response.status_code == 200 and text in response.text

    def finish(self) -> tuple[int, str, str]:
        """Wait for the process to end; its exit code and what it printed."""
        try:
            out, err = self.process.communicate(timeout=PATIENCE)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.communicate()
        return self.process.returncode, out, err

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        return self.finish()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def sites() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Services a test starts; any still running at the end are killed."""
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()


def one_feed(tmp_path: Path, sites: FixtureServer, body: bytes) -> tuple[Path, str]:
    sites.routes["/feed/"] = Route(body=body, headers={"Content-Type": RSS})
    config = tmp_path / "feeds.yaml"
    config.write_text(config_text(sites.url("/feed/")), encoding="utf-8")
    return config, f"sqlite:///{tmp_path / 'aggregator.db'}"


@pytest.fixture
def polled(tmp_path: Path, sites: FixtureServer, services: list[Service]) -> Service:
    """`run` on one feed, once /feed.atom shows its story (polled, stored and served)."""
    config, database = one_feed(tmp_path, sites, rss(TITLE, "heat"))
    service = Service(config, database)
    services.append(service)
    wait_for(lambda: service.answers("/feed.atom", TITLE), "the polled story on /feed.atom")
    return service


def test_a_child_process_answers_while_the_run_process_polls(
    tmp_path: Path, sites: FixtureServer, services: list[Service]
) -> None:
    held = threading.Event()
    release = threading.Event()
    poll_ports: list[int] = []

    def slow(handler: BaseHTTPRequestHandler) -> None:
        poll_ports.append(handler.client_address[1])
        held.set()
        release.wait(PATIENCE)  # the poll stays in flight while the web is asked
        send(handler, Route(body=rss(TITLE, "heat"), headers={"Content-Type": RSS}))

    config, database = one_feed(tmp_path, sites, b"")
    sites.responders["/feed/"] = slow
    service = Service(config, database)
    services.append(service)
    tree = [service.process.pid, service.web]
    try:
        assert held.wait(PATIENCE), "the feed was never polled"
        sites_port = urlsplit(sites.base_url).port
        assert sites_port is not None
        # The poll's connection to the member's site is held by the `run` process itself.
        assert connection_owner(poll_ports[0], sites_port, tree) == service.process.pid
        web = http.client.HTTPConnection("127.0.0.1", service.port, timeout=PATIENCE)
        try:
            web.request("GET", "/healthz")
            response = web.getresponse()
            response.read()
            assert response.status == 200
            # The same connection, kept alive: the web's end is held by the child only.
            client_port = web.sock.getsockname()[1]
            assert connection_owner(service.port, client_port, tree) == service.web
        finally:
            web.close()
    finally:
        release.set()
    # Stored by the poller, served by the web process from the database.
    wait_for(lambda: service.answers("/feed.atom", TITLE), "the polled story on /feed.atom")
    code, out, err = service.stop(signal.SIGTERM)
    assert code == 0, err
    assert out.endswith("stopped\n")
    assert not running(service.web), "the web process was left running"
    assert "Traceback" not in err, err


def test_ctrl_c_stops_both_halves(
    polled: Service,
) -> None:
    service = polled
    os.killpg(service.process.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group
    code, out, err = service.finish()
    assert code == 0, err
    assert out.endswith("stopped\n")
    assert not running(service.web)
    assert "web process stopped by itself" not in err


def test_a_dead_web_process_stops_the_service_with_an_error(
    polled: Service,
) -> None:
    service = polled
    os.kill(service.web, signal.SIGKILL)
    code, _, err = service.finish()
    assert code == EXIT_SERVICE
    assert f"error: the web process stopped by itself (exit code -{signal.SIGKILL:d})" in err
    assert "Traceback" not in err


def test_a_killed_run_process_takes_its_web_process_with_it(
    polled: Service,
) -> None:
    service = polled
    service.process.kill()  # SIGKILL: nothing of the parent's own runs
    service.process.communicate(timeout=PATIENCE)
    wait_for(lambda: not running(service.web), "the orphaned web process to stop")


def test_websub_subscribes_from_the_poller_and_the_web_process_takes_the_delivery(
    tmp_path: Path, sites: FixtureServer, services: list[Service]
) -> None:
    port = free_port()
    with Hub() as hub:
        feed_url = sites.url("/feed/")
        sites.routes["/feed/"] = Route(
            body=feed_body(WORDPRESS, hub.url, feed_url), headers={"Content-Type": RSS}
        )
        config = tmp_path / "feeds.yaml"
        callback_base = f"http://127.0.0.1:{port}"
        config.write_text(config_text(feed_url, callback_base=callback_base, hub=hub.url))
        database = f"sqlite:///{tmp_path / 'aggregator.db'}"
        service = Service(config, database, port)
        services.append(service)
        # Asked by the `run` process after its first poll found the hub; verified by the
        # hub's GET, which only the web process can answer.
        wait_for(lambda: len(hub.subscriptions) == 1, "the subscription verified")
        assert [v.echoed for v in hub.verifications] == [True]
        polls = len(sites.requests_for("/feed/"))
        response = hub.deliver(feed_body(PUSHED, hub.url, feed_url))
        assert response.status_code == 200
        wait_for(lambda: service.answers("/feed.atom", NEW_TITLE), "the delivery on /feed.atom")
        assert len(sites.requests_for("/feed/")) == polls  # no poll brought it
        code, _, err = service.stop()
    assert code == 0, err
    assert "pushed by its WebSub hub: new (1 new, 0 updated)" in err
    store = Store.open(database)
    try:
        assert NEW_TITLE in titles(store)
    finally:
        store.close()


def test_both_halves_follow_a_feeds_yaml_edit(sites: FixtureServer, polled: Service) -> None:
    service = polled
    assert service.get("/members/dairy/feed.atom").status_code == 404
    sites.routes["/dairy/"] = Route(
        body=rss(SECOND_TITLE, "committee"), headers={"Content-Type": RSS}
    )
    edited = config_text(sites.url("/feed/"), second_feed=sites.url("/dairy/"))
    service.config.write_text(edited, encoding="utf-8")
    stamp = time.time() + 5  # a modification time the reload cannot miss
    os.utime(service.config, (stamp, stamp))
    # The poller polls the new source; the web process serves the new member's feed.
    wait_for(
        lambda: service.answers("/members/dairy/feed.atom", SECOND_TITLE),
        "the new member's feed with its story",
    )
    code, _, err = service.stop()
    assert code == 0, err
