"""Cross-post matching rules (pure)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.dedupe import StoryCandidate
from aggregator.dedupe import candidate_keys
from aggregator.dedupe import find_match
from aggregator.dedupe import is_article_url
from aggregator.dedupe import match_story
from aggregator.dedupe import same_story
from aggregator.dedupe import text_similarity
from aggregator.dedupe import title_key

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEAT_TEXT = (
    "Farmworkers across the valley walked out of the fields on Tuesday after temperatures "
    "passed 40 degrees for the third day in a row. The alliance is calling on growers to "
    "adopt the heat standard negotiated last spring, with shade, water and paid rest breaks."
)


def candidate(**overrides: object) -> StoryCandidate:
    values: dict[str, object] = {
        "story_id": 7,
        "member_id": "harvest",
        "url": "https://harvest.example/heat",
        "title_key": title_key("Heat protections must cover every farmworker"),
        "published": NOW,
        "text": HEAT_TEXT,
    }
    values.update(overrides)
    return StoryCandidate(**values)  # type: ignore[arg-type]


def test_find_match_names_every_other_matching_story_without_changing_its_choice() -> None:
    """The store merges a round's stories that one item matches (issue 12): it needs each
    of them, with its evidence; the chosen story stays the rule's (a link first)."""
    linked = candidate(story_id=1, member_id="faith", title_key="a report worth reading")
    same_title = candidate(
        story_id=2, member_id="dairy", url="https://dairy.example/heat", published=NOW
    )
    nearer_same_title = candidate(
        story_id=2, member_id="dairy", url="https://dairy.example/heat-2", item_id=5
    )
    unrelated = candidate(
        story_id=3,
        member_id="garment",
        url="https://garment.example/pay",
        title_key=title_key("Garment workers win back pay at Riverside Apparel"),
        text="Riverside Apparel agreed to pay wages owed to sewing machine operators.",
    )
    found = find_match(
        url="https://harvest.example/heat",
        title="Heat protections must cover every farmworker",
        published=NOW + timedelta(hours=1),
        text=HEAT_TEXT,
        candidates=[same_title, linked, nearer_same_title, unrelated],
        member_id="valley",
    )
    assert found is not None and (found.story_id, found.rule) == (1, "link")
    assert [(other.story_id, other.rule) for other in found.others] == [(2, "title+text")]
    assert found.others[0].evidence["matched_member"] == "dairy"
    alone = find_match(
        url="https://harvest.example/heat",
        title="Heat protections must cover every farmworker",
        published=NOW,
        text=HEAT_TEXT,
        candidates=[linked],
    )
    assert alone is not None and alone.others == ()


def test_title_key_ignores_case_punctuation_accents_and_labels() -> None:
    assert title_key("BREAKING: Heat protections — now!") == "heat protections now"
    assert title_key("Statement: Heat protections now") == "heat protections now"
    assert title_key("[Update] - Heat protections now") == "heat protections now"
    assert title_key("Trabajadores agrícolas ganan") == "trabajadores agricolas ganan"


def test_same_canonical_link_is_the_same_story_whatever_the_title() -> None:
    match = match_story(
        url="https://harvest.example/heat",
        title="Completely different title",
        published=NOW + timedelta(days=30),
        text="",
        candidates=[candidate()],
    )
    assert match == 7


def test_cross_post_with_label_and_similar_text_matches() -> None:
    match = match_story(
        url="https://garment.example/news/heat",
        title="Statement: Heat protections must cover every farmworker!",
        published=NOW + timedelta(hours=20),
        text=HEAT_TEXT + " Signed by the Garment Rights Monitor.",
        candidates=[candidate()],
    )
    assert match == 7


def test_same_title_outside_the_window_is_a_new_story() -> None:
    match = match_story(
        url="https://garment.example/news/heat",
        title="Heat protections must cover every farmworker",
        published=NOW + timedelta(days=11),
        text=HEAT_TEXT,
        candidates=[candidate()],
    )
    assert match is None


def test_generic_title_with_different_text_stays_two_stories() -> None:
    weekly = candidate(
        title_key=title_key("Weekly update"),
        url="https://harvest.example/weekly-46",
        text="This week the alliance trained forty new worker monitors in the north fields.",
    )
    match = match_story(
        url="https://dairy.example/weekly",
        title="Weekly Update",
        published=NOW + timedelta(days=1),
        text="Our dairy committee met with two processors about the housing audit results.",
        candidates=[weekly],
    )
    assert match is None


def test_generic_title_without_text_is_not_merged() -> None:
    weekly = candidate(title_key=title_key("Weekly update"), url=None, text="")
    match = match_story(
        url=None, title="Weekly update", published=NOW, text="", candidates=[weekly]
    )
    assert match is None


def test_long_specific_title_without_text_is_merged() -> None:
    empty = candidate(url=None, text="")
    match = match_story(
        url=None,
        title="Heat protections must cover every farmworker",
        published=NOW,
        text="",
        candidates=[empty],
    )
    assert match == 7


def test_closest_in_time_wins_among_title_matches() -> None:
    older = candidate(story_id=1, url=None, published=NOW - timedelta(days=5))
    newer = candidate(story_id=2, url=None, published=NOW - timedelta(hours=1))
    match = match_story(
        url=None,
        title="Heat protections must cover every farmworker",
        published=NOW,
        text=HEAT_TEXT,
        candidates=[older, newer],
    )
    assert match == 2


def test_text_similarity_bounds() -> None:
    assert text_similarity(HEAT_TEXT, HEAT_TEXT) == 1.0
    assert text_similarity(HEAT_TEXT, "") == 0.0
    assert text_similarity(HEAT_TEXT, "Dairy workers win housing repairs after audit.") < 0.1
    excerpt = " ".join(HEAT_TEXT.split()[:25])
    assert text_similarity(excerpt, HEAT_TEXT) == 1.0


# --- the cross-post cases of issue 12, one or more tests per case type -------------------

ACME_TEXT = (
    "A federal court approved a settlement of one point two million dollars for a hundred "
    "and forty workers at Acme Farms who were not paid for travel time between fields."
)
AUDIT_TEXT = (
    "An independent inspection of the Sunrise Knits factory in March found that workers were "
    "paid by the piece at rates below the legal minimum wage, that the nursery required by law "
    "had been turned into a storeroom and that two of the four stairways were blocked by "
    "cartons. The inspectors interviewed ninety workers off site."
)
SPANISH_TEXT = (
    "Las trabajadoras de limpieza del Hotel Mirador denunciaron este martes que la empresa les "
    "obliga a limpiar dieciocho habitaciones por turno, cuando el contrato fija un máximo de "
    "doce. El sindicato pide una inspección laboral y más personal para el verano."
)
ENGLISH_TEXT = (
    "Housekeepers at the Hotel Mirador said on Tuesday that the company forces them to clean "
    "eighteen rooms per shift, when the contract sets a maximum of twelve. The union is asking "
    "for a labor inspection and for more staff to be hired before the summer."
)


def matches(title: str, text: str, other: StoryCandidate, **item: object) -> bool:
    values: dict[str, object] = {
        "url": "https://towers.example/2026/11/post-1/",
        "title": title,
        "published": NOW + timedelta(hours=6),
        "text": text,
        "candidates": [other],
    }
    values.update(item)
    return match_story(**values) == other.story_id  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "variant",
    [
        "Press release: Supermarkets must sign the Fair Food pledge",
        "Joint Statement — Supermarkets Must Sign the Fair Food Pledge",
        "JOINT STATEMENT: SUPERMARKETS MUST SIGN THE FAIR FOOD PLEDGE",
        "[Statement] Supermarkets must sign the Fair Food pledge",
        "Supermarkets must sign the Fair Food pledge | Fryers and Cashiers Union",
        "Supermarkets must sign the Fair Food pledge – Fryers and Cashiers Union",
        "✊ Supermarkets must sign the Fair Food pledge!",
    ],
)
def test_labels_suffixes_emoji_and_case_do_not_change_the_title_key(variant: str) -> None:
    assert title_key(variant) == "supermarkets must sign the fair food pledge"


def test_ampersand_is_and_and_amounts_are_written_one_way() -> None:
    assert title_key("Workers & allies") == title_key("Workers and allies")
    million = title_key("$1.2M settlement")
    assert million == title_key("$1.2 million settlement")
    assert million == title_key("1.2 million dollars settlement")
    assert title_key("$20 an hour").split()[0] == title_key("$20.00 an hour").split()[0]
    # A title that is only a month after its dash keeps it: no site suffix there.
    assert title_key("Monthly newsletter — March") == "monthly newsletter march"


def test_own_write_up_under_a_headline_that_names_something_merges() -> None:
    theirs = candidate(
        title_key=title_key("Cooks at Burger Barn strike over stolen tips"),
        text="Cooks and cashiers at four Burger Barn locations walked out at noon today.",
    )
    assert matches(
        "Cooks at Burger Barn strike over stolen tips",
        "Pastors joined the picket line at Burger Barn, where cooks say managers kept tips.",
        theirs,
    )


def test_same_hearing_headline_in_two_states_stays_apart() -> None:
    headline = "Lawmakers hear warehouse heat bill today"
    california = candidate(
        title_key=title_key(headline),
        text="The California Assembly's labor committee holds its hearing in Sacramento.",
    )
    assert not matches(
        headline,
        "The Washington House labor committee holds its hearing today in Olympia.",
        california,
    )


def test_equivalent_headlines_with_amounts_written_differently_merge() -> None:
    theirs = candidate(
        title_key=title_key("Workers win $1.2M settlement at Acme Farms"), text=ACME_TEXT
    )
    assert matches(
        "Acme Farms workers win $1.2 million back-pay settlement",
        "We celebrate with the families of Acme Farms, who will finally receive back pay.",
        theirs,
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Fair Food Program expands to Georgia", "Fair Food Program expands to Colorado"),
        (
            "Workers win back-pay settlement at Brookside Farms",
            "Workers win back-pay settlement at Willow Creek Farms",
        ),
        ("Fire in the kitchen at the Ocean Grill", "Statement on the fire at the Ocean Grill"),
        (
            "Workers win $280,000 settlement at Acme Farms",
            "Workers win $520,000 settlement at Acme Farms",
        ),
    ],
)
def test_look_alike_headlines_with_a_differing_place_name_amount_or_kind_stay_apart(
    first: str, second: str
) -> None:
    theirs = candidate(
        title_key=title_key(first),
        text="Seventy lettuce cutters at Brookside Farms will receive back pay, in Georgia.",
    )
    assert not matches(
        second, "One hundred and ten melon pickers at Willow Creek Farms, in Colorado.", theirs
    )


def test_headlines_sharing_a_topic_but_each_saying_something_else_stay_apart() -> None:
    # A network whose members all campaign for shade and water breaks: two posts share those
    # words, but each headline names something the other does not (who, and what they did),
    # and their texts have nothing in common. Seen merging hundreds of posts into one story
    # on the benchmark corpus before this rule.
    theirs = candidate(
        title_key=title_key("Textile workers call for shade and water breaks in Immokalee"),
        text=HEAT_TEXT,
    )
    assert not matches(
        "Seafood processors gain shade and water breaks in Immokalee",
        "Processing plants along the coast signed the agreement after a two-year campaign by "
        "the union's members, who will now stop the line every two hours in the summer.",
        theirs,
    )


def test_same_body_under_own_headline_and_an_excerpt_merge() -> None:
    theirs = candidate(
        title_key=title_key("What inspectors found at Sunrise Knits"), text=AUDIT_TEXT
    )
    assert matches("Blocked stairways and missing wages: a factory report", AUDIT_TEXT, theirs)
    excerpt = AUDIT_TEXT.rsplit(" The inspectors", 1)[0]
    assert matches("From our allies: a factory report", excerpt, theirs)


def test_repost_nine_days_later_merges_and_follow_up_eleven_days_later_does_not() -> None:
    theirs = candidate()
    title = "Heat protections must cover every farmworker"
    assert matches(title, HEAT_TEXT, theirs, published=NOW + timedelta(days=9))
    follow_up = "Eleven days on, growers still refuse the heat standard; the strike goes on."
    assert not matches(title, follow_up, theirs, published=NOW + timedelta(days=11))


def test_title_only_copy_with_a_wordpress_footer_counts_as_no_text() -> None:
    title = "Court orders Bellmont Apparel to pay severance to 350 laid-off operators"
    theirs = candidate(
        title_key=title_key(title),
        text="A labor court ruled that Bellmont Apparel must pay full severance to operators.",
    )
    footer = f"The post {title} appeared first on Fryers and Cashiers Union."
    assert matches(title, footer, theirs)


def test_generic_titles_with_the_same_template_text_stay_apart() -> None:
    boilerplate = (
        "Thanks for reading this week's update. Forward it to a friend who cares about "
        "workers' rights, follow us on social media, and if you can, make a donation to keep "
        "our organizers in the field."
    )
    for title in ("Weekly update", "Monthly newsletter — March", "Take action!", "In the news"):
        theirs = candidate(title_key=title_key(title), text=boilerplate)
        assert not matches(title, boilerplate, theirs), title


def test_translation_stays_apart_and_same_spanish_text_merges() -> None:
    spanish = candidate(
        title_key=title_key("Camareras del Hotel Mirador denuncian sobrecarga de trabajo"),
        text=SPANISH_TEXT,
    )
    assert not matches("Hotel Mirador housekeepers denounce heavy workloads", ENGLISH_TEXT, spanish)
    assert matches(
        "Comunicado: camareras del Hotel Mirador denuncian sobrecarga de trabajo",
        SPANISH_TEXT,
        spanish,
    )


def test_links_to_a_home_or_section_page_are_no_evidence_and_links_are_bounded_in_time() -> None:
    for link in ("https://foodchain.example/", "https://foodchain.example/news/"):
        theirs = candidate(
            url=link,
            title_key=title_key("Farmworkers join the coalition's summer campaign"),
            text="This summer the coalition will press grocery chains on heat safety.",
        )
        assert not matches(
            "Coalition publishes a guide to tip theft",
            "The coalition's new guide explains how restaurant workers recover stolen tips.",
            theirs,
            url=link,
        )
    article = candidate(url="https://towers.example/2025/04/plaza-cleaners/")
    assert matches("Read this", "", article, url=article.url)
    assert not matches(
        "Read this", "", article, url=article.url, published=NOW + timedelta(days=40)
    )


@pytest.mark.parametrize(
    ("url", "article"),
    [
        ("https://foodchain.example/", False),
        ("https://foodchain.example/news/", False),
        ("https://foodchain.example/category/heat/", False),
        ("https://foodchain.example/es/noticias/", False),
        ("https://foodchain.example/2025/04/w05/", True),
        ("https://harvest.example/heat", True),
        ("https://foodchain.example/?p=123", True),
    ],
)
def test_is_article_url(url: str, article: bool) -> None:
    assert is_article_url(url) is article


def test_candidate_keys_name_title_distinctive_tokens_and_article_links_only() -> None:
    keys = candidate_keys(
        "Workers win $1.2M settlement at Acme Farms", "https://valley.example/2025/03/v04/"
    )
    assert keys[0] == "title\nworkers win 1200000 settlement at acme farms"
    assert {"token\nacme", "token\nfarms", "token\n1200000", "token\nsettlement"} <= set(keys)
    assert "token\nworkers" not in keys
    assert "url\nhttps://valley.example/2025/03/v04/" in keys
    assert candidate_keys("Weekly update", "https://valley.example/") == ["title\nweekly update"]


def test_a_members_own_other_post_is_not_a_candidate() -> None:
    theirs = candidate(member_id="garment")
    assert (
        match_story(
            url="https://garment.example/2026/11/heat-2/",
            title="Heat protections must cover every farmworker",
            published=NOW,
            text=HEAT_TEXT,
            candidates=[theirs],
            member_id="garment",
        )
        is None
    )


# --- properties ---------------------------------------------------------------------------

_VOCABULARY = [
    "acme",
    "farms",
    "settlement",
    "heat",
    "strike",
    "georgia",
    "colorado",
    "fire",
    "statement",
    "fund",
    "weekly",
    "update",
    "workers",
    "win",
    "1",
    "2",
    "million",
    "tips",
    "burger",
    "barn",
    "20",
    "hour",
    "dairy",
    "milkers",
]
_titles = st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=8).map(" ".join)
_texts = st.lists(st.sampled_from(_VOCABULARY), min_size=0, max_size=40).map(" ".join)
_urls = st.sampled_from(
    [None, "https://a.example/", "https://a.example/2025/01/post-1/", "https://b.example/x-y"]
)
_offsets = st.integers(min_value=-20 * 24, max_value=20 * 24).map(lambda h: timedelta(hours=h))


@given(_titles, _texts, _urls, _offsets, _titles, _texts, _urls)
@settings(max_examples=300, deadline=None)
def test_matching_is_symmetric(
    title_a: str,
    text_a: str,
    url_a: str | None,
    gap: timedelta,
    title_b: str,
    text_b: str,
    url_b: str | None,
) -> None:
    a = candidate(url=url_a, title_key=title_key(title_a), published=NOW, text=text_a)
    b = candidate(url=url_b, title_key=title_key(title_b), published=NOW + gap, text=text_b)
    a_joins_b = same_story(
        url=url_a, key=a.title_key, published=a.published, text=text_a, candidate=b
    )
    b_joins_a = same_story(
        url=url_b, key=b.title_key, published=b.published, text=text_b, candidate=a
    )
    assert a_joins_b == b_joins_a


@given(_urls, _offsets)
@settings(max_examples=100, deadline=None)
def test_different_languages_never_match(url: str | None, gap: timedelta) -> None:
    spanish = candidate(
        url=url,
        title_key=title_key("Camareras del Hotel Mirador denuncian sobrecarga de trabajo"),
        text=SPANISH_TEXT,
    )
    assert not matches(
        "Camareras del Hotel Mirador denuncian sobrecarga de trabajo",
        ENGLISH_TEXT,
        spanish,
        url=url,
        published=NOW + gap,
    )


def test_one_template_text_under_headlines_with_different_numbers_is_two_stories() -> None:
    body = (
        "The unions of the network call on parliament to withdraw the new labour code, which "
        "strips workers of the right to bargain collectively and lengthens the working week "
        "for every worker in the sector, and ask members to sign the petition today."
    )
    when = datetime(2026, 3, 1, tzinfo=UTC)
    candidate = StoryCandidate(
        story_id=1,
        item_id=1,
        member_id="a",
        url="https://a.example.org/joint-5",
        title_key=title_key("Joint statement 5 on the labour code"),
        published=when,
        text=body,
    )
    assert (
        match_story(
            url="https://b.example.org/joint-7",
            title="Joint statement 7 on the labour code",
            published=when,
            text=body,
            candidates=[candidate],
            member_id="b",
        )
        is None
    )
    # The same body under a headline without a number still merges (a member's own title).
    assert (
        match_story(
            url="https://b.example.org/withdraw",
            title="Withdraw the labour code, the unions say",
            published=when,
            text=body,
            candidates=[candidate],
            member_id="b",
        )
        == 1
    )
