"""ingest/pool.py's spawned parse processes hold the parse stage and nothing above it.

Spawn starts each process as a fresh interpreter that runs the parent's main script again:
for the `aggregator` console script that used to import the whole command line package
in every parse process. The parent here is a script written the way pip writes the
console script (its import line taken from the installed entry point), so the test
follows the entry point wherever it moves.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tests import paths

# What a parse process must never load: the command line's modules, the later stages, and
# the libraries only they use.
FORBIDDEN = (
    "aggregator.cli.",
    "aggregator.service",
    "aggregator.store",
    "aggregator.publish",
    "aggregator.ingest.poll",
    "aggregator.ingest.fetch",
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "h11",
    "httptools",
    "starlette",
    "apscheduler",
    "httpx",
    "httpcore",
    "rich",
    "ruamel",
)

PARENT = """\
import sys
from {module} import {function}

if __name__ == "__main__":
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    from aggregator.ingest import pool
    from aggregator.models import FetchResult, SourceConfig

    url = "https://riverbend-workers.example.org/feed/"
    result = FetchResult(
        source=SourceConfig(member_id="riverbend", kind="feed", url=url),
        fetched_at=datetime(2026, 11, 25, tzinfo=UTC),
        final_url=url,
        status=200,
        content=Path(sys.argv[1]).read_bytes(),
        content_type="application/rss+xml",
    )
    processes = pool.parse_processes(1)
    try:
        _, items, cause = processes.submit(pool.parse_off_loop, result, None).result()
        modules = processes.submit(eval, "sorted(__import__('sys').modules)").result()
    finally:
        processes.shutdown()
    print(json.dumps({{"items": len(items), "cause": cause, "modules": modules}}))
"""


def test_a_parse_process_of_the_console_script_loads_only_the_parse_stage(
    tmp_path: Path,
) -> None:
    [script] = [e for e in entry_points(group="console_scripts") if e.name == "aggregator"]
    module, _, function = script.value.partition(":")
    parent = tmp_path / "aggregator"  # a file, as the console script is, not `python -c`
    parent.write_text(PARENT.format(module=module, function=function), encoding="utf-8")
    fixture = paths.FIXTURES / "wordpress_content_encoded.xml"

    run = subprocess.run(
        [sys.executable, str(parent), str(fixture)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout)
    assert answer["cause"] is None and answer["items"] > 0
    loaded = [name for name in answer["modules"] if forbidden(name)]
    assert loaded == []


def forbidden(name: str) -> bool:
    # "aggregator.cli." forbids the package's modules, not the package: the console script
    # imports that (an empty shell) by design, spawn or not.
    return any(
        name.startswith(bad) if bad.endswith(".") else name == bad or name.startswith(bad + ".")
        for bad in FORBIDDEN
    )
