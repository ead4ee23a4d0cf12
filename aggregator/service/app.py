"""The one place that builds and starts the running service, for every role.

Like Miniflux's cli/daemon.go, this is the only module that knows every part: logging,
the store, the web app, WebSub, the scheduler with its alerts and pruning, and the
signals that stop them. `aggregator run` (any --role), `serve` and `demo --serve` call it;
the command line only parses arguments and prints.

Roles (`aggregator run --role`): "all" runs the scheduler and the web server in one
process (one box); "worker" the scheduler only (any number of them share a PostgreSQL
database, each due source claimed by one); "web" the web server only (stateless replicas
serving from the database, same bytes and ETags from each, following feeds.yaml edits).
`--workers N` (web role and `serve` only) runs N such web processes on one listening
socket, bound here before they start; this process only watches them. The scheduler is
never among them, so polling still happens once.

This module must never poll, decide a schedule, render a document or print to the user's
terminal itself (the stages, policy.py and the CLI do); it only builds, connects, starts
and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from aggregator.config import load_config
from aggregator.errors import AggregatorError
from aggregator.ingest.fetch import Fetcher
from aggregator.models import Config
from aggregator.service.alerts import scheduled_alert_check
from aggregator.service.hooks import SchedulerHooks
from aggregator.service.scheduler import AlertCheck
from aggregator.service.scheduler import PollScheduler
from aggregator.service.server import event_loop_factory
from aggregator.service.server import listen
from aggregator.service.server import make_server
from aggregator.service.settings import ROLES
from aggregator.service.settings import SchedulerSettings
from aggregator.service.web import create_app
from aggregator.service.web import set_config
from aggregator.service.websub import WebSubService
from aggregator.store import Store
from aggregator.text import TerminalSafeFormatter

__all__ = ["ROLES", "configure_logging", "run", "run_service", "serve"]

Announce = Callable[[str], None]
WORKER_STOP_SECONDS = 30.0  # how long web worker processes get to finish their requests
LISTEN_BACKLOG = 2048  # uvicorn's own default


def configure_logging(*, quiet: bool) -> None:
    """INFO for the service (one line per poll), WARNING only for the demo (`quiet`)."""
    handler = logging.StreamHandler()
    # Log lines quote addresses, titles and errors members' sites wrote: no escape sequences.
    handler.setFormatter(TerminalSafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, handlers=[handler])
    # One line per poll comes from aggregator.service.scheduler; these would repeat it every tick.
    for chatty in ("apscheduler", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def run(
    config_path: str,
    database: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    role: str = "all",
    settings: SchedulerSettings | None = None,
    quiet: bool = False,
    access_log: bool = True,
    announce: Announce = lambda line: None,
    workers: int = 1,
    listening: socket.socket | None = None,
) -> None:
    """`aggregator run`: poll on schedule and serve the site until SIGTERM/SIGINT.

    `role` (ROLES) keeps only the polling ("worker") or the serving ("web") half. `quiet`
    (the demo, which has said where everything is) logs only warnings and errors, and
    leaves WebSub off. `announce` is given the line that says where the service is.
    `workers` > 1 (role "web" only) serves from that many processes on one socket.
    `listening`: the socket to serve on, already bound (a worker process's).
    """
    configure_logging(quiet=quiet)
    config = load_config(config_path)
    if workers > 1:
        if role != "web":
            raise AggregatorError(
                f"--workers {workers} needs --role web: the scheduler must run once "
                "(start one `run --role worker` beside the web processes)"
            )
        listening = listen(host, port)
        announce(f"serving on http://{host}:{port}/ with {workers} processes (Ctrl-C to stop)")
        worker_arguments = (config_path, database, host, port, settings, quiet, access_log)
        _supervise(workers, _run_web_worker, worker_arguments, listening)
        return
    # A web replica never migrates: several of them starting at once would race.
    store = Store.open(database, upgrade=role != "web")
    try:
        polls = role != "web"
        if polls:
            # A web replica writes nothing: the workers keep members and sources in step.
            store.sync_config(config)
        app = create_app(config, store) if role != "worker" else None
        # Given a socket, this is one of --workers' processes: its supervisor has announced.
        announced = listening is not None
        if app is not None and listening is None:
            listening = listen(host, port)
        if quiet or announced:
            pass
        elif app is not None:
            announce(f"serving on http://{host}:{port}/ (Ctrl-C to stop)")
        else:
            announce("polling as a worker, serving nothing (Ctrl-C to stop)")
        hooks = SchedulerHooks()
        if app is not None:
            served = app
            hooks.after_reload.append(lambda reloaded: set_config(served, reloaded))
        # WebSub: hub pings follow the polls; subscriptions need the callback served by the
        # same process, so only `--role all` subscribes. Never in the demo: its sample feeds
        # advertise no hub, and no hub could reach a callback on 127.0.0.1.
        websub = (
            WebSubService(config, store, subscribe=app is not None) if polls and not quiet else None
        )
        if websub is not None and app is not None:
            websub.install(app)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(
                run_service(
                    config,
                    store,
                    app=app,
                    host=host,
                    port=port,
                    settings=settings,
                    alert_check=scheduled_alert_check(store) if polls else None,
                    hooks=hooks,
                    websub=websub,
                    poll=polls,
                    listening=listening,
                    server_log_level="warning" if quiet else None,
                    access_log=access_log,
                )
            )
    finally:
        store.close()


def serve(
    config: Config,
    database: str,
    host: str,
    port: int,
    announce: Announce,
    *,
    workers: int = 1,
) -> None:
    """`aggregator serve`: the site from what is stored until Ctrl-C; nothing is polled
    and feeds.yaml is read once (uvicorn handles the signals). `workers` > 1: that many
    processes serve from one socket."""
    store = Store.open(database)
    try:
        store.sync_config(config)
        listening = listen(host, port)
        if workers > 1:
            store.close()  # each process opens its own: a pool must not cross a fork
            announce(f"serving on http://{host}:{port}/ with {workers} processes (Ctrl-C to stop)")
            _supervise(workers, _serve_worker, (config, database, host, port), listening)
            return
        server = make_server(create_app(config, store), host, port)
        announce(f"serving on http://{host}:{port}/ (Ctrl-C to stop)")
        server.run(sockets=[listening])
    finally:
        store.close()


def _serve_worker(
    config: Config, database: str, host: str, port: int, listening: socket.socket
) -> None:
    """One of `serve --workers N`'s processes (spawned: it imports only what it needs)."""
    # The supervisor has synced feeds.yaml and migrated; several workers must not race.
    store = Store.open(database, upgrade=False)
    try:
        make_server(create_app(config, store), host, port).run(sockets=[listening])
    finally:
        store.close()


def _run_web_worker(
    config_path: str,
    database: str,
    host: str,
    port: int,
    settings: SchedulerSettings | None,
    quiet: bool,
    access_log: bool,
    listening: socket.socket,
) -> None:
    """One of `run --role web --workers N`'s processes: a web replica on the shared socket."""
    run(
        config_path,
        database,
        host=host,
        port=port,
        role="web",
        settings=settings,
        quiet=quiet,
        access_log=access_log,
        listening=listening,
    )


def _supervise(
    workers: int,
    target: Callable[..., None],
    arguments: tuple[Any, ...],
    listening: socket.socket,
) -> None:
    """Run `target(*arguments, listening)` in `workers` spawned processes until SIGTERM or
    SIGINT, then stop them (SIGTERM: each finishes its requests).

    A process that ends by itself stops the others too and is an error: the service's own
    supervisor (systemd, Docker) restarts it whole, rather than this one hiding a crash loop.
    Spawned, not forked: the parent's threads and connection pools must not be copied.
    """
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop.set())
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    processes: list[multiprocessing.process.BaseProcess] = []
    ended: multiprocessing.process.BaseProcess | None = None
    # Listening now: connections made while the processes start wait in the backlog
    # instead of being refused (each process's server listens on it again, harmlessly).
    listening.listen(LISTEN_BACKLOG)
    try:
        for _ in range(workers):
            started = context.Process(target=target, args=(*arguments, listening))
            started.start()
            processes.append(started)
        while ended is None and not stop.wait(0.2):
            ended = next((process for process in processes if not process.is_alive()), None)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listening.close()
    if ended is not None:
        raise AggregatorError(
            f"a web process stopped by itself (exit code {ended.exitcode}); the others "
            "were stopped too"
        )


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            # Not the main thread (tests) or a platform without it: the caller stops us.
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_service(
    config: Config,
    store: Store,
    *,
    app: Any = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    settings: SchedulerSettings | None = None,
    alert_check: AlertCheck | None = None,
    hooks: SchedulerHooks | None = None,
    websub: WebSubService | None = None,
    poll: bool = True,
    listening: socket.socket | None = None,
    server_log_level: str | None = None,
    access_log: bool = True,
) -> None:
    """The scheduler, and the ASGI `app` (if given) under uvicorn, until SIGTERM/SIGINT.

    `server_log_level` ("warning" for the demo) and `access_log` set what uvicorn prints.

    Signals are handled here, not by uvicorn, so that both halves stop together: the web
    server stops accepting, the scheduler gives in-flight polls their grace period.
    `poll=False` (a web replica, `--role web`) only follows feeds.yaml edits; without an
    `app` (`--role worker`) nothing is served. See ROLES. `listening`: the app's socket,
    already bound (server.listen); otherwise it is bound here, before anything is polled.
    `hooks`: followers of the polls and reloads; `websub` (its routes already installed
    on `app`) is added to them here, started once the scheduler runs and closed at the end.
    """
    if app is not None and listening is None:
        listening = listen(host, port)
    stop = stop or asyncio.Event()
    hooks = hooks or SchedulerHooks()
    if websub is not None:
        hooks.after_poll.append(websub.on_report)
        hooks.after_reload.append(websub.set_config)
    try:
        with _stop_on_signals(stop):
            async with Fetcher(config.network.limits) as fetcher:
                scheduler = PollScheduler(
                    config,
                    store,
                    fetcher,
                    settings=settings,
                    alert_check=alert_check,
                    hooks=hooks,
                    polling=poll,
                )
                scheduler.start()
                server = (
                    make_server(
                        app,
                        host,
                        port,
                        log_level=server_log_level,
                        access_log=access_log,
                        handle_signals=False,
                    )
                    if app is not None
                    else None
                )
                serving = (
                    asyncio.create_task(server.serve(sockets=[listening]))
                    if server is not None and listening is not None
                    else None
                )
                if websub is not None:
                    websub.start(fetcher=fetcher, busy=scheduler.busy, writer=scheduler.writer)
                try:
                    waiting = asyncio.create_task(stop.wait())
                    watched: set[asyncio.Future[Any]] = {waiting}
                    if serving is not None:
                        watched.add(serving)
                    await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                finally:
                    if server is not None and serving is not None:
                        server.should_exit = True
                        await asyncio.gather(serving, return_exceptions=True)
                    await scheduler.stop()
                if serving is not None and not serving.cancelled() and serving.exception():
                    raise AggregatorError(f"the web server stopped: {serving.exception()}")
    finally:
        if websub is not None:
            await websub.aclose()
