"""`aggregator check`, `preview` and `import-opml`: commands about what feeds.yaml lists.

This module must never write feeds.yaml except through config.opml_import, and never
store anything (`preview` fetches and shows only).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from typing import TextIO

from aggregator.cli.common import EXIT_CONFIG
from aggregator.cli.common import EXIT_NOTHING
from aggregator.cli.common import EXIT_OK

if TYPE_CHECKING:
    from aggregator.ingest.parse.discover import Discovery
    from aggregator.ingest.preview import Preview


def command_check(config_path: str, out: TextIO) -> int:
    from aggregator.addresses import non_public_host
    from aggregator.config import load_config

    config = load_config(config_path)
    sources = sum(len(member.sources) for member in config.members)
    print(f"{config_path}: OK — {len(config.members)} members, {sources} sources", file=out)
    # A warning, not a failure: an intranet member or the offline demo is legitimate, but
    # such an address may have come in from an untrusted OPML file or a careless edit.
    for member in config.members:
        for source in member.sources:
            if (host := non_public_host(source.url)) is not None:
                print(
                    f"warning: member {member.id!r}, source {source.url}: a private or "
                    f"local address ({host}); it is fetched and its headlines published "
                    "because feeds.yaml names it — make sure it should be",
                    file=out,
                )
    return EXIT_OK


def command_preview(
    url: str, page: bool, selectors_spec: str | None, as_yaml: bool, out: TextIO
) -> int:
    """Print what `url` would contribute (or, with --yaml, the feeds.yaml block for it)."""
    from aggregator.ingest.fetch import Fetcher
    from aggregator.ingest.preview import parse_selectors_option
    from aggregator.ingest.preview import preview_source
    from aggregator.ingest.preview import source_yaml
    from aggregator.urls import is_http_url

    if "://" not in url:
        # People type a site as they say it ("ctul.net"); every member site has https.
        url = "https://" + url
    if not is_http_url(url):
        print(f"error: {url!r} is not an address like https://example.org/", file=sys.stderr)
        return EXIT_CONFIG
    try:
        selectors = parse_selectors_option(selectors_spec) if selectors_spec else None
    except ValueError as exc:
        print(f"error: --selectors: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def run() -> Preview:
        async with Fetcher() as fetcher:
            # The typed address is the trusted one; feeds found from it are checked as found.
            return await preview_source(
                url,
                fetch=partial(fetcher.fetch, found_from=url),
                now=datetime.now(UTC),
                page=page,
                selectors=selectors,
            )

    result = asyncio.run(run())
    if as_yaml:
        if result.error is not None or not result.items:
            why = result.error or "no items"
            print(f"error: nothing to add from {url}: {why}", file=sys.stderr)
            return EXIT_NOTHING
        out.write(source_yaml(result))
        return EXIT_OK
    out.write(preview_text(result))
    return EXIT_OK if result.error is None and result.items else EXIT_NOTHING


PREVIEW_ITEMS_SHOWN = 15


def _found_by(discovery: Discovery) -> str:
    """Why the chosen feed's address was tried: the page named it, or a usual place."""
    chosen = discovery.chosen
    if chosen is not None and chosen.candidate.origin == "link":
        return "named by the page"
    tool = discovery.site_tool
    return f"where {tool.name} puts it" if tool is not None else "at a usual address"


def preview_text(preview: Preview) -> str:
    lines = [f"Preview of {preview.url} (nothing is stored)"]
    discovery = preview.discovery
    if discovery is not None:
        if discovery.site_tool is not None:
            tool = discovery.site_tool
            lines.append(f"Site tool: {tool.name} ({tool.reason})")
        lines.append("Feeds tried on the site:" if discovery.checked else "No feed on the site.")
        chosen = discovery.chosen
        for check in discovery.checked:
            if check is chosen:
                note = f"chosen ({check.parsed.format if check.parsed else 'feed'}"
                note += f", {round(check.full_content * 100)}% full text, {_found_by(discovery)})"
            elif check.candidate.is_comments:
                note = "a comments feed: never used"
            elif check.usable:
                note = "readable, ranked lower"
            else:
                note = f"not usable: {check.problem}"
            lines.append(f"  {'*' if check is chosen else ' '} {check.candidate.url}  {note}")
        for address, why in discovery.refused:
            lines.append(f"    {address}  refused: {why}")
    if preview.error is not None:
        lines.append(f"Cannot be read: {preview.error}")
        return "\n".join(lines) + "\n"
    what = "news page" if preview.kind == "page" else "feed"
    how = ""
    if preview.kind == "page":
        how = " (with the given selectors)" if preview.selectors else " (without selectors)"
    lines.append(f"Would be added as a {what}{how}: {preview.source_url}")
    if preview.site_title:
        lines.append(f"Title: {preview.site_title}")
    lines.append(f"{len(preview.items)} item(s):")
    for item in preview.items[:PREVIEW_ITEMS_SHOWN]:
        date = item.published.strftime("%Y-%m-%d") if item.published else "no date   "
        lines.append(f"  {date}  {item.title or '(no title)'}")
        link = item.url or "(no link)"
        lines.append(f"              {link}{'  (written relative)' if item.relative_link else ''}")
    if len(preview.items) > PREVIEW_ITEMS_SHOWN:
        lines.append(f"  … and {len(preview.items) - PREVIEW_ITEMS_SHOWN} more")
    if preview.warnings:
        lines.append("Warnings:")
        lines.extend(f"  - {warning}" for warning in preview.warnings)
    if preview.items:  # nothing found: there is nothing to add
        lines.append(
            "Add it: run the same command with --yaml and paste the block under 'members:'."
        )
    return "\n".join(lines) + "\n"


def command_import_opml(
    config_path: str, opml: Path, out: TextIO, *, allow_private: bool = False
) -> int:
    from aggregator.config.opml_import import import_opml

    report = import_opml(config_path, opml, allow_private=allow_private)
    for member_id in report.added_members:
        print(f"new member: {member_id}", file=out)
    for member_id, address in report.added_sources:
        print(f"added to {member_id}: {address}", file=out)
    for address, why in report.skipped:
        print(f"skipped: {address}: {why}", file=out)
    for address, why in report.refused:
        print(f"refused: {address}: {why}", file=out)
    if report.added_sources:
        print(
            f"{config_path}: {len(report.added_sources)} source(s) added, "
            f"{len(report.added_members)} new member(s); check names and ids, then run "
            "'aggregator check'",
            file=out,
        )
    else:
        print(f"{config_path}: nothing new to add; the file was not changed", file=out)
    return EXIT_OK
