"""The plain data passed between the pipeline's stages.

config -> NetworkConfig/MemberConfig/SourceConfig
fetch -> FetchResult
parse -> ParsedFeed (of ParsedEntry)
normalize -> Item
store -> PublishedStory (what the publishers render), and the records it reads back
(SourceState, ScheduleRecord, SourceHealth, …)

Everything here is a frozen dataclass with no behaviour beyond small derived properties:
a stage receives these, never the objects of the stage before it (no httpx responses,
no feedparser dicts, no ORM rows leak across a stage boundary).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import Enum
from typing import Literal

# "url" is a site address whose feed is found by autodiscovery (parse/discover.py).
SourceKind = Literal["feed", "page", "url"]


# --- configuration (feeds.yaml) -------------------------------------------------------


@dataclass(frozen=True)
class PageSelectors:
    """CSS selectors for scraping a news page; all but `item` are relative to one item."""

    item: str
    title: str | None = None
    link: str | None = None
    date: str | None = None
    summary: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class ItemFilter:
    """Which items a member or source contributes (feeds.yaml include/exclude/max_age)."""

    include: tuple[str, ...] = ()  # keep only items mentioning one of these words/phrases
    exclude: tuple[str, ...] = ()  # drop items mentioning any of these
    max_age: timedelta | None = None  # drop items published longer ago than this

    @property
    def empty(self) -> bool:
        return not self.include and not self.exclude and self.max_age is None


@dataclass(frozen=True)
class SourceConfig:
    """One place a member publishes: a feed, or an HTML news page scraped by selectors."""

    member_id: str
    kind: SourceKind
    url: str
    selectors: PageSelectors | None = None  # None on a page: heuristic extraction
    interval: timedelta | None = None
    line: int | None = None  # where it stands in feeds.yaml, for messages
    follow: bool = False  # page sources: read each new item's own page for date/image
    # Every one must let an item through: the member's include/exclude/max_age, then the
    # source's own (config.py puts the member's here, so a poll needs only the source).
    filters: tuple[ItemFilter, ...] = ()


@dataclass(frozen=True)
class MemberConfig:
    id: str
    name: str
    url: str
    sources: tuple[SourceConfig, ...]
    tags: tuple[str, ...] = ()
    language: str | None = None
    interval: timedelta | None = None
    line: int | None = None
    item_filter: ItemFilter = ItemFilter()


@dataclass(frozen=True)
class HiddenStory:
    """A story staff took out of the published feeds (feeds.yaml `hidden:`)."""

    target: str  # a story id "urn:uuid:…" or an item's URL
    reason: str
    line: int | None = None


@dataclass(frozen=True)
class StoryCorrection:
    """Staff's correction of the cross-post rule (feeds.yaml `keep_apart:` or `merge:`):
    items, by canonical address, that must never share a story, or must be one story."""

    kind: str  # "keep_apart" or "merge", as the feeds.yaml key is spelled
    items: tuple[str, ...]  # at least two canonical item addresses
    reason: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class EmailSettings:
    """Where alert emails go (feeds.yaml `network.alerts.email`); login from the environment."""

    to: tuple[str, ...]
    sender: str  # written `from:` in feeds.yaml
    smtp_host: str = "localhost"
    smtp_port: int = 25
    starttls: bool = False


@dataclass(frozen=True)
class AlertSettings:
    """When and how staff are told about failing, quiet or moved sources (`network.alerts`)."""

    webhook: str | None = None
    email: EmailSettings | None = None
    failing_after: timedelta = timedelta(hours=24)
    quiet_after: timedelta = timedelta(days=60)


@dataclass(frozen=True)
class FetchLimits:
    """What one fetch and one poll may cost (feeds.yaml `network.limits`); one place for
    their defaults. The last four bound what one source's poll stores (and so publishes):
    applied by aggregator.ingest.limits.limit_items, noted on the poll's warning."""

    concurrency: int = 16
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0  # the whole poll, including a slow trickling body
    max_bytes: int = 10 * 1024 * 1024  # decompressed body
    max_redirects: int = 5
    per_host: int = 2  # concurrent requests to one host, however many sources it serves
    tags_per_item: int = 20  # the first ones are kept
    title_length: int = 500  # characters; a longer title is cut at a word, with an ellipsis
    summary_length: int = 4_000  # characters of HTML; a longer one becomes a text excerpt
    items_per_poll: int = 200  # the newest are kept


@dataclass(frozen=True)
class NetworkConfig:
    title: str
    url: str
    feed_url: str  # where the published files are served; self links and ids hang off it
    description: str = ""
    language: str = "en"
    items_per_feed: int = 50
    interval: timedelta = timedelta(hours=1)
    alerts: AlertSettings = AlertSettings()
    limits: FetchLimits = FetchLimits()
    # Items published longer ago than this are deleted (store.prune); None keeps everything.
    retention: timedelta | None = None
    # WebSub (aggregator.service.websub): the hub our feeds advertise and ping when they change, and
    # the public address (ending before "/websub/…") where hubs reach this service.
    websub_hub: str | None = None
    websub_callback_base: str | None = None


@dataclass(frozen=True)
class Config:
    network: NetworkConfig
    members: tuple[MemberConfig, ...]
    path: str = "config/feeds.yaml"
    hidden: tuple[HiddenStory, ...] = ()
    corrections: tuple[StoryCorrection, ...] = ()  # keep_apart: then merge:

    def member(self, member_id: str) -> MemberConfig:
        for member in self.members:
            if member.id == member_id:
                return member
        raise KeyError(member_id)


# Marks, in members.opml, an outline that is the network's feed of a member, not a feed of
# the member's own (OPML 2.0 lets outlines carry attributes of their own). publish/opml
# writes it and config/opml_import reads it, so it lives here, below both.
NETWORK_FEED_ATTRIBUTE = "wsrNetworkFeed"


# --- fetching -------------------------------------------------------------------------

# The one HTTP status that means "this address was removed for good": the store marks the
# source gone, the scheduler waits longest, the status page and alerts say so.
GONE_STATUS = 410
# A feed address that answers one of these no longer has a feed there (autodiscovery looks
# again from the site's address).
MISSING_STATUSES = frozenset({404, GONE_STATUS})


@dataclass(frozen=True)
class CacheValidators:
    """What a server gave us to make the next request conditional."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one HTTP poll of one source. Failures are data, not exceptions."""

    source: SourceConfig
    fetched_at: datetime
    final_url: str  # after redirects: the base for relative links
    status: int | None  # None when no HTTP response arrived at all
    content: bytes | None = None  # None for 304 and for failures
    content_type: str | None = None  # the raw Content-Type header, charset included
    validators: CacheValidators = CacheValidators()
    error: str | None = None  # the cause in plain words, e.g. "HTTP 500 (server error)"
    permanent_redirect: str | None = None  # set when a 301/308 moved the source
    cache_max_age: int | None = None  # seconds, from Cache-Control: max-age
    retry_after: datetime | None = None  # from Retry-After (seconds or an HTTP date)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return self.error is None


# --- parsing --------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageCandidate:
    """An image a source offers for an entry, with the size it declares (None: not declared).

    normalize ranks these (ingest/images.choose_thumbnail) to pick the item's thumbnail.
    """

    url: str  # as the source gave it: may be relative to the entry's base
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class ParsedEntry:
    """One entry as the source wrote it: strings may hold HTML, URLs may be relative."""

    guid: str | None = None
    link: str | None = None
    title: str | None = None
    title_is_html: bool = False
    content_html: str | None = None
    summary_html: str | None = None
    published: datetime | None = None  # timezone-aware, as given (not yet clamped)
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    image: str | None = None
    language: str | None = None
    base_url: str | None = None  # xml:base in force for this entry's content, if any
    # Every image the entry's metadata offers (media:content/thumbnail, enclosures, a followed
    # page's Open Graph) with its declared size; `image` is the first of them, or the one the
    # format names. The images inside the content are read by normalize itself.
    images: tuple[ImageCandidate, ...] = ()


@dataclass(frozen=True)
class ParsedFeed:
    """A source's body read into entries, before any cleaning."""

    url: str  # the final URL it was read from
    format: str  # e.g. "rss20", "atom10", "rss10", "json11", "html-page"
    title: str | None = None
    link: str | None = None
    language: str | None = None
    entries: tuple[ParsedEntry, ...] = ()
    warning: str | None = None  # the parser recovered from malformed input
    ttl_minutes: int | None = None  # RSS <ttl>
    update_period: timedelta | None = None  # sy:updatePeriod / sy:updateFrequency
    hub_url: str | None = None  # WebSub hub the feed advertises (rel="hub"), as written
    self_url: str | None = None  # the feed's own address (rel="self" / feed_url), as written


# --- normalizing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One clean entry ready to store: text title, sanitized HTML, absolute URLs, UTC dates."""

    member_id: str
    source_url: str
    key: str  # identity within its source: "guid:…", "link:…" or "hash:…"
    url: str | None  # canonical, absolute, tracking parameters removed
    title: str
    content_html: str  # sanitized; may be empty
    summary: str  # sanitized HTML, short; may be empty
    published: datetime  # UTC
    updated: datetime  # UTC
    date_from_source: bool  # False when `published` is the first-seen time
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    image: str | None = None
    language: str | None = None
    content_hash: str = ""  # changes when what a reader sees changes
    # The digest of the parsed entry this item was normalized from, with everything else
    # normalize's output depends on (normalize.entry_digests); None when not computed, or
    # when limit_items cut the item. Stored with the item: a later poll skips that entry.
    entry_digest: str | None = None


# --- storing and publishing -----------------------------------------------------------


class PollOutcome(Enum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class ScheduleHints:
    """What one poll learned about when its source wants to be polled again."""

    status: int | None = None  # the HTTP status, None when no response arrived
    cache_max_age: int | None = None  # seconds
    retry_after: datetime | None = None
    ttl_minutes: int | None = None
    update_period: timedelta | None = None
    conditional: bool = False  # the server gave validators, so the next request is conditional


@dataclass(frozen=True)
class PollReport:
    """What one poll of one source did, for the CLI and the status page."""

    source: SourceConfig
    outcome: PollOutcome
    new: int = 0
    updated: int = 0
    error: str | None = None
    moved_to: str | None = None
    warning: str | None = None
    discovered: str | None = None  # the feed autodiscovery chose for a site address
    filtered: int = 0  # items left out by the member's or source's include/exclude/max_age
    hints: ScheduleHints = ScheduleHints()  # what the poll learned for the scheduler


@dataclass(frozen=True)
class StoredItems:
    """What the store did with one poll's items; ingest/poll.py turns it into a PollReport."""

    new: int = 0
    updated: int = 0

    @property
    def outcome(self) -> PollOutcome:
        if self.new:
            return PollOutcome.NEW
        return PollOutcome.UPDATED if self.updated else PollOutcome.UNCHANGED


class IntentKind(Enum):
    """What a poll leaves in the database for its source."""

    FAILURE = "failure"  # only the source's health: its items stay published
    UNCHANGED = "unchanged"  # a 304 or a byte-identical body: the source polled, nothing else
    ITEMS = "items"  # items to upsert, matched to stories


@dataclass(frozen=True)
class StoredEntry:
    """A stored item as a poll of its source's changed feed compares it (by key)."""

    content_hash: str
    entry_digest: str | None  # None: stored before digests, or cut by limit_items


@dataclass(frozen=True)
class SourceIntent:
    """Everything one poll of one source will write, decided before anything is written.

    Built by pure code (aggregator.ingest.decide) from what the round read and what the
    poll fetched and parsed; applied by the store's single writer (store/writer.py) in one
    savepoint, so it lands whole or not at all.
    """

    result: FetchResult
    kind: IntentKind
    cause: str | None = None  # FAILURE: the cause in plain words
    items: tuple[Item, ...] = ()  # ITEMS: what the filters kept
    warning: str | None = None  # ITEMS: the parse's warning, kept for /status
    only_newer: bool = False  # ITEMS pushed by a WebSub hub: never make an item older
    # Store.remember_discovered_feed calls to replay in order (None forgets the feed):
    # a remembered feed that vanished is forgotten, then a new one may be found.
    discovered: tuple[str | None, ...] = ()
    # The WebSub (hub, topic) the feed advertises ((None, None): none); None: not asked.
    websub_hub: tuple[str | None, str | None] | None = None
    # ITEMS: (key, content hash, entry digest) of kept items that the store holds as they
    # are but under another entry digest (or none): it takes this one, so that the next
    # poll skips the entry (aggregator.ingest.normalize.normalize_poll).
    entry_digests: tuple[tuple[str, str, str], ...] = ()

    @property
    def source_url(self) -> str:
        return self.result.source.url


@dataclass(frozen=True)
class AppliedIntent:
    """What the writer did with one SourceIntent: items stored, or why it could not."""

    stored: StoredItems = StoredItems()
    error: str | None = None  # set when the intent could not be stored; recorded as failure


@dataclass(frozen=True)
class Credit:
    """A member that published a story, with its own link to it."""

    member_id: str
    member_name: str
    member_url: str
    item_url: str | None


@dataclass(frozen=True)
class PublishedStory:
    """One story as the publishers render it: one entry however many members posted it."""

    id: str  # permanent: "urn:uuid:…"; never changes across polls and edits
    url: str | None
    title: str
    content_html: str
    summary: str
    published: datetime
    updated: datetime
    credits: tuple[Credit, ...]
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    image: str | None = None
    language: str | None = None


# --- storage records (what aggregator.store reads back) -------------------------------


@dataclass(frozen=True)
class MergeRecord:
    """An item the automatic cross-post rule joined to another member's story, for /status."""

    story_id: str  # "urn:uuid:…"
    member_id: str  # the member whose item joined
    title: str
    url: str | None
    first_seen_at: datetime  # when it joined
    matched_member: str  # whose item it was matched with
    rule: str
    evidence: dict[str, object]


@dataclass(frozen=True)
class SourceState:
    """What the database remembers about a source between polls."""

    validators: CacheValidators
    body_hash: str | None
    consecutive_failures: int
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    moved_to: str | None
    discovered_url: str | None = None  # the feed autodiscovery chose for this address
    gone_at: datetime | None = None  # when the site answered 410 Gone; not polled since


@dataclass(frozen=True)
class HiddenRecord:
    """A story taken out of the published feeds, and why (feeds.yaml or `aggregator hide`)."""

    target: str  # "urn:uuid:…" or an item's canonical URL
    reason: str
    origin: str  # "config" or "cli"
    hidden_at: datetime


@dataclass(frozen=True)
class ScheduleRecord:
    """What the scheduler remembers about a source between polls."""

    url: str
    next_poll_at: datetime | None  # None: never scheduled
    interval_seconds: int | None  # the adaptive interval; None: as configured
    unchanged_polls: int
    declared_interval_seconds: int | None  # the source's own <ttl>/sy:updatePeriod
    consecutive_failures: int


@dataclass(frozen=True)
class PruneReport:
    """What one retention pass deleted."""

    items: int
    stories: int
    host_pauses: int


@dataclass(frozen=True)
class HostPause:
    """A host that asked us to slow down (429/503), left alone until `until`."""

    host: str
    until: datetime
    reason: str


@dataclass(frozen=True)
class SourceHealth:
    """One source's health as stored, for the status page and alerts."""

    url: str
    member_id: str
    kind: str
    last_polled_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_warning: str | None
    consecutive_failures: int
    failing_since: datetime | None
    items: int
    last_new_item_at: datetime | None
    newest_item_published: datetime | None
    next_poll_at: datetime | None
    moved_to: str | None
    last_status: int | None


@dataclass(frozen=True)
class WebSubRecord:
    """One source's WebSub subscription as stored (service.websub reads and drives it)."""

    source_url: str
    callback_id: str
    hub: str
    topic: str
    secret: str
    state: str
    callback_url: str | None
    requested_at: datetime | None
    lease_expires_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AlertRecord:
    """An alert that was sent and still stands (so it is not sent again)."""

    kind: str
    subject: str
    detail: str
    sent_at: datetime


@dataclass(frozen=True)
class StoryCursor:
    """Where a page of stories (newest first) ended: the last story's date and row id.

    publish/api.py turns it into the API's opaque token and back."""

    published: datetime
    story_id: int


@dataclass(frozen=True)
class StoryPage:
    """One page of stories as Store.story_page reads it."""

    stories: list[PublishedStory]
    next_cursor: StoryCursor | None  # None: this was the last page


@dataclass(frozen=True)
class StoryItemRecord:
    """One member's item in a story, and why the store joined it there (`aggregator story`)."""

    item_id: int
    member_id: str
    title: str
    url: str | None
    published: datetime
    first_seen_at: datetime
    merge_reason: dict[str, object] | None  # None: the item started the story


@dataclass(frozen=True)
class StoryRecord:
    """A stored story with its items, the first the one that speaks for it."""

    id: str  # "urn:uuid:…"
    published: datetime
    items: tuple[StoryItemRecord, ...]
