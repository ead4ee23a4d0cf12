"""aggregator.text: the one slug rule, its accent folding and the short ids it suggests."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.config import suggest_slug
from aggregator.config.opml_import import _unique_id
from aggregator.text import short_id
from aggregator.text import slugify
from aggregator.text import tag_slug

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Migración Unida", "migracion-unida"),
        ("Fair Food", "fair-food"),
        ("fair_food", "fair-food"),
        ("Health & Safety", "health-safety"),
        ("Straße", "strasse"),
        ("Ñandú", "nandu"),
        ("../etc/passwd", "etc-passwd"),
        ("__", ""),
        ("Трудовые права", ""),
    ],
)
def test_slugify_folds_accents_and_joins_words_with_one_hyphen(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_every_slug_in_the_project_agrees() -> None:
    """Member ids from check, import-opml and tag slugs: one answer for one name."""
    assert suggest_slug("Migración Unida") == "migracion-unida"
    assert _unique_id("Migración Unida", "https://migracion.example/", set()) == "migracion-unida"
    assert tag_slug("Migración Unida") == "migracion-unida"


def test_a_long_slug_is_cut_between_words() -> None:
    text = "Alianza Nacional de Trabajadoras del Hogar y Cuidadoras Unidas"
    slug = slugify(text)
    assert slug == "alianza-nacional-de-trabajadoras-del"
    assert len(slug) <= 40 and text.lower().replace(" ", "-").startswith(slug + "-")
    assert slugify("x" * 50) == "x" * 40  # one word longer than the limit: no other cut


@pytest.mark.parametrize(
    ("name", "url", "suggestion"),
    [
        ("CTUL", "https://ctul.net/", "ctul"),
        ("Centro de Trabajadores Unidos en la Lucha", "https://www.ctul.net/en/", "ctul"),
        ("Coalition of Immokalee Workers", "http://127.0.0.1:8000/", "ciw"),
        ("Coalition of Immokalee Workers", None, "ciw"),
        ("Migración Unida", "https://mu.example/", "migracion-unida"),
    ],
)
def test_short_ids_for_long_names(name: str, url: str | None, suggestion: str) -> None:
    assert short_id(name, url) == suggestion


@given(st.text())
def test_a_slug_is_always_lowercase_ascii_words_joined_by_hyphens(text: str) -> None:
    slug = slugify(text)
    assert slug == "" or SLUG.match(slug)
    assert len(slug) <= 40
    assert slugify(slug) == slug  # idempotent: a slug names itself


@given(st.text(), st.one_of(st.none(), st.text()))
def test_a_short_id_is_a_valid_member_id_or_empty(name: str, url: str | None) -> None:
    suggestion = short_id(name, url)
    assert suggestion == "" or (SLUG.match(suggestion) and len(suggestion) <= 40)
