"""What every benchmark script needs: a static web server on 127.0.0.1, measured subprocesses,
and tables.

The static server is nginx from the system packages when it is installed (started with its
own configuration in a temporary directory and stopped afterwards), else the project's own
FixtureServer; it says which. Measured subprocesses report wall time, CPU time of the whole
process tree and the peak of the tree's summed resident memory.

It must never bind or connect to anything but 127.0.0.1, and never leave a process running.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from types import TracebackType

from aggregator.demo.server import FixtureServer

LOOPBACK = "127.0.0.1"
SAMPLE_INTERVAL = 0.1  # seconds between memory samples of a measured process tree
SERVER_START_TIMEOUT = 10.0

NGINX_CONF = """\
{user}
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        application/rss+xml rss;
        application/atom+xml atom;
        application/rdf+xml rdf;
        application/xml xml;
        application/feed+json json;
        text/html html;
        text/css css;
        text/javascript js;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/xml
                  application/feed+json text/html;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    etag on;
    if_modified_since exact;
    gzip on;
    gzip_comp_level 5;
    gzip_min_length 256;
    gzip_types application/rss+xml application/atom+xml application/rdf+xml application/xml
               application/feed+json text/css text/javascript;
    server {{
{listen}
        root {root};
        index index.html;
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = SERVER_START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing is listening on {LOOPBACK}:{port} after {timeout:g} s")


def nginx_path() -> str | None:
    return shutil.which("nginx") or next(
        (str(p) for p in (Path("/usr/sbin/nginx"),) if p.exists()), None
    )


def nginx_version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")


class StaticServer:
    """Serve `root` on 127.0.0.1 with ETag, Last-Modified and gzip; a context manager.

    It listens on `hosts` ports, each standing for one member's web host: the fetcher limits
    requests per host, and real members are on different hosts, so a corpus served from
    a single port would measure that limit instead of the pipeline. `use_nginx=False` (or
    no nginx installed) serves with aggregator.demo.server instead; `description` says
    which one is running, and why.
    """

    def __init__(
        self,
        root: Path,
        *,
        use_nginx: bool = True,
        workers: int | str = "auto",
        hosts: int = 1,
    ) -> None:
        self.root = root.resolve()
        self.ports: list[int] = []
        self.description = ""
        self._hosts = hosts
        self._workers = workers
        self._use_nginx = use_nginx
        self._process: subprocess.Popen[bytes] | None = None
        self._fixtures: list[FixtureServer] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_urls(self) -> list[str]:
        return [f"http://{LOOPBACK}:{port}" for port in self.ports]

    @property
    def is_nginx(self) -> bool:
        return self._process is not None

    @property
    def pids(self) -> list[int]:
        """The server's processes (nginx master and workers), for CPU accounting."""
        if self._process is None:
            return [os.getpid()]
        return [self._process.pid, *descendants(self._process.pid)]

    def __enter__(self) -> StaticServer:
        binary = nginx_path() if self._use_nginx else None
        if binary is not None:
            self._start_nginx(binary)
        else:
            for _ in range(self._hosts):
                fixture = FixtureServer(self.root).start()
                self._fixtures.append(fixture)
                self.ports.append(int(fixture.base_url.rsplit(":", 1)[1]))
            why = "nginx not requested" if not self._use_nginx else "nginx is not installed"
            self.description = f"aggregator.demo.server.FixtureServer ({why})"
        if self._hosts > 1:
            self.description += f", {self._hosts} ports"
        return self

    def _start_nginx(self, binary: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-nginx-")
        tmp = Path(self._tmp.name)
        self.ports = sorted({free_port() for _ in range(self._hosts)})
        while len(self.ports) < self._hosts:
            self.ports = sorted({*self.ports, free_port()})
        # As root, nginx hands requests to workers running as "nobody", who cannot enter a
        # private temporary directory; the workers only ever read the corpus.
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                user=user,
                workers=self._workers,
                tmp=tmp,
                listen="\n".join(
                    f"        listen {LOOPBACK}:{port} reuseport;" for port in self.ports
                ),
                root=self.root,
            ),
            encoding="utf-8",
        )
        self._process = subprocess.Popen(
            [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for port in self.ports:
                wait_for_port(port)
        except RuntimeError:
            self.__exit__(None, None, None)
            log = (tmp / "error.log").read_text(errors="replace") if self._tmp else ""
            raise RuntimeError(f"nginx did not start: {log[-2000:]}") from None
        self.description = (
            f"nginx {nginx_version(binary)} (worker_processes {self._workers}, etag on, gzip on)"
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            # SIGQUIT is nginx's graceful stop; SIGKILL only if it does not go in time.
            self._process.send_signal(signal.SIGQUIT)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        for fixture in self._fixtures:
            fixture.stop()
        self._fixtures = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# --- measuring a process tree ------------------------------------------------------------


def descendants(root: int) -> list[int]:
    """Every live descendant of `root`, found by reading /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")  # noqa: PTH208 (names only, in a hot loop)
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:  # noqa: PTH123 (hot loop)
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    pending = [root]
    while pending:
        children = parents.get(pending.pop(), [])
        found.extend(children)
        pending.extend(children)
    return found


def proportional_bytes(pid: int) -> int:
    """PSS: resident memory with each shared page divided among the processes sharing it."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:  # noqa: PTH123 (hot loop)
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def memory_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process: resident now, and its own peak since exec."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:  # noqa: PTH123 (hot loop)
            status = handle.read()
    except OSError:
        return 0, 0
    values = {}
    for line in status.splitlines():
        if line.startswith((b"VmRSS:", b"VmHWM:")):
            name, value = line.split(b":", 1)
            values[name] = int(value.split()[0]) * 1024
    return values.get(b"VmRSS", 0), values.get(b"VmHWM", 0)


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User+system CPU a live process has used so far (from /proc/PID/stat), with that of
    the children it has reaped unless `children` is false."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:  # noqa: PTH123 (hot loop)
            stat = handle.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    # utime, stime, cutime, cstime are fields 14-17 of stat, 12-15 after the name.
    return sum(int(value) for value in fields[11 : 15 if children else 13]) / ticks


class TreeMemorySampler:
    """Samples the summed RSS of a process and its descendants in a background thread.

    Also keeps the highest VmHWM seen (one process's own exact peak). getrusage's
    ru_maxrss is not used: Linux carries the forking parent's peak over into the child
    across exec, so a child forked from a big benchmark process reports the parent's size.
    """

    def __init__(self, root: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.peak_single = 0
        self.peak_processes = 0
        self.cpu_by_pid: dict[int, float] = {}  # each process's own CPU, last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        pids = [self.root, *descendants(self.root)]
        total = proportional = 0
        for pid in pids:
            resident, high_water = memory_bytes(pid)
            total += resident
            proportional += proportional_bytes(pid)
            self.peak_single = max(self.peak_single, high_water)
            self.cpu_by_pid[pid] = max(
                self.cpu_by_pid.get(pid, 0.0), cpu_seconds(pid, children=False)
            )
        self.peak_pss = max(self.peak_pss, proportional)
        if total > self.peak:
            self.peak = total
            self.peak_processes = len(pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


@dataclass(frozen=True)
class Measurement:
    """One measured run of a command."""

    wall: float  # seconds
    cpu: float  # user+system seconds of the whole process tree (wait4, or sampled if more)
    peak_tree_rss: int  # bytes: highest sum of RSS over the process tree, sampled
    peak_single_rss: int  # bytes: highest VmHWM of one process of the tree
    peak_tree_pss: int  # bytes: highest sum of PSS (shared pages split, not double counted)
    processes: int  # how many processes the tree had at its memory peak
    returncode: int
    stdout: str
    stderr: str


def run_measured(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800.0,
) -> Measurement:
    """Run `command` to its end; CPU comes from wait4, memory from sampling /proc."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd)
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            with TreeMemorySampler(process.pid) as sampler:
                # wait4 gives this child's rusage including the children it reaped (a
                # process pool's workers), which Popen.wait would throw away.
                _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        # A forkserver's workers are its children, and nobody waits for the forkserver at
        # exit, so wait4 never sees their CPU: the sampled sum over every process seen
        # (short by at most one sampling interval per process) catches it.
        sampled_cpu = sum(sampler.cpu_by_pid.values())
        return Measurement(
            wall=wall,
            cpu=max(usage.ru_utime + usage.ru_stime, sampled_cpu),
            peak_tree_rss=max(sampler.peak, sampler.peak_single),
            peak_single_rss=sampler.peak_single,
            peak_tree_pss=sampler.peak_pss,
            processes=max(sampler.peak_processes, 1),
            returncode=process.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


# --- reporting ------------------------------------------------------------------------


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.node()}; {os.cpu_count()} cores "
        f"({cpu}); {memory:.0f} GiB; Linux {platform.release()}; Python "
        f"{platform.python_version()}; {load_line()}"
    )


def load_line() -> str:
    """The load average: other work on the machine skews every figure, so it is printed."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def megabytes(size: float) -> str:
    return f"{size / 2**20:.0f} MB"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned columns after the first."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            str(h).ljust(widths[i]) if i == 0 else str(h).rjust(widths[i])
            for i, h in enumerate(headers)
        )
    ]
    lines.append("  ".join("-" * width for width in widths))
    for row in cells:
        lines.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
    return "\n".join(lines)


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so every server and temporary directory is cleaned up."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def say(*parts: object) -> None:
    print(*parts, flush=True)
    sys.stdout.flush()
