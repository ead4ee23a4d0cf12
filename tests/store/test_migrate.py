"""Schema migrations on SQLite and PostgreSQL: new databases, upgrades with data, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from aggregator.cli import main
from aggregator.errors import StorageError
from aggregator.identity import story_uid
from aggregator.store import Store
from aggregator.store import schema
from aggregator.store.base import schema_state
from aggregator.store.migrate import alembic_config
from aggregator.store.migrate import head_revision

FIRST = "0001"
PUBLISHED = datetime(2026, 3, 4, 9, 0)  # naive UTC, as revision 0001 stored times


def migrate_to(url: str, revision: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)
    engine.dispose()


def fill_first_schema(url: str) -> None:
    """Rows as the first release wrote them: two members, a cross-posted story, tags."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO members (id, name, url, tags) VALUES (:id, :name, :url, :tags)"),
            [
                {
                    "id": "ciw",
                    "name": "CIW",
                    "url": "https://ciw.example/",
                    "tags": '["fair-food"]',
                },
                {"id": "wrc", "name": "WRC", "url": "https://wrc.example/", "tags": "[]"},
            ],
        )
        connection.execute(
            text(
                "INSERT INTO sources (id, url, member_id, kind, etag, consecutive_failures) "
                "VALUES (:id, :url, :member, 'feed', :etag, 0)"
            ),
            [
                {"id": 1, "url": "https://ciw.example/feed/", "member": "ciw", "etag": '"a1"'},
                {"id": 2, "url": "https://wrc.example/feed/", "member": "wrc", "etag": None},
            ],
        )
        connection.execute(
            text("INSERT INTO stories (id, uid, published, updated) VALUES (1, :uid, :at, :at)"),
            {"uid": story_uid("https://ciw.example/feed/", "guid:1"), "at": PUBLISHED},
        )
        item = (
            "INSERT INTO items (id, source_id, member_id, story_id, key, url, title, title_key, "
            "content_html, summary, published, updated, date_from_source, first_seen_at, "
            "authors, tags, image, language, content_hash) VALUES (:id, :source, :member, 1, "
            ":key, :url, 'Heat standard signed', 'heat standard signed', '<p>Text</p>', "
            "'Text', :at, :at, :yes, :at, '[]', :tags, NULL, 'en', :hash)"
        )
        connection.execute(
            text(item),
            [
                {
                    "id": 1, "source": 1, "member": "ciw", "key": "guid:1",
                    "url": "https://ciw.example/heat", "at": PUBLISHED, "yes": True,
                    "tags": json.dumps(["Heat Safety", "Campaigns"]), "hash": "h1",
                },
                {
                    "id": 2, "source": 2, "member": "wrc", "key": "guid:9",
                    "url": "https://wrc.example/heat", "at": PUBLISHED, "yes": True,
                    "tags": json.dumps(["heat-safety"]), "hash": "h2",
                },
            ],
        )  # fmt: skip
    engine.dispose()


def count(url: str, table: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        number = connection.scalar(select(func.count()).select_from(text(table)))
    engine.dispose()
    return int(number or 0)


def test_a_new_database_is_created_at_the_newest_revision(database_url: str) -> None:
    Store.open(database_url).close()
    state = schema_state(database_url)
    assert state.current == head_revision() and state.up_to_date


def test_the_migrations_build_exactly_the_schema_the_code_uses(database_url: str) -> None:
    Store.open(database_url).close()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    engine.dispose()
    assert differences == []


def test_an_old_database_with_data_is_upgraded_and_loses_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate_to(database_url, FIRST)
    fill_first_schema(database_url)
    assert schema_state(database_url).current == FIRST

    code = main(["--database", database_url, "db", "upgrade"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"now at revision {head_revision()} (was {FIRST})" in out

    assert count(database_url, "items") == 2
    assert count(database_url, "stories") == 1
    assert count(database_url, "members") == 2
    # The new item_tags table was filled from what the items already carried.
    assert count(database_url, "item_tags") == 3
    store = Store.open(database_url)
    try:
        [story] = store.latest_stories(10)
        assert story.title == "Heat standard signed"
        assert [credit.member_id for credit in story.credits] == ["ciw", "wrc"]
        assert story.published == PUBLISHED.replace(tzinfo=UTC)
        assert [s.id for s in store.latest_stories(10, tag="heat-safety")] == [story.id]
        assert store.source_state("https://ciw.example/feed/").validators.etag == '"a1"'
    finally:
        store.close()

    code = main(["--database", database_url, "db", "upgrade"])
    assert code == 0
    assert "already at schema revision" in capsys.readouterr().out


def test_other_commands_upgrade_on_their_own_and_say_so(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrate_to(database_url, FIRST)
    fill_first_schema(database_url)
    with caplog.at_level("WARNING"):
        Store.open(database_url).close()
    assert f"upgrading the database schema from revision {FIRST}" in caplog.text
    assert schema_state(database_url).up_to_date


def test_a_web_replica_refuses_an_old_database_instead_of_migrating(database_url: str) -> None:
    migrate_to(database_url, FIRST)
    with pytest.raises(StorageError, match="run `aggregator db upgrade` first"):
        Store.open(database_url, upgrade=False)
    assert schema_state(database_url).current == FIRST


def test_the_revisions_read_from_file_names_are_alembics() -> None:
    # migrate.py reads the revisions from the files' names so that opening an up-to-date
    # database needs no Alembic: that must stay exactly what Alembic itself reads.
    from alembic.script import ScriptDirectory

    from aggregator.store.migrate import known_revisions

    script = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == script.get_current_head()
    assert known_revisions() == {revision.revision for revision in script.walk_revisions()}


def test_opening_an_up_to_date_database_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store.open(url).close()
    program = (
        "import sys\n"
        "from aggregator.store import Store\n"
        f"Store.open({url!r}).close()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'alembic'))\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "[]", shown.stdout
