"""The pipeline's hot writes go to the driver directly (storage/driver.py): what they store
must be exactly what SQLAlchemy Core stores, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from storage import driver, story_index
from storage import models as m

BERLIN = timezone(timedelta(hours=1))


def _story_and_article(session) -> tuple[int, int]:
    connection = session.connection()
    feed = connection.execute(insert(m.Feed.__table__).returning(m.Feed.__table__.c.id),
                              {"url": "https://driver.example/feed", "kind": "http", "enabled": True,
                               "full_text": False, "from_config": False, "failures": 0, "articles_seen": 0,
                               "down_alerted": False, "created_at": datetime.now(UTC)}).scalar_one()
    story = story_index.new_story(session, "A story", datetime(2025, 2, 21, 9, tzinfo=UTC))
    article = driver.execute(connection, insert(m.Article.__table__).returning(m.Article.__table__.c.id), {
        "feed_id": feed, "guid": "g1", "version": 1, "url": None, "title": "A story", "source": "Outlet",
        "published_at": datetime(2025, 2, 21, 10, 30, 15, 123456, tzinfo=BERLIN),
        "fetched_at": datetime(2025, 2, 21, 9, 31, tzinfo=UTC), "text": "Body.", "content_hash": "h",
        "story_id": story, "revision": {"edit": "cosmetic", "added": ["ü"]},
    })[0][0]
    return story, article


def test_a_row_written_through_the_driver_reads_back_as_through_sqlalchemy(db):
    """Datetimes (aware, in another zone: stored as UTC), JSON and NULLs, each through its own
    processor; the same row inserted through Core is identical, down to the stored text."""
    with db.session() as session:
        story, article = _story_and_article(session)
        row = {"story_id": story, "article_id": article, "kind": "new_fact", "text": "Kyiv got a draft.",
               "score": 0.62, "closest_text": None, "closest_similarity": None,
               "details": {"evidence": [{"text": "“quoted”", "similarity": 0.31}]},
               "published_at": datetime(2025, 2, 21, 10, 30, 15, 123456, tzinfo=BERLIN),
               "detected_at": datetime(2025, 2, 21, 9, 31, tzinfo=UTC)}
        table = m.Development.__table__
        fast = driver.execute(session.connection(), insert(table).returning(table.c.id), row)[0][0]
        core = session.connection().execute(insert(table).returning(table.c.id), row).scalar_one()
    with db.session() as session:
        rows = {d.id: d for d in session.scalars(select(m.Development))}
        for column in ("kind", "text", "score", "closest_text", "closest_similarity", "details", "published_at",
                       "detected_at"):
            assert getattr(rows[fast], column) == getattr(rows[core], column), column
        assert rows[fast].published_at == datetime(2025, 2, 21, 9, 30, 15, 123456, tzinfo=UTC)
        stored = session.execute(text("SELECT CAST(published_at AS TEXT) FROM developments ORDER BY id")).scalars()
        assert len(set(stored)) == 1  # the same stored form, not only the same value read back
        article_row = session.get(m.Article, article)
        assert article_row.revision == {"edit": "cosmetic", "added": ["ü"]}
        assert article_row.url is None


def test_rows_missing_a_column_with_a_python_default_are_refused(db):
    """The driver cannot fill a default SQLAlchemy would have: leaving one out is an error, at
    once, not a NULL (or a NOT NULL failure) later."""
    with db.session() as session, pytest.raises(ValueError, match="detected_at"):
        driver.execute(session.connection(), insert(m.Development.__table__), {
            "story_id": 1, "article_id": 1, "kind": "new_fact", "text": "x", "score": 0.5,
            "closest_text": None, "closest_similarity": None, "details": {},
            "published_at": datetime.now(UTC)})


def test_document_counts_beyond_one_statement(db):
    """An article with more terms than one statement takes parameters is counted in several,
    and every count comes back (the frequencies before it)."""
    terms = [f"term{i:04d}" for i in range(driver.MAX_PARAMETERS * 2 + 5)]
    with db.session() as session:
        assert story_index.count_document(session, terms[:10]) == ({}, 0)
        dfs, documents = story_index.count_document(session, terms)
        assert documents == 1
        assert dfs == {t: 1 for t in terms[:10]}
        again, documents = story_index.count_document(session, [*terms[5:15], "term0005"])
        assert documents == 2
        assert again == {**{t: 2 for t in terms[5:10]}, **{t: 1 for t in terms[10:15]}}
    with db.session() as session:
        stored, documents = story_index.document_frequencies(session, terms)
        assert documents == 3
        assert stored["term0000"] == 2 and stored["term0007"] == 3 and stored[terms[-1]] == 1
        assert len(stored) == len(terms)


def test_a_driver_error_is_sqlalchemys_and_the_transaction_is_the_connections(db):
    """On SQLite the driver's statements bypass SQLAlchemy's execution (storage/driver.py
    `_run`): a constraint violation must still raise SQLAlchemy's IntegrityError, naming the
    statement, and a write on a Connection that has not begun must be committed by its commit
    — not left in a transaction the pool rolls back."""
    sources = m.DevelopmentSource.__table__
    with db.session() as session:
        _, article = _story_and_article(session)
    with db.engine.connect() as connection:
        driver.executemany_sql(connection, "INSERT INTO term_stats (term, df) VALUES (?, ?)", [("kyiv", 1)])
        connection.commit()
    with db.engine.connect() as connection:
        assert driver.query(connection, "SELECT df FROM term_stats WHERE term = ?", ["kyiv"]) == [(1,)]
        with pytest.raises(IntegrityError, match="term_stats"):
            driver.executemany_sql(connection, "INSERT INTO term_stats (term, df) VALUES (?, ?)", [("kyiv", 2)])
        connection.rollback()
        with pytest.raises(IntegrityError, match="development_sources"):  # no such development
            driver.executemany(connection, insert(sources), [
                {"development_id": 999, "article_id": article, "source": "Outlet", "url": None,
                 "added_at": datetime.now(UTC)}])
        connection.rollback()
        assert driver.query(connection, "SELECT count(*) FROM development_sources", []) == [(0,)]
