"""The one place that builds and starts the running service, for every role.

Like Miniflux's cli/daemon.go, this is the only module that knows every part: logging,
the store, the web app, WebSub, the scheduler with its alerts and pruning, and the
signals that stop them. `aggregator run` (any --role), `serve` and `demo --serve` call it;
the command line only parses arguments and prints.

Roles (`aggregator run --role`): "all" polls and serves on one box; "worker" the
scheduler only (any number of them share a PostgreSQL database, each due source claimed by
one); "web" the web server only (stateless replicas serving from the database, same bytes
and ETags from each, following feeds.yaml edits). `--workers N` (web role and `serve`
only) runs N such web processes on one listening socket, bound here before they start;
this process only watches them. The scheduler is never among them, so polling still
happens once.

"all" is a worker and one web replica in two processes, not one: in one process the
writer thread, story matching and the parse threads hold the GIL while the event loop
that serves waits (a first poll of 1,000 sources took /feed.atom's p99 to 1.3 s,
bench/README.md "Issue 14"). This process binds the port, migrates, syncs feeds.yaml and
runs the scheduler (with WebSub's subscriptions and pings, alerts and pruning), and
spawns the web process on the bound socket, which serves from the database as a `--role
web` replica does and also answers the WebSub callback (verifications and deliveries go
through the database: the subscriptions the scheduler's side asked for are rows there).
The poller is the parent, not the web, because it is the half that must run once and that
owns the database's upgrade, the parse pool's processes and the exit status; the web half
is the replica `--workers` already starts. The web process listens once it can answer, and
polling starts only then (a first poll may find a WebSub hub that verifies at once). Both
follow feeds.yaml edits on their own; a web process dies with its parent (Linux).
SIGTERM/SIGINT stop both (the web process is sent SIGTERM and finishes its requests); a
web process that stops by itself stops the polling too and the command exits with an
error (ServiceError), as `--workers` does: systemd or Docker restarts the whole, rather
than this process hiding a crash loop. Everything /status shows is read from the database.

This module must never poll, decide a schedule, render a document or print to the user's
terminal itself (the stages, policy.py and the CLI do); it only builds, connects, starts
and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from typing import Any

from aggregator.config import load_config
from aggregator.errors import AggregatorError
from aggregator.errors import ServiceError
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
PR_SET_PDEATHSIG = 1  # Linux prctl(2): the signal this process gets when its parent dies


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
    websub_callback: bool = False,
    on_started: Callable[[], None] | None = None,
) -> None:
    """`aggregator run`: poll on schedule and serve the site until SIGTERM/SIGINT.

    `role` (ROLES) keeps only the polling ("worker") or the serving ("web") half; "all"
    runs the two in two processes (the module docstring says why). `quiet` (the demo,
    which has said where everything is) logs only warnings and errors, and leaves WebSub
    off. `announce` is given the line that says where the service is. `workers` > 1 (role
    "web" only) serves from that many processes on one socket. `listening`: the socket to
    serve on, already bound (a worker process's). `websub_callback` (role "web"): answer
    the WebSub hubs too, as the web process of role "all" does; `on_started` is called
    once the web server listens.
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
        arguments = WebArguments(config_path, database, host, port, settings, quiet, access_log)
        _supervise(workers, _run_web_process, (arguments,), listening)
        return
    if role == "all":
        arguments = WebArguments(
            config_path, database, host, port, settings, quiet, access_log, websub_callback=True
        )
        _run_all(config, arguments, announce)
        return
    # A web replica never migrates: several of them starting at once would race.
    store = Store.open(database, upgrade=role != "web")
    try:
        polls = role != "web"
        if polls:
            # A web replica writes nothing: the workers keep members and sources in step.
            store.sync_config(config)
        app = create_app(config, store) if not polls else None
        # Given a socket, this is one of --workers' processes or role all's web process:
        # its parent has announced.
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
        # WebSub: a worker pings the hub after its polls but subscribes to nothing (no
        # callback is served by it); the web process of role all answers the callback for
        # the subscriptions its parent asks for. Never in the demo: its sample feeds
        # advertise no hub, and no hub could reach a callback on 127.0.0.1.
        websub = WebSubService(config, store, subscribe=False) if polls and not quiet else None
        callback = (
            WebSubService(config, store, subscribe=False)
            if app is not None and websub_callback and not quiet
            else None
        )
        if app is not None:
            served = app
            hooks.after_reload.append(lambda reloaded: set_config(served, reloaded))
            if callback is not None:
                callback.install(app)
                hooks.after_reload.append(callback.set_config)
        service = run_service(
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
            on_started=on_started,
        )
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(_closing(service, callback))
    finally:
        store.close()


def _run_all(config: Config, arguments: WebArguments, announce: Announce) -> None:
    """Role "all": the scheduler here, the web in one spawned process (started with
    `arguments`) on the socket bound here (the module docstring says why two processes,
    and why the poller is the parent)."""
    host, port, quiet = arguments.host, arguments.port, arguments.quiet
    store = Store.open(arguments.database)
    web: multiprocessing.process.BaseProcess | None = None
    listening: socket.socket | None = None
    try:
        # Before the web process starts: it never migrates, and reads members from here.
        store.sync_config(config)
        # Bound, not listening: the web process listens once it can answer, so requests
        # made meanwhile are refused, as before, rather than kept waiting while it starts.
        listening = listen(host, port)
        if not quiet:
            announce(f"serving on http://{host}:{port}/ (Ctrl-C to stop)")
        context = multiprocessing.get_context("spawn")
        started = context.Event()
        web = context.Process(
            target=_run_web_process, args=(arguments, listening, started), name="aggregator-web"
        )
        web.start()
        # Polls start once the web answers: the first may find a WebSub hub, which then
        # verifies the subscription at once through the web process.
        while not started.wait(0.2):
            if not web.is_alive():
                raise ServiceError(
                    f"the web process stopped as it started (exit code {web.exitcode})"
                )
        # Subscriptions are asked for here, after polls; the web process answers the hub.
        websub = WebSubService(config, store, subscribe=True) if not quiet else None
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(
                run_service(
                    config,
                    store,
                    settings=arguments.settings,
                    alert_check=scheduled_alert_check(store),
                    websub=websub,
                    web_process=web,
                )
            )
    finally:
        if web is not None:
            _stop_processes([web])
        if listening is not None:
            listening.close()
        store.close()


async def _closing(service: Coroutine[Any, Any, None], websub: WebSubService | None) -> None:
    """Run `service`, then close `websub` (one run_service does not start: a callback)."""
    try:
        await service
    finally:
        if websub is not None:
            await websub.aclose()


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


@dataclass(frozen=True)
class WebArguments:
    """What a spawned web replica is started with (pickled to it): `run`'s arguments."""

    config_path: str
    database: str
    host: str
    port: int
    settings: SchedulerSettings | None
    quiet: bool
    access_log: bool
    websub_callback: bool = False  # role all's web process answers the WebSub hubs


def _run_web_process(
    web: WebArguments, listening: socket.socket, started: EventType | None = None
) -> None:
    """A spawned web replica on its parent's socket: one of `run --role web --workers N`'s,
    or the web process of `run --role all`."""
    # Ctrl-C in a terminal reaches the whole process group: the parent stops this process
    # (SIGTERM) with the others, so that one stop is never mistaken for a crash.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _stop_with_parent():
        return
    run(
        web.config_path,
        web.database,
        host=web.host,
        port=web.port,
        role="web",
        settings=web.settings,
        quiet=web.quiet,
        access_log=web.access_log,
        listening=listening,
        websub_callback=web.websub_callback,
        on_started=started.set if started is not None else None,
    )


def _stop_with_parent() -> bool:
    """Have the kernel send this process SIGTERM when its parent dies, even by SIGKILL
    (Linux; elsewhere nothing), so that a web process never serves on without its poller.
    False when the parent is already gone."""
    parent = multiprocessing.parent_process()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    # It may have died before the call above, which then waits for nothing.
    return parent is None or os.getppid() == parent.pid


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
        _stop_processes(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        listening.close()
    if ended is not None:
        raise ServiceError(
            f"a web process stopped by itself (exit code {ended.exitcode}); the others "
            "were stopped too"
        )


def _stop_processes(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """SIGTERM each of `processes` still running, wait WORKER_STOP_SECONDS in all for them
    to finish their requests, then kill what is left (blocks: call it off the loop)."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + WORKER_STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def _ended(process: multiprocessing.process.BaseProcess) -> asyncio.Future[None]:
    """A future done when `process` ends (its sentinel becomes readable): no thread, no
    polling."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()
    sentinel = process.sentinel

    def readable() -> None:
        loop.remove_reader(sentinel)
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(sentinel, readable)
    # Cancelled (the service stopping first): the reader must not outlive it.
    ended.add_done_callback(lambda _: loop.remove_reader(sentinel))
    return ended


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) is signal.SIG_IGN:
            continue  # ignored on purpose: a spawned web process leaves Ctrl-C to its parent
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
    web_process: multiprocessing.process.BaseProcess | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """The scheduler, and the ASGI `app` (if given) under uvicorn, until SIGTERM/SIGINT.

    `server_log_level` ("warning" for the demo) and `access_log` set what uvicorn prints.

    Signals are handled here, not by uvicorn, so that both halves stop together: the web
    server stops accepting, the scheduler gives in-flight polls their grace period.
    `poll=False` (a web replica, `--role web`) only follows feeds.yaml edits; without an
    `app` (`--role worker`) nothing is served. See ROLES. `listening`: the app's socket,
    already bound (server.listen); otherwise it is bound here, before anything is polled.
    `hooks`: followers of the polls and reloads; `websub` (its routes already installed
    on `app`, or served by `web_process`) is added to them here, started once the
    scheduler runs and closed at the end. `web_process`: the web server of role all, in
    its own process (started): watched as an in-process server would be, and sent SIGTERM
    when the service stops. `on_started`: called once `app`'s server listens.
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
                        on_started=on_started,
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
                web_ended = _ended(web_process) if web_process is not None else None
                web_crashed = False
                try:
                    waiting = asyncio.create_task(stop.wait())
                    watched: set[asyncio.Future[Any]] = {waiting}
                    if serving is not None:
                        watched.add(serving)
                    if web_ended is not None:
                        watched.add(web_ended)
                    await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                    waiting.cancel()
                    # Ended before this process was asked to stop: not one SIGTERM to both.
                    web_crashed = web_ended is not None and web_ended.done() and not stop.is_set()
                finally:
                    if server is not None and serving is not None:
                        server.should_exit = True
                        await asyncio.gather(serving, return_exceptions=True)
                    if web_ended is not None:
                        web_ended.cancel()
                    if web_process is not None:
                        # Both halves stop at once: the web finishes its requests meanwhile.
                        web_process.terminate()
                    await scheduler.stop()
                    if web_process is not None:
                        await asyncio.to_thread(_stop_processes, [web_process])
                if serving is not None and not serving.cancelled() and serving.exception():
                    raise ServiceError(f"the web server stopped: {serving.exception()}")
                if web_crashed and web_process is not None:
                    raise ServiceError(
                        f"the web process stopped by itself (exit code {web_process.exitcode}); "
                        "polling was stopped too"
                    )
    finally:
        if websub is not None:
            await websub.aclose()
