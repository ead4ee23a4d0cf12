"""The thumbnail: the largest reasonable image among everything a source offers for an item.

One chooser (ingest/images.choose_thumbnail) ranks media:thumbnail, media:content, image
enclosures, the content's <img> elements (with srcset widths) and, for `follow: true`
pages, the story page's Open Graph image; these tests feed each source of candidates through
the real parse and normalize stages (and, for Open Graph, a real fetch from 127.0.0.1).
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from datetime import datetime

from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.follow import follow_new_items
from aggregator.ingest.images import choose_thumbnail
from aggregator.ingest.images import content_images
from aggregator.ingest.normalize import normalize_entries
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_feed
from aggregator.models import ImageCandidate
from aggregator.models import Item
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from tests.support.server import FixtureServer

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
SITE = "https://tomatopickers.example.org"
UPLOADS = f"{SITE}/wp-content/uploads/2025/03"
SOURCE = SourceConfig("ctp", "feed", f"{SITE}/feed/")


def rss_items(*items: str) -> list[Item]:
    """Items of an RSS 2.0 feed with Media RSS, through the real parse and normalize stages."""
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>CTP</title><link>{SITE}/</link>
{"".join(items)}
</channel></rss>""".encode()
    return normalize_feed(parse_feed(body, SOURCE.url, "application/rss+xml"), SOURCE, NOW)


def rss_item(extra: str, content: str = "<p>Text.</p>") -> str:
    return (
        f"<item><title>March</title><link>{SITE}/march/</link>{extra}"
        f"<content:encoded><![CDATA[{content}]]></content:encoded></item>"
    )


# --- the chooser alone -----------------------------------------------------------------


def test_the_largest_declared_image_wins_and_ties_go_to_the_first() -> None:
    small = ImageCandidate(f"{UPLOADS}/a-300x200.jpg", 300, 200)
    large = ImageCandidate(f"{UPLOADS}/a-1200x800.jpg", 1200, 800)
    assert choose_thumbnail([small, large], None) == large.url
    assert choose_thumbnail([large, small], None) == large.url
    same = ImageCandidate(f"{UPLOADS}/b-1200x800.jpg", 1200, 800)
    assert choose_thumbnail([same, large], None) == same.url


def test_an_image_without_a_size_ranks_as_a_typical_thumbnail() -> None:
    undeclared = ImageCandidate(f"{UPLOADS}/featured.jpg")
    assert choose_thumbnail([ImageCandidate(f"{UPLOADS}/s.jpg", 150, 150), undeclared], None) == (
        undeclared.url
    )
    big = ImageCandidate(f"{UPLOADS}/big.jpg", 1024, 683)
    assert choose_thumbnail([undeclared, big], None) == big.url
    # One declared side: the other is taken as 3:2.
    assert choose_thumbnail([undeclared, ImageCandidate(f"{UPLOADS}/w.jpg", 900)], None) == (
        f"{UPLOADS}/w.jpg"
    )


def test_pixels_avatars_icons_emoji_and_placeholders_are_never_chosen() -> None:
    refused = [
        ImageCandidate("https://pixel.wp.com/g.gif?blog=1", 2000, 2000),
        ImageCandidate(f"{SITE}/wp-content/plugins/stats/1x1.gif"),
        ImageCandidate("https://secure.gravatar.com/avatar/abc?s=96", 960, 960),
        ImageCandidate(f"{SITE}/wp-content/plugins/share/images/facebook-icon.png"),
        ImageCandidate("https://s.w.org/images/core/emoji/15.0.3/72x72/270a.png"),
        ImageCandidate("data:image/gif;base64,R0lGODlhAQABAAAAACw=", 800, 600),
        ImageCandidate(f"{UPLOADS}/button.png", 88, 31),  # too small to stand for a story
        ImageCandidate(f"{UPLOADS}/divider.png", 1200, 10),  # a rule, not a picture
        ImageCandidate(f"{UPLOADS}/banner.png", 728, 90),  # an ad-shaped strip
        ImageCandidate("javascript:alert(1)", 800, 600),
    ]
    assert choose_thumbnail(refused, None) is None
    real = ImageCandidate(f"{UPLOADS}/march.jpg", 400, 300)
    assert choose_thumbnail([*refused, real], None) == real.url


def test_relative_candidates_are_resolved_against_the_entry_base() -> None:
    found = choose_thumbnail([ImageCandidate("../img/a.jpg", 800, 600)], f"{SITE}/blog/post/")
    assert found == f"{SITE}/blog/img/a.jpg"


def test_content_images_carry_their_declared_and_srcset_sizes() -> None:
    found = content_images(
        f'<p><img src="{UPLOADS}/r-300x200.jpg" width="300" height="200" '
        f'srcset="{UPLOADS}/r-300x200.jpg 300w, {UPLOADS}/r-1024x683.jpg 1024w, '
        f'{UPLOADS}/r@2x.jpg 2x"></p><script>"<img src=/x.jpg>"</script>'
    )
    assert found == [
        ImageCandidate(f"{UPLOADS}/r-300x200.jpg", 300, 200),
        ImageCandidate(f"{UPLOADS}/r-300x200.jpg", 300, 200),
        ImageCandidate(f"{UPLOADS}/r-1024x683.jpg", 1024, 682),
    ]


# --- each source of candidates, through parse and normalize ----------------------------


def test_media_content_larger_than_the_media_thumbnail_is_chosen() -> None:
    [item] = rss_items(
        rss_item(
            f'<media:thumbnail url="{UPLOADS}/march-150x150.jpg" width="150" height="150"/>'
            f'<media:content url="{UPLOADS}/march.jpg" medium="image" width="1200" height="800"/>'
            f'<media:content url="https://secure.gravatar.com/avatar/abc?s=96" medium="image"/>'
        )
    )
    assert item.image == f"{UPLOADS}/march.jpg"


def test_an_image_enclosure_is_a_candidate_and_an_audio_one_is_not() -> None:
    [podcast, picture] = rss_items(
        rss_item(f'<enclosure url="{SITE}/ep1.mp3" type="audio/mpeg" length="1000"/>'),
        rss_item(f'<enclosure url="{UPLOADS}/rally.jpg" type="image/jpeg" length="84512"/>'),
    )
    assert podcast.image is None
    assert picture.image == f"{UPLOADS}/rally.jpg"


def test_a_large_content_image_beats_a_small_declared_thumbnail() -> None:
    [item] = rss_items(
        rss_item(
            f'<media:thumbnail url="{UPLOADS}/march-150x150.jpg" width="150" height="150"/>',
            content=(
                f'<p><img src="{SITE}/wp-content/uploads/avatar-ana.jpg" width="900" height="900">'
                f'<img src="{UPLOADS}/tiny.jpg" width="40" height="40">'
                f'<img src="{UPLOADS}/bridge.jpg" width="900" height="600"></p>'
            ),
        )
    )
    assert item.image == f"{UPLOADS}/bridge.jpg"


def test_a_srcset_width_ranks_a_content_image_and_its_largest_variant_is_used() -> None:
    [item] = rss_items(
        rss_item(
            f'<media:content url="{UPLOADS}/featured.jpg" medium="image"/>',
            content=(
                f'<p><img src="{UPLOADS}/rally-300x200.jpg" '
                f'srcset="{UPLOADS}/rally-300x200.jpg 300w, {UPLOADS}/rally-1536x1024.jpg 1536w">'
                "</p>"
            ),
        )
    )
    assert item.image == f"{UPLOADS}/rally-1536x1024.jpg"


def test_lazy_content_images_count_with_their_real_address() -> None:
    # site_debris repairs the lazy image first, so its data-srcset's widest image is a
    # candidate and the placeholder never is.
    [item] = rss_items(
        rss_item(
            "",
            content=(
                f'<p><img src="data:image/gif;base64,R0lGOD" width="1" height="1" '
                f'data-srcset="{UPLOADS}/lazy-300x200.jpg 300w, {UPLOADS}/lazy-1024x683.jpg 1024w">'
                "</p>"
            ),
        )
    )
    assert item.image == f"{UPLOADS}/lazy-1024x683.jpg"


def test_only_decorative_images_leave_no_thumbnail() -> None:
    [item] = rss_items(
        rss_item(
            '<media:content url="https://secure.gravatar.com/avatar/abc" medium="image"/>',
            content=(
                '<p>Solidarity <img class="wp-smiley" alt="✊" '
                'src="https://s.w.org/images/core/emoji/15.0.3/72x72/270a.png">'
                f'<img src="{SITE}/share/twitter-share.png" width="24" height="24"></p>'
            ),
        )
    )
    assert item.image is None


# --- Open Graph, for follow: true ------------------------------------------------------


def test_a_followed_story_pages_open_graph_image_outranks_the_listings_small_one(
    server: FixtureServer,
) -> None:
    html = {"Content-Type": "text/html; charset=utf-8"}
    server.routes["/ctp/story/march"] = Route(
        body=b"""<!DOCTYPE html><html lang="en"><head><title>March</title>
<meta property="og:image" content="/ctp/media/march-og.jpg">
<meta property="og:image:width" content="1200"><meta property="og:image:height" content="630">
<meta name="twitter:image" content="/ctp/media/march-twitter.jpg">
</head><body><p>The march.</p></body></html>""",
        headers=html,
    )
    server.routes["/ctp/story/icons"] = Route(
        body=b"""<!DOCTYPE html><html lang="en"><head><title>Icons</title>
<meta property="og:image" content="/ctp/media/site-icon.png">
<meta property="og:image:width" content="64"><meta property="og:image:height" content="64">
</head><body><p>No picture of its own.</p></body></html>""",
        headers=html,
    )
    source = SourceConfig("ctp", "page", server.url("/ctp/news/"), follow=True)
    listing = ParsedFeed(
        url=source.url,
        format="html-page",
        entries=(
            ParsedEntry(
                title="March",
                link=server.url("/ctp/story/march"),
                image="/ctp/media/march-thumb-160.jpg",
                base_url=source.url,
            ),
            ParsedEntry(
                title="Icons",
                link=server.url("/ctp/story/icons"),
                image="/ctp/media/icons-listing.jpg",
                base_url=source.url,
            ),
        ),
    )

    async def follow() -> list[Item]:
        async with Fetcher() as fetcher:
            return await follow_new_items(
                listing,
                normalize_entries(listing, source, NOW),
                source,
                set(),
                fetcher.fetch,
                NOW,
                None,
                resolver=fetcher.resolver,
            )

    march, icons = asyncio.run(follow())
    assert march.image == server.url("/ctp/media/march-og.jpg")
    # The page's 64×64 icon is refused: the listing's own image stays.
    assert icons.image == server.url("/ctp/media/icons-listing.jpg")
