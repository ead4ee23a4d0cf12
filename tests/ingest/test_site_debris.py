"""Site debris cleaning (aggregator.ingest.site_debris): each kind of leftover, one test each.

Inputs are written as WordPress, its page builders and plugins write them; the cleaned
bodies are then run through the normalize stage's sanitizer where the order matters.
"""

from __future__ import annotations

import string
from datetime import UTC
from datetime import datetime

from bs4 import BeautifulSoup
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.ingest.images import is_decorative_image
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.site_debris import _DOM_MARKERS
from aggregator.ingest.site_debris import _FORMATTER
from aggregator.ingest.site_debris import EVERY_REPAIR
from aggregator.ingest.site_debris import _repaired
from aggregator.ingest.site_debris import clean_body
from aggregator.ingest.site_debris import clean_entry
from aggregator.ingest.site_debris import clean_title
from aggregator.ingest.site_debris import strip_shortcodes
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig

NOW = datetime(2025, 3, 15, tzinfo=UTC)
SITE = "https://ctp.example.org"
CAPTION = (
    '<p>[caption id="attachment_34458" align="aligncenter" width="900"]'
    f'<a href="{SITE}/march.jpg"><img src="{SITE}/march.jpg" alt="March" width="900" '
    'height="600" /></a> Marchers on the bridge[/caption]</p>'
)


def normalized(content: str, summary: str | None = None, title: str = "T") -> tuple[str, str]:
    entry = ParsedEntry(link=f"{SITE}/p", title=title, content_html=content, summary_html=summary)
    feed = ParsedFeed(url=f"{SITE}/feed/", format="rss20", entries=(entry,))
    [item] = normalize_feed(feed, SourceConfig("ctp", "feed", f"{SITE}/feed/"), NOW)
    return item.content_html, item.summary


def test_a_caption_becomes_a_figure_with_its_image_and_caption() -> None:
    content, _ = normalized(CAPTION)
    assert "[caption" not in content and "[/caption]" not in content
    assert f'<figure><a href="{SITE}/march.jpg" rel="noopener noreferrer">' in content
    assert "<figcaption>Marchers on the bridge</figcaption></figure>" in content
    assert "<p></p>" not in content


def test_a_caption_in_a_plain_summary_leaves_its_text() -> None:
    summary = '[caption id="attachment_1" width="900"] Marchers on the bridge[/caption] They walked'
    assert " ".join(clean_body(summary, as_html=False).html.split()) == (
        "Marchers on the bridge They walked"
    )


def test_embeds_and_media_become_links_forms_and_galleries_disappear() -> None:
    html = strip_shortcodes(
        "[embed]https://www.youtube.com/watch?v=abc[/embed]"
        '[video width="640" mp4="https://ctp.example.org/v.mp4"][/video]'
        '[audio mp3="https://ctp.example.org/a.mp3"]'
        '[gallery ids="1,2,3"][contact-form-7 id="5" title="Contact"]',
        as_html=True,
    )
    assert '<a href="https://www.youtube.com/watch?v=abc">' in html
    assert '<a href="https://ctp.example.org/v.mp4">' in html
    assert '<a href="https://ctp.example.org/a.mp3">' in html
    assert "[" not in html and "gallery" not in html and "Contact" not in html


def test_divi_is_reduced_to_its_text_image_and_button() -> None:
    html = strip_shortcodes(
        '[et_pb_section fb_built="1"][et_pb_row][et_pb_column type="4_4"][et_pb_text]'
        "<p>Our demands.</p>[/et_pb_text]"
        f'[et_pb_image src="{SITE}/shade.jpg" alt="Shade"][/et_pb_image]'
        f'[et_pb_button button_url="{SITE}/petition/" button_text="Sign"][/et_pb_button]'
        "[/et_pb_column][/et_pb_row][/et_pb_section]",
        as_html=True,
    )
    assert "et_pb" not in html and "[" not in html
    assert "<p>Our demands.</p>" in html
    assert f'<img src="{SITE}/shade.jpg" alt="Shade">' in html
    assert f'<a href="{SITE}/petition/">Sign</a>' in html


def test_wpbakery_and_elementor_are_reduced_to_their_text() -> None:
    content, _ = normalized(
        '[vc_row][vc_column width="2/3"][vc_column_text css=".vc_custom{padding:0}"]'
        "<p>Four houses voted.</p>[/vc_column_text][/vc_column][/vc_row]"
        '<div class="elementor elementor-5"><section class="elementor-section">'
        '<div class="elementor-container"><div class="elementor-widget-container">'
        "<p>Meet a steward.</p></div></div></section></div>"
    )
    assert content.replace("> <", "><") == "<p>Four houses voted.</p><p>Meet a steward.</p>"


def test_brackets_in_prose_stay() -> None:
    text = "[Statement] He said [sic] that [1] wages [video] rose [caption is missing]"
    assert strip_shortcodes(text, as_html=True) == text
    assert clean_title(text, is_html=False) == text


def test_plugin_footers_go() -> None:
    content, _ = normalized(
        "<p>Story text.</p>"
        '<div class="sharedaddy sd-sharing-enabled"><h3 class="sd-title">Share this:</h3>'
        '<ul><li><a href="https://x.example/?share=twitter">Twitter</a></li></ul></div>'
        '<div class="sharedaddy sd-like"><h3>Like this:</h3><span>Like</span> '
        "<span>Loading...</span></div>"
        '<div id="jp-relatedposts" class="jp-relatedposts"><h3><em>Related</em></h3></div>'
        "<p>This entry was posted in <a href=\"/c\">News</a>. Bookmark the permalink.</p>"
        "<hr><p>© 2025 Coalition of Tomato Pickers. All rights reserved.</p>"
        '<p>The post <a href="/p">Story</a> appeared first on <a href="/">CTP</a>.</p>'
    )
    assert content == "<p>Story text.</p>"


def test_a_paragraph_that_only_mentions_copyright_or_sharing_stays() -> None:
    body = "<p>Copyright law protects the union's logo.</p><p>Like this year, we march.</p>"
    assert clean_body(body).html == body


def test_teaser_tails_become_one_ellipsis() -> None:
    tails = [
        "Workers walked out [&#8230;]",
        "Workers walked out [...]",
        "Workers walked out … Continue reading →",
        "Workers walked out. &gt;&gt; Read More",
        "Workers walked out. Read More &raquo;",
        "Workers walked out. Leer más",
        "Workers walked out… Seguir leyendo",
    ]
    for tail in tails:
        assert clean_body(f"<p>{tail}</p>").html == "<p>Workers walked out…</p>", tail


def test_a_read_more_link_goes_and_becomes_the_story_link() -> None:
    entry = ParsedEntry(
        title="T",
        content_html=f'<p>Text. <a href="{SITE}/p#more-1" class="more-link">Continue reading '
        '<span class="screen-reader-text">T</span> &rarr;</a></p>',
    )
    cleaned = clean_entry(entry)
    assert cleaned.content_html == "<p>Text…</p>"
    assert cleaned.link == f"{SITE}/p#more-1"


def test_a_link_that_only_starts_like_read_more_stays() -> None:
    body = f'<p>See <a href="{SITE}/r">Read more about the strike fund</a></p>'
    assert clean_body(body).html == body


def test_lazy_images_publish_their_real_address() -> None:
    content, _ = normalized(
        '<p><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="1" height="1" '
        f'data-lazy-src="{SITE}/a.jpg" alt="A"><noscript><img src="{SITE}/a.jpg" alt="A">'
        "</noscript></p>"
        f'<p><img src="{SITE}/lazy/placeholder.gif" data-srcset="{SITE}/b-300.jpg 300w, '
        f'{SITE}/b-1024.jpg 1024w" alt="B"></p>'
        f'<p><img data-src="{SITE}/c.jpg" alt="C"></p>'
        f'<p><img src="data:image/gif;base64,R0lGOD"><noscript><img src="{SITE}/d.jpg" alt="D">'
        "</noscript></p>"
    )
    assert content == (
        f'<p><img src="{SITE}/a.jpg" alt="A"></p><p><img src="{SITE}/b-1024.jpg" alt="B"></p>'
        f'<p><img alt="C" src="{SITE}/c.jpg"></p><p><img src="{SITE}/d.jpg" alt="D"></p>'
    )


def test_wordpress_emoji_images_become_the_emoji() -> None:
    content, _ = normalized(
        '<p>We won <img class="wp-smiley" style="height: 1em" alt="✊" '
        'src="https://s.w.org/images/core/emoji/15.0.3/72x72/270a.png" /> '
        '<img role="img" class="emoji" alt="🍅" '
        'src="https://s.w.org/images/core/emoji/15.0.3/svg/1f345.svg"></p>'
    )
    assert content == "<p>We won ✊ 🍅</p>"


def test_double_escaped_titles_are_decoded_once_more_markup_stays_literal() -> None:
    title = clean_title("Workers&#8217; march &amp; rally", is_html=False)
    assert title == "Workers’ march & rally"
    assert clean_title("Escaping &lt;b&gt; in titles", is_html=False) == (
        "Escaping &lt;b&gt; in titles"
    )
    assert clean_title("It\x92s \x93ours\x94\xa0now", is_html=False) == "It’s “ours” now"
    entry = ParsedEntry(title="Workers&amp;#8217; &amp;lt;b&amp;gt;", title_is_html=True)
    feed = ParsedFeed(url=f"{SITE}/feed/", format="rss20", entries=(entry,))
    [item] = normalize_feed(feed, SourceConfig("ctp", "feed", f"{SITE}/feed/"), NOW)
    assert item.title == "Workers’ &lt;b&gt;"


def test_thumbnails_are_never_avatars_emoji_or_share_icons() -> None:
    for address in (
        "https://secure.gravatar.com/avatar/abc?s=96",
        "https://ctp.example.org/wp-content/uploads/avatar-ana.jpg",
        "https://s.w.org/images/core/emoji/15.0.3/72x72/270a.png",
        "https://ctp.example.org/wp-content/plugins/x/images/share-icon.png",
        "https://ctp.example.org/images/facebook-icon.png",
    ):
        assert is_decorative_image(address), address
    assert not is_decorative_image("https://ctp.example.org/wp-content/uploads/march.jpg")
    entry = ParsedEntry(
        title="T",
        link=f"{SITE}/p",
        image="https://secure.gravatar.com/avatar/abc?s=96",
        content_html=f'<p><img src="{SITE}/uploads/march.jpg" alt=""></p>',
    )
    feed = ParsedFeed(url=f"{SITE}/feed/", format="rss20", entries=(entry,))
    [item] = normalize_feed(feed, SourceConfig("ctp", "feed", f"{SITE}/feed/"), NOW)
    assert item.image == f"{SITE}/uploads/march.jpg"


# Prose with square brackets: any text, bracketed words that are not shortcode names.
_PROSE_CHARACTERS = string.ascii_letters + string.digits + " .,;:!?'\"()-/=[]…"
_SHORTCODE_NAMES = ("caption", "wp_caption", "embed", "video", "audio", "playlist", "gallery")


def _not_shortcode_syntax(text: str) -> bool:
    return not any(f"[{name}" in text or f"[/{name}" in text for name in _SHORTCODE_NAMES)


@given(
    st.text(alphabet=_PROSE_CHARACTERS, max_size=200).filter(
        lambda text: _not_shortcode_syntax(text)
        and "[contact-form" not in text
        and "[et_pb_" not in text
        and "[vc_" not in text
        and "[fusion_" not in text
        and "[/et_pb_" not in text
        and "[/vc_" not in text
        and "[/fusion_" not in text
    )
)
def test_prose_with_square_brackets_is_unchanged(text: str) -> None:
    assert strip_shortcodes(text, as_html=True) == text
    assert strip_shortcodes(text, as_html=False) == text
    assert clean_title(text, is_html=False) == text


@given(
    st.text(alphabet=string.ascii_letters + " []().,", max_size=60),
    st.text(alphabet=string.ascii_letters + " []().,", max_size=60),
)
def test_prose_around_a_shortcode_is_kept_as_it_was(before: str, after: str) -> None:
    cleaned = strip_shortcodes(f'{before}[gallery ids="1,2"]{after}', as_html=True)
    assert cleaned == f"{before} {after}"


# Pieces of bodies: debris of every kind, prose that only mentions it, and ordinary markup.
_BODY_PIECES = (
    "<p>The union met on Tuesday.</p>",
    "<p>Read more about the copyright reform in our emoji guide.</p>",
    "<p>We would like this to pass; share this with a friend who is related.</p>",
    "<p>Continue reading &#8594;</p>",
    "<p>It went well [&hellip;]</p>",
    "<p>It went well […]",
    '<p>It went well. <a href="/story/" class="more-link">Read more</a></p>',
    '<a class="readmore" href="/s/">Full story',
    '<p>The post <a href="/p/">Win</a> appeared first on <a href="/">Local 7</a>.</p>',
    "<div><h3>Related</h3></div>",
    "<p>Share <b>this</b>:</p>",
    "<p>Like&nbsp;this:</p>",
    "<p>&copy; 2024 Local 7</p>",
    "<p>(c) all rights reserved</p>",
    '<div class="sharedaddy sd-sharing-enabled"><p>Share</p></div>',
    '<div class="elementor-section"><div class="elementor-widget"><p>Text</p></div></div>',
    '<img src="data:image/gif;base64,R0lG" data-lazy-src="https://m.example.org/a.jpg">',
    '<img class="emoji" alt="🙂" src="https://s.w.org/images/core/emoji/1.png">',
    '<noscript><img src="https://m.example.org/b.jpg"></noscript>',
    '<img src="https://pixel.wp.com/b.gif" width="1" height="1" alt="">',
    "<p>&nbsp;</p>",
    "<hr>",
    "<br/>",
    "<p></p>",
    "<!-- more -->",
    "<p>Rates rose > 5 % &amp; fell",
    "</p>",
    " ",
)


@settings(deadline=None)
@given(st.lists(st.sampled_from(_BODY_PIECES), max_size=7))
def test_a_body_left_unparsed_is_one_no_repair_would_change(pieces: list[str]) -> None:
    # clean_body only parses a body when one of its cheap checks says a repair could apply;
    # with every repair forced, a body it left alone must come back only re-serialised.
    body = "".join(pieces)
    cleaned = clean_body(body)
    if not _DOM_MARKERS.search(body):
        assert cleaned.html == body  # no marker at all: never parsed, as before
        return
    forced = _repaired(body, EVERY_REPAIR)
    if cleaned.html == body:
        written_back = BeautifulSoup(body, "html.parser").decode(formatter=_FORMATTER)
        assert forced.more_link is None
        assert forced.html == written_back.strip()
    else:
        assert cleaned == forced
