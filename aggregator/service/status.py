"""The health of every member's sources, for `aggregator status`, /status and alerts.

`status_rows` gathers one SourceStatus per configured source from the store (the only
database read); the renderers turn rows into a terminal table, JSON or an HTML page and
are pure functions of the rows and `now`.

This module must never poll, change the database or decide on alerts (alerts.py does);
the HTML renderer must escape everything that came from a source or from feeds.yaml.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from rich.markup import escape as rich_escape
from rich.table import Table

from aggregator.dedupe import evidence_in_words
from aggregator.ingest.fetch import host_key
from aggregator.models import GONE_STATUS
from aggregator.models import Config
from aggregator.models import MergeRecord
from aggregator.models import NetworkConfig
from aggregator.models import SourceHealth
from aggregator.store import Store
from aggregator.text import terminal_safe


@dataclass(frozen=True)
class SourceStatus:
    """One source's health, as staff read it."""

    member_id: str
    member_name: str
    source_url: str
    kind: str
    state: str  # "ok", "failing", "gone", "moved", "paused", "never polled"
    last_poll: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None  # the cause in plain words
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    items: int = 0
    last_new_item: datetime | None = None  # when an item new to us last arrived
    newest_item: datetime | None = None  # the newest stored item's publication date
    next_poll: datetime | None = None
    moved_to: str | None = None  # where a 301/308 says the source now lives
    feeds_yaml_change: str | None = None  # the edit that makes the move permanent
    gone: bool = False  # the site answered 410 Gone
    paused_until: datetime | None = None  # the host asked us to slow down (429/503)
    warning: str | None = None


def status_rows(store: Store, config: Config, now: datetime) -> list[SourceStatus]:
    """Every configured source in feeds.yaml order, with what the database knows of it."""
    health = {row.url: row for row in store.source_health()}
    paused = store.host_pauses(now)
    rows = []
    for member in config.members:
        for source in member.sources:
            pause = paused.get(host_key(source.url))
            rows.append(
                source_status(
                    member.id,
                    member.name,
                    source.url,
                    source.kind,
                    health.get(source.url),
                    pause.until if pause is not None else None,
                )
            )
    return rows


def source_status(
    member_id: str,
    member_name: str,
    url: str,
    kind: str,
    health: SourceHealth | None,
    paused_until: datetime | None = None,
) -> SourceStatus:
    if health is None or health.last_polled_at is None:
        return SourceStatus(
            member_id=member_id,
            member_name=member_name,
            source_url=url,
            kind=kind,
            state="never polled",
            next_poll=health.next_poll_at if health is not None else None,
            paused_until=paused_until,
        )
    gone = health.last_status == GONE_STATUS and health.consecutive_failures > 0
    change = None
    if health.moved_to:
        change = f"in feeds.yaml, replace '{kind}: {url}' with '{kind}: {health.moved_to}'"
    if gone:
        state = "gone"
    elif health.consecutive_failures:
        state = "failing"
    elif paused_until is not None:
        state = "paused"
    elif health.moved_to:
        state = "moved"
    else:
        state = "ok"
    return SourceStatus(
        member_id=member_id,
        member_name=member_name,
        source_url=url,
        kind=kind,
        state=state,
        last_poll=health.last_polled_at,
        last_success=health.last_success_at,
        last_error=health.last_error,
        consecutive_failures=health.consecutive_failures,
        failing_since=health.failing_since,
        items=health.items,
        last_new_item=health.last_new_item_at,
        newest_item=health.newest_item_published,
        next_poll=health.next_poll_at,
        moved_to=health.moved_to,
        feeds_yaml_change=change,
        gone=gone,
        paused_until=paused_until,
        warning=health.last_warning,
    )


# --- words for times ------------------------------------------------------------------


# /status lists the automatic cross-member merges of the last week, so staff see a wrong
# one within a day and correct it (`aggregator keep-apart`).
MERGES_SHOWN = 20
MERGES_WINDOW = timedelta(days=7)


def recent_merges(store: Store, now: datetime) -> list[MergeRecord]:
    """The last MERGES_SHOWN automatic merges of different members' items, MERGES_WINDOW back."""
    return store.recent_merges(now - MERGES_WINDOW, MERGES_SHOWN)


def relative_time(moment: datetime | None, now: datetime) -> str:
    """'3 h ago', 'in 12 min', 'never'."""
    if moment is None:
        return "never"
    delta = moment - now
    future = delta > timedelta(0)
    seconds = abs(delta.total_seconds())
    if seconds < 1:
        return "now"
    if seconds < 60:
        amount = f"{int(seconds)} s"
    elif seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 48 * 3600:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} days"
    return f"in {amount}" if future else f"{amount} ago"


def _problem(row: SourceStatus, now: datetime) -> str:
    parts = []
    if row.last_error:
        parts.append(row.last_error)
    if row.paused_until is not None:
        parts.append(f"host paused until {relative_time(row.paused_until, now)}")
    if row.feeds_yaml_change:
        parts.append(f"moved to {row.moved_to}: {row.feeds_yaml_change}")
    if row.warning:
        parts.append(f"warning: {row.warning}")
    return "; ".join(parts)


_HEADERS = (
    "member",
    "source",
    "state",
    "last success",
    "fails",
    "items",
    "last new item",
    "next poll",
    "problem",
)


def _cells(row: SourceStatus, now: datetime) -> tuple[str, ...]:
    # Shown on a terminal: a member's address or error must carry no escape sequences.
    return tuple(map(terminal_safe, _raw_cells(row, now)))


def _raw_cells(row: SourceStatus, now: datetime) -> tuple[str, ...]:
    return (
        row.member_id,
        row.source_url,
        row.state,
        relative_time(row.last_success, now),
        str(row.consecutive_failures),
        str(row.items),
        relative_time(row.last_new_item, now),
        relative_time(row.next_poll, now) if row.next_poll is not None else "soon",
        _problem(row, now),
    )


# --- renderers ------------------------------------------------------------------------


def render_status_text(rows: Sequence[SourceStatus], now: datetime) -> str:
    """Plain aligned columns, for a pipe or a log file (no colour, no box drawing)."""
    table = [_HEADERS, *(_cells(row, now) for row in rows)]
    # The last column (the problem) is left unpadded: it is long and free text.
    widths = [max(len(line[index]) for line in table) for index in range(len(_HEADERS) - 1)]
    lines = []
    for line in table:
        padded = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        lines.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(lines) + "\n"


_STATE_STYLES = {"ok": "green", "failing": "red", "gone": "red", "moved": "yellow"}


def status_table(rows: Sequence[SourceStatus], now: datetime) -> Table:
    """The same table for a terminal, drawn by rich."""
    table = Table(title="Sources")
    for header in _HEADERS:
        table.add_column(header, overflow="fold")
    for row in rows:
        cells = list(_cells(row, now))
        style = _STATE_STYLES.get(row.state, "")
        if style:
            cells[2] = f"[{style}]{cells[2]}[/{style}]"
        table.add_row(*(rich_escape(cell) if i != 2 else cell for i, cell in enumerate(cells)))
    return table


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def status_document(
    rows: Sequence[SourceStatus], now: datetime, merges: Sequence[MergeRecord] = ()
) -> dict[str, Any]:
    return {
        "generated": _iso(now),
        "recent_merges": [
            {
                "story": merge.story_id,
                "member": merge.member_id,
                "title": merge.title,
                "url": merge.url,
                "merged_at": _iso(merge.first_seen_at),
                "matched_member": merge.matched_member,
                "rule": merge.rule,
                "reason": evidence_in_words(merge.evidence),
                "evidence": merge.evidence,
            }
            for merge in merges
        ],
        "sources": [
            {
                "member": {"id": row.member_id, "name": row.member_name},
                "url": row.source_url,
                "kind": row.kind,
                "state": row.state,
                "last_poll": _iso(row.last_poll),
                "last_success": _iso(row.last_success),
                "last_error": row.last_error,
                "consecutive_failures": row.consecutive_failures,
                "failing_since": _iso(row.failing_since),
                "items": row.items,
                "last_new_item": _iso(row.last_new_item),
                "newest_item": _iso(row.newest_item),
                "next_poll": _iso(row.next_poll),
                "moved_to": row.moved_to,
                "feeds_yaml_change": row.feeds_yaml_change,
                "gone": row.gone,
                "paused_until": _iso(row.paused_until),
                "warning": row.warning,
            }
            for row in rows
        ],
    }


def render_status_json(
    rows: Sequence[SourceStatus], now: datetime, merges: Sequence[MergeRecord] = ()
) -> bytes:
    document = status_document(rows, now, merges)
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


# On a narrow screen (a phone) each source becomes a card of "label: value" lines, so that
# every column, the problem above all, stays on screen without scrolling sideways.
_PAGE_STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.url,td.problem,td.reason{overflow-wrap:anywhere}
.member-id{color:#666;font-size:.85em}
.state-ok{color:#176b26}.state-failing,.state-gone{color:#b00020;font-weight:bold}
.state-moved,.state-paused{color:#8a5a00}
@media (max-width:48rem){
 thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
 table,tbody,tr,td{display:block;width:auto}
 tr{border:1px solid #ccc;border-radius:.4rem;margin:0 0 .8rem;padding:.3rem .5rem}
 td{border:0;padding:.15rem 0}
 td::before{content:attr(data-label) ": ";color:#666}
 td.member{font-weight:bold}td.member::before{content:none}
}
"""


def render_status_html(
    rows: Sequence[SourceStatus],
    network: NetworkConfig,
    now: datetime,
    merges: Sequence[MergeRecord] = (),
) -> str:
    """A complete, script-free HTML page; every value is escaped."""
    esc = html.escape
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    summary = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
    body_rows = []
    for row in rows:
        cells = _cells(row, now)
        times = (row.last_success, row.last_new_item, row.next_poll)
        labels = [f' data-label="{esc(header)}"' for header in _HEADERS]
        body_rows.append(
            "<tr>"
            f'<td class="member"{labels[0]}>{esc(row.member_name)} '
            f'<span class="member-id">({esc(row.member_id)})</span></td>'
            f'<td class="url"{labels[1]}><a href="{esc(row.source_url)}">'
            f"{esc(row.source_url)}</a> ({esc(row.kind)})</td>"
            f'<td class="state-{esc(row.state.replace(" ", "-"))}"{labels[2]}>'
            f"{esc(row.state)}</td>"
            f"{_time_cell(times[0], cells[3], labels[3])}"
            f"<td{labels[4]}>{row.consecutive_failures}</td>"
            f"<td{labels[5]}>{row.items}</td>"
            f"{_time_cell(times[1], cells[6], labels[6])}"
            f"{_time_cell(times[2], cells[7], labels[7])}"
            f'<td class="problem"{labels[8]}>{esc(cells[8] or "none")}</td>'
            "</tr>"
        )
    headers = "".join(f'<th scope="col">{esc(header)}</th>' for header in _HEADERS)
    title = f"Status — {network.title}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{esc(network.language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_PAGE_STYLE}</style></head><body>"
        # Relative: /status and the news page are siblings wherever the site is mounted.
        '<p><a href="./">← Latest news</a></p>'
        f"<h1>{esc(title)}</h1>"
        f"<p>{len(rows)} sources: {esc(summary or 'none')}. "
        f'Generated <time datetime="{_iso(now)}">{_iso(now)}</time>. '
        '<a href="status.json">JSON</a></p>'
        f"<table><thead><tr>{headers}</tr></thead><tbody>{''.join(body_rows)}</tbody></table>"
        f"{_merges_section(merges, now)}"
        "</body></html>\n"
    )


_MERGE_HEADERS = ("Merged", "Story", "Members", "Why")


def _merges_section(merges: Sequence[MergeRecord], now: datetime) -> str:
    """The latest automatic cross-member merges, each with its rule and evidence in words
    and the command that undoes it."""
    esc = html.escape
    days = MERGES_WINDOW.days
    heading = f'<h2 id="merges">Cross-posts merged automatically (last {days} days)</h2>'
    if not merges:
        return f"{heading}<p>No merges of different members' posts in the last {days} days.</p>"
    labels = [f' data-label="{esc(header)}"' for header in _MERGE_HEADERS]
    body = []
    for merge in merges:
        title = esc(merge.title)
        link = f'<a href="{esc(merge.url)}">{title}</a>' if merge.url else title
        body.append(
            "<tr>"
            f"{_time_cell(merge.first_seen_at, relative_time(merge.first_seen_at, now), labels[0])}"
            f'<td class="url"{labels[1]}>{link} '
            f'<span class="member-id">{esc(merge.story_id)}</span></td>'
            f"<td{labels[2]}>{esc(merge.member_id)} joined {esc(merge.matched_member)}</td>"
            f'<td class="reason"{labels[3]}>{esc(evidence_in_words(merge.evidence))}</td>'
            "</tr>"
        )
    headers = "".join(f'<th scope="col">{esc(header)}</th>' for header in _MERGE_HEADERS)
    return (
        f"{heading}<p>The last {len(merges)} items joined to another member's story. A wrong "
        "one is undone with <code>aggregator keep-apart URL URL</code>; "
        "<code>aggregator story URL --why</code> shows the full evidence.</p>"
        f"<table><thead><tr>{headers}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _time_cell(moment: datetime | None, words: str, label: str = "") -> str:
    if moment is None:
        return f"<td{label}>{html.escape(words)}</td>"
    return f'<td{label}><time datetime="{_iso(moment)}">{html.escape(words)}</time></td>'
