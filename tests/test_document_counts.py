"""Document frequencies kept in the process (storage/document_counts.py): written by the
commit, forgotten by a rollback, and never stale when another process counts articles."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from storage import story_index
from storage.db import Database


def _stored(db: Database) -> dict[str, int]:
    with db.engine.connect() as connection:
        return dict(connection.execute(text("SELECT term, df FROM term_stats")).all())


def _other(db: Database) -> Database:
    """The same database through another engine: another process, as far as caches go."""
    return Database(db.engine.url.render_as_string(hide_password=False))


def test_counts_are_written_by_the_commit(db):
    with db.session() as session:
        assert story_index.count_document(session, ["quake", "sulawesi"]) == ({}, 0)
        assert story_index.count_document(session, ["quake", "harbour"]) == ({"quake": 1}, 1)
        assert _stored(db) == {}  # not before the commit …
    assert _stored(db) == {"#documents": 2, "quake": 2, "sulawesi": 1, "harbour": 1}  # … all of it at once


def test_a_rolled_back_transaction_counts_nothing_and_is_forgotten(db):
    with db.session() as session:
        story_index.count_document(session, ["quake"])
    with pytest.raises(RuntimeError), db.session() as session:
        story_index.count_document(session, ["quake", "strike"])
        raise RuntimeError("the entry failed after its counts")
    assert _stored(db) == {"#documents": 1, "quake": 1}
    with db.session() as session:  # the process does not remember the rolled-back counts either
        assert story_index.count_document(session, ["quake", "strike"]) == ({"quake": 1}, 1)
    assert _stored(db) == {"#documents": 2, "quake": 2, "strike": 1}


def test_articles_another_writer_counted_are_seen(db):
    with db.session() as session:
        story_index.count_document(session, ["quake", "harbour"])
    other = _other(db)
    try:
        with other.session() as session:
            assert story_index.count_document(session, ["quake"]) == ({"quake": 1}, 1)
    finally:
        other.dispose()
    with db.session() as session:  # this process kept quake at 1 and one article: both are stale now
        assert story_index.count_document(session, ["quake", "harbour"]) == ({"quake": 2, "harbour": 1}, 2)
    assert _stored(db) == {"#documents": 3, "quake": 3, "harbour": 2}
