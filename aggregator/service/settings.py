"""The service's knobs that the command line shows before anything runs: the roles and the
scheduler's timings.

Kept apart from scheduler.py so that `aggregator --help` reads them without importing the
scheduler, APScheduler or the pipeline. This module must never import anything beyond the
standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

# What `aggregator run --role` runs (service/app.py): the scheduler and the web server
# ("all", one box: the scheduler's process and one web process of its own), the scheduler
# only ("worker": any number of them share a PostgreSQL database, each due source claimed
# by one), or the web server only ("web": stateless replicas serving from the database,
# same bytes and ETags from each).
ROLES = ("all", "worker", "web")


@dataclass(frozen=True)
class SchedulerSettings:
    tick_seconds: float = 5.0  # how often due sources are looked for
    reload_seconds: float = 3.0  # how often feeds.yaml's modification time is checked
    alert_seconds: float = 300.0  # how often alerts are evaluated
    grace_seconds: float = 10.0  # in-flight polls get this long to finish at shutdown
    # A claimed source is this worker's until the lease ends (store.claim_due_sources):
    # longer than a poll can take (fetch deadline 60 s, plus discovery or follow:), so
    # that only a dead worker's claims lapse.
    lease_seconds: float = 300.0
    # Polls claimed and not finished, at most: claims beyond what the fetcher can run
    # (16 at once) would sit queued while their leases run out.
    max_in_flight: int = 32
    prune_seconds: float = 86_400.0  # how often network.retention is applied
