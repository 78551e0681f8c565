"""A story's known claims, kept between articles (storage/known_claims.py): every read must
equal a fresh read of the database, whatever other writers did in between."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert

from monitor.developments import StoryKeys
from storage import known_claims as kc
from storage import models as m
from storage.db import Database

WHEN = datetime(2025, 2, 22, 6, tzinfo=UTC)


def _story(db: Database, outlet: str = "outlet-a", url: str = "https://feeds.example/a") -> tuple[int, int]:
    """A feed with one article in a new story: (story id, article id)."""
    with db.session() as session:
        feed = m.Feed(url=url, kind="http")
        story = m.Story(title="t", first_seen=WHEN, last_seen=WHEN)
        session.add_all([feed, story])
        session.flush()
        article = m.Article(feed_id=feed.id, guid="g", title="t", source=outlet, published_at=WHEN, text="x",
                            content_hash="h", story_id=story.id)
        session.add(article)
        session.commit()
        return story.id, article.id


def _claims(db: Database, story_id: int, article_id: int, sentences: list[str], ids: list[int] | None = None):
    rows = [{"article_id": article_id, "story_id": story_id, "position": i, "text": s, "norm": s.lower()}
            for i, s in enumerate(sentences)]
    if ids is not None:
        rows = [{**row, "id": id_} for row, id_ in zip(rows, ids, strict=True)]
    with db.session() as session:
        session.execute(insert(m.Claim.__table__), rows)
        session.commit()


def _read(db: Database, story_id: int, cache: kc.KnownClaims | None = None) -> list[tuple[int, str, str]]:
    with db.session() as session:
        connection = session.connection()
        known = (cache or kc.KnownClaims()).read(connection, story_id)
    # The index the diff reads is always that of the claims returned, however they were read.
    assert known.keys.postings == StoryKeys(known.claims).postings and known.keys.size == len(known.claims)
    return [(k.id, k.text, k.source) for k in known.claims]


def test_later_reads_fetch_only_the_new_rows_and_equal_a_fresh_read(db):
    story, article = _story(db)
    _claims(db, story, article, ["Talks began in Riyadh.", "Ten delegates attended."])
    cache = kc.KnownClaims()
    assert [t for _, t, _ in _read(db, story, cache)] == ["Talks began in Riyadh.", "Ten delegates attended."]
    assert _read(db, story, cache) == _read(db, story)
    _claims(db, story, article, ["A draft was sent to Kyiv.", "Talks began in Riyadh."])  # a repeat folds
    assert _read(db, story, cache) == _read(db, story)
    assert [t for _, t, _ in _read(db, story, cache)][-1] == "A draft was sent to Kyiv."
    assert cache.reads == {"afresh": 1, "held": 2, "since": 1}
    assert all(source == "outlet-a" for _, _, source in _read(db, story, cache))


def test_a_row_committed_below_the_newest_id_is_not_missed(db):
    """Another worker's row can commit after a higher id was read (sequences hand out ids
    before commit): the count notices, and the story is read afresh."""
    story, article = _story(db)
    _claims(db, story, article, ["First sentence.", "Third sentence."], ids=[10, 30])
    cache = kc.KnownClaims()
    assert len(_read(db, story, cache)) == 2
    _claims(db, story, article, ["Second sentence, committed late."], ids=[20])
    assert [t for _, t, _ in _read(db, story, cache)] == \
        ["First sentence.", "Second sentence, committed late.", "Third sentence."]
    assert cache.reads["afresh"] == 2


def test_deleted_claims_are_forgotten(db):
    story, article = _story(db)
    _claims(db, story, article, ["Kept for now."])
    cache = kc.KnownClaims()
    assert len(_read(db, story, cache)) == 1
    with db.session() as session:
        session.execute(delete(m.Claim.__table__))
        session.commit()
    assert _read(db, story, cache) == []


def test_a_long_story_keeps_its_latest_distinct_claims(db, monkeypatch):
    monkeypatch.setattr(kc, "MAX_KNOWN_CLAIMS", 3)
    monkeypatch.setattr(kc, "TRIM_SLACK", 1)
    story, article = _story(db)
    cache = kc.KnownClaims()
    _claims(db, story, article, ["One.", "Two."])
    _read(db, story, cache)
    _claims(db, story, article, ["Three.", "Four."])
    assert [t for _, t, _ in _read(db, story, cache)] == ["One.", "Two.", "Three.", "Four."]  # within the slack
    _claims(db, story, article, ["Five."])
    assert [t for _, t, _ in _read(db, story, cache)] == ["Three.", "Four.", "Five."]


def test_the_cache_is_bounded_and_one_per_database(db, tmp_path):
    first, article = _story(db)
    second, other = _story(db, url="https://feeds.example/b")
    _claims(db, first, article, ["A.", "B."])
    _claims(db, second, other, ["C.", "D."])
    cache = kc.KnownClaims(budget=3)
    _read(db, first, cache)
    _read(db, second, cache)  # over budget: the first story goes
    assert _read(db, first, cache) == _read(db, first)
    assert cache.reads["afresh"] == 3

    elsewhere = Database(f"sqlite:///{tmp_path / 'other.db'}")
    elsewhere.upgrade()
    try:
        with db.session() as one, elsewhere.session() as two:
            assert kc.known_claims(one.connection()) is kc.known_claims(one.connection())
            assert kc.known_claims(one.connection()) is not kc.known_claims(two.connection())
    finally:
        elsewhere.dispose()
