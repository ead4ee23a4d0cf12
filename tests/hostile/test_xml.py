"""Hostile XML: entity bombs, external entities, deep nesting, cut-off documents, bad bytes.

Each body goes through the real pipeline (fetch over 127.0.0.1 -> parse -> normalize ->
store -> export) where the case is about what ends up published, or through parse_feed
alone where it is about time and memory.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path

import feedparser
import pytest

from aggregator.demo.server import Route
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.parse import parse_source
from aggregator.models import FetchResult
from aggregator.models import PollOutcome
from aggregator.models import SourceConfig
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.hostile.server import export
from tests.hostile.server import poll
from tests.store.queries import count_items
from tests.support.server import FixtureServer

FIXTURES = Path(__file__).parent / "fixtures"
URL = "https://alliance.example.org/feed/"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RSS_TYPE = "application/rss+xml"
SPANISH_TITLE = "Trabajadoras del campo ganan descansos — año récord"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def publish(
    server: FixtureServer,
    store: Store,
    tmp_path: Path,
    body: bytes,
    content_type: str | None = RSS_TYPE,
) -> tuple[dict[str, bytes], str | None]:
    """Serve `body`, poll it, export; the exported files and the poll's warning/error."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    server.routes["/feed.xml"] = Route(body=body, headers=headers)
    config = config_for({"alliance": [server.url("/feed.xml")]})
    [report] = poll(config, store)
    return export(config, store, tmp_path / "published"), report.warning or report.error


def database_bytes(tmp_path: Path) -> bytes:
    return b"".join(path.read_bytes() for path in tmp_path.glob("aggregator.db*"))


# --- entity expansion ------------------------------------------------------------------


def test_billion_laughs_is_not_expanded() -> None:
    feed = parse_feed(fixture("billion_laughs.xml"), URL, RSS_TYPE)
    assert feed.warning is not None  # reported as a broken document
    for entry in feed.entries:
        assert "lollol" not in (entry.title or "") + (entry.summary_html or "")


def quadratic_blowup(entity_size: int = 50_000, references: int = 20_000) -> bytes:
    """One 50 kB entity used 20,000 times: 1 GB once expanded, from a 110 kB document."""
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "'
        + b"A" * entity_size
        + b'">\n]>\n<rss version="2.0"><channel><title>t</title><item><title>Blowup</title>'
        b"<link>https://alliance.example.org/a</link><description>"
        + b"&a;" * references
        + b"</description></item></channel></rss>"
    )


def test_quadratic_blowup_is_not_expanded() -> None:
    body = quadratic_blowup()
    feed = parse_feed(body, URL, RSS_TYPE)
    assert all(len(entry.summary_html or "") < len(body) for entry in feed.entries)


def test_quadratic_blowup_in_utf16_is_not_expanded() -> None:
    text = quadratic_blowup().decode("ascii")
    body = text.replace('version="1.0"', 'version="1.0" encoding="utf-16"', 1).encode("utf-16")
    feed = parse_feed(body, URL, RSS_TYPE)
    assert all(len(entry.summary_html or "") < len(body) for entry in feed.entries)


@pytest.mark.parametrize(
    "name", ["xxe_file_passwd.xml", "xxe_one_line_doctype.xml", "xxe_external_dtd.xml"]
)
def test_external_entities_never_reach_the_database_or_the_published_feeds(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path, name: str
) -> None:
    passwd = Path("/etc/passwd")
    if not passwd.is_file() or "root:" not in passwd.read_text(errors="replace"):
        pytest.skip("this machine has no /etc/passwd with a root entry to leak")
    files, _ = publish(server, sqlite_store, tmp_path, fixture(name))
    assert count_items(sqlite_store) == 1  # the entry itself is kept
    for content in [*files.values(), database_bytes(tmp_path)]:
        assert b"root:" not in content
        assert b"/bin/" not in content


# --- shape of the document ---------------------------------------------------------------


def test_deeply_nested_content_is_read_and_its_nesting_bounded() -> None:
    # How long it takes is measured in bench/, never asserted here: a timed assertion only
    # measures how busy the machine is. What is checked: no RecursionError, the text kept,
    # the script gone and the published nesting cut down.
    depth = 100_000
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b"<entry><id>urn:x:1</id><title>Deep</title><link href='https://a.example.org/d'/>"
        b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        + b"<div>" * depth
        + b"inner words<script>alert(1)</script>"
        + b"</div>" * depth
        + b"</div></content></entry></feed>"
    )
    source = SourceConfig(member_id="alliance", kind="feed", url=URL)
    parsed = parse_source(FetchResult(source, NOW, URL, 200, body, "application/atom+xml"))
    [item] = normalize_feed(parsed, source, NOW)
    assert "inner words" in item.content_html
    assert "<script" not in item.content_html
    assert item.content_html.count("<div") < 300


def test_truncated_document_keeps_what_parsed_and_marks_the_source_degraded(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    whole = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>A</title>'
        + "".join(
            f"<item><title>Report {n}</title><link>https://a.example.org/{n}</link>"
            f"<guid>report-{n}</guid><description>Full text of report {n}.</description></item>"
            for n in range(1, 4)
        )
        + "</channel></rss>"
    ).encode()
    publish(server, sqlite_store, tmp_path, whole)
    # The next download stops inside the third item's description.
    cut = whole[: whole.index(b"Full text of report 3") + 9]
    files, warning = publish(server, sqlite_store, tmp_path, cut)

    assert warning is not None and "cut off" in warning
    state = sqlite_store.source_state(server.url("/feed.xml"))
    assert state.last_error is None
    published = feedparser.parse(files["feed.atom"])
    assert sorted(entry.title for entry in published.entries) == [
        "Report 1", "Report 2", "Report 3"
    ]  # fmt: skip
    third = next(entry for entry in published.entries if entry.title == "Report 3")
    assert "Full text of report 3." in third.summary  # not replaced by the cut-off copy


def test_truncated_first_download_keeps_the_complete_entries(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    body = fixture("xxe_external_dtd.xml").replace(b"</channel>\n</rss>\n", b"")
    body = body.replace(b"</item>", b"</item><item><title>Second</title><link>https://a.exa")
    _, warning = publish(server, sqlite_store, tmp_path, body)
    assert warning is not None
    assert count_items(sqlite_store) == 1


# --- bytes and encodings -----------------------------------------------------------------


def test_invalid_xml_characters_are_dropped_and_the_export_stays_valid(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    files, _ = publish(server, sqlite_store, tmp_path, fixture("rss_control_characters.xml"))
    for name in ("feed.atom", "feed.rss"):
        assert not feedparser.parse(files[name]).bozo, name
    [entry] = feedparser.parse(files["feed.atom"]).entries
    assert entry.title == "Crews win water breaks"
    for content in files.values():
        assert not any(byte in content for byte in (b"\x00", b"\x01", b"\x08", b"\x0b", b"\x1f"))


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("rss_utf8_bom.xml", RSS_TYPE),
        ("rss_utf16le_bom.xml", RSS_TYPE),
        ("rss_utf16be_bom.xml", "text/xml"),
        ("rss_utf16le_bom.xml", None),
        # The header lies: the body is UTF-8 (with a BOM) and says so.
        ("rss_utf8_bom.xml", "application/rss+xml; charset=iso-8859-1"),
    ],
)
def test_boms_and_utf16_are_decoded(
    server: FixtureServer,
    sqlite_store: Store,
    tmp_path: Path,
    name: str,
    content_type: str | None,
) -> None:
    files, _ = publish(server, sqlite_store, tmp_path, fixture(name), content_type)
    [entry] = feedparser.parse(files["feed.atom"]).entries
    assert entry.title == SPANISH_TITLE


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("rss_declared_utf8_sent_cp1252.xml", RSS_TYPE),
        ("rss_declared_utf8_sent_cp1252.xml", "application/rss+xml; charset=utf-8"),
        ("rss_mixed_utf8_latin1.xml", RSS_TYPE),
        ("rss_utf16le_bom.xml", "application/rss+xml; charset=utf-8"),
    ],
)
def test_lying_or_mixed_encodings_still_publish_valid_feeds(
    server: FixtureServer,
    sqlite_store: Store,
    tmp_path: Path,
    name: str,
    content_type: str,
) -> None:
    files, _ = publish(server, sqlite_store, tmp_path, fixture(name), content_type)
    assert count_items(sqlite_store) >= 1
    for file_name in ("feed.atom", "feed.rss"):
        published = feedparser.parse(files[file_name])
        assert not published.bozo, (file_name, published.get("bozo_exception"))
        assert published.entries
    for content in files.values():
        content.decode("utf-8")  # whatever came in, what goes out is UTF-8


def test_every_outcome_of_a_hostile_body_is_a_report_not_a_crash(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    bodies = [
        b"\x00" * 1000,
        b"\xff\xfe" + b"\x00\xd8" * 100,  # lone surrogates in UTF-16
        b"<?xml version='1.0' encoding='x-unknown-charset'?><rss version='2.0'/>",
        b"<rss version='2.0'><channel><item><title>" + b"<b>" * 5_000,
        b"<!DOCTYPE rss [" + b"<!ENTITY a 'x'>" * 10_000,
        b'{"version": "https://jsonfeed.org/version/1.1", "items": ' + b"[" * 100_000,
    ]
    for body in bodies:
        server.routes["/feed.xml"] = Route(body=body, headers={"Content-Type": RSS_TYPE})
        config = config_for({"alliance": [server.url("/feed.xml")]})
        [report] = poll(config, sqlite_store)
        assert report.outcome in (PollOutcome.FAILED, PollOutcome.UNCHANGED, PollOutcome.NEW)
        if report.outcome is PollOutcome.FAILED:
            assert report.error and "Traceback" not in report.error
