"""Which process is which, read from Linux's /proc: the children a command spawned, whether
a process still runs, and which process holds one end of a TCP connection on 127.0.0.1;
and the environment to start `aggregator` in as a subprocess.

Test tooling (tests/service/test_app.py, tests/cli/test_serve_workers.py), not shipped in
the wheel. It must never signal or change a process; it only reads /proc.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_HEX = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it (little-endian)


def environment() -> dict[str, str]:
    """This environment for an `aggregator` subprocess: this checkout's package, and none
    of the settings that would point it at another feeds.yaml or database."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("AGGREGATOR_CONFIG", "AGGREGATOR_DATABASE_URL", "AGGREGATOR_DATA_DIR")
    }
    environment["PYTHONPATH"] = str(ROOT)
    return environment


def spawned_children(pid: int) -> list[int]:
    """The child processes of `pid` that multiprocessing spawned (web or parse processes),
    not its resource tracker."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text(encoding="ascii").split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in command:
                found.append(int(child))
    return found


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (ended, waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def connection_owner(local_port: int, remote_port: int, candidates: list[int]) -> int | None:
    """Which of `candidates` holds the socket of the TCP connection 127.0.0.1:`local_port`
    → 127.0.0.1:`remote_port` (None if none of them does)."""
    local = f"{LOOPBACK_HEX}:{local_port:04X}"
    remote = f"{LOOPBACK_HEX}:{remote_port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            inodes.add(f"socket:[{fields[9]}]")
    for pid in candidates:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for descriptor in descriptors:
            try:
                if descriptor.readlink().as_posix() in inodes:
                    return pid
            except (FileNotFoundError, OSError):
                continue  # closed meanwhile
    return None
