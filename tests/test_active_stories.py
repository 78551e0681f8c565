"""The active stories' index rows kept in the process (storage/active_stories.py): always what
the database holds, whatever this process, another one or a rollback did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.stories import Profile
from storage import active_stories, story_index
from storage.db import Database

NOW = datetime(2026, 3, 1, tzinfo=UTC)
QUIET = timedelta(days=7)


def _profile(vector: dict[str, float], actors=(), latest=None) -> Profile:
    return Profile(vector=vector, terms=frozenset(vector), actors=frozenset(actors), latest=latest)


def _article(session, profile: Profile, published: datetime, story_id: int | None = None) -> int:
    """What process_entry does with an article's index rows: count it, look its stories up,
    open one or join the one given."""
    story_index.count_document(session, list(profile.terms))
    story_index.candidates(session, profile, published - QUIET)
    if story_id is None:
        story_id = story_index.new_story(session, "t", published)
    story_index.add_to_story(session, story_id, profile, published)
    return story_id


def _held(db: Database, since: datetime) -> dict:
    with db.session() as session:
        held = active_stories.held(session, since)
        return {sid: (s.mass, s.articles, s.last_seen, s.latest_year,
                      {t: tuple(row) for t, row in s.terms.items()}, dict(s.actors))
                for sid, s in held.stories.items()}


def _read_afresh(db: Database, since: datetime) -> dict:
    """What a process that starts now holds: read from the database."""
    other = Database(db.engine.url.render_as_string(hide_password=False))
    try:
        return _held(other, since)
    finally:
        other.dispose()


def _candidates(db: Database, profile: Profile, since: datetime) -> list:
    with db.session() as session:
        return story_index.candidates(session, profile, since)


QUAKE = _profile({"sulawesi": 0.8, "poso": 0.5, "quak": 0.33}, actors={"sulawesi"}, latest=2026)
QUAKE_LATER = _profile({"sulawesi": 0.7, "poso": 0.4, "toll": 0.6}, actors={"sulawesi", "poso"}, latest=2025)
STRIKE = _profile({"harbour": 0.8, "strike": 0.6})
STRIKE_LATER = _profile({"harbour": 0.6, "strike": 0.5, "wage": 0.62})


def test_what_is_held_is_what_a_fresh_read_of_the_database_gives(db):
    with db.session() as session:  # a story from before the look-back, not held …
        old = _article(session, QUAKE, NOW - timedelta(days=30))
    with db.session() as session:
        strike = _article(session, STRIKE, NOW - timedelta(days=2))
        _article(session, STRIKE_LATER, NOW - timedelta(days=1), strike)
        _article(session, QUAKE_LATER, NOW, old)  # … until an article revives it
    with db.session() as session:  # an article older than the ones before it
        _article(session, STRIKE, NOW - timedelta(days=3), strike)
    since = NOW - timedelta(days=3) - QUIET
    held = _held(db, since)
    assert set(held) == {old, strike}
    assert held == _read_afresh(db, since)
    mass, articles, _seen, latest, terms, actors = held[old]
    assert articles == 2 and latest == 2026 and actors == {"sulawesi": 2.0, "poso": 1.0}
    assert terms["sulawesi"][0] == pytest.approx(1.5) and mass == pytest.approx(
        sum(row[0] ** 2 for term, row in terms.items() if not term.startswith("h:")))


def test_the_candidates_found_in_the_process_are_those_a_fresh_process_finds(db):
    with db.session() as session:
        old = _article(session, QUAKE, NOW - timedelta(days=30))
        strike = _article(session, STRIKE, NOW - timedelta(days=2))
        _article(session, STRIKE_LATER, NOW - timedelta(days=1), strike)
    since = NOW - QUIET
    for profile in (QUAKE_LATER, STRIKE_LATER, _profile({"strike": 0.7, "sulawesi": 0.7}, actors={"sulawesi"})):
        here = _candidates(db, profile, since)
        other = Database(db.engine.url.render_as_string(hide_password=False))
        try:
            assert here == _candidates(other, profile, since)
        finally:
            other.dispose()
    assert [(c.story_id, c.dormant) for c in _candidates(db, QUAKE_LATER, since)] == [(old, True)]


def test_an_article_another_writer_stored_is_seen(db):
    with db.session() as session:
        strike = _article(session, STRIKE, NOW - timedelta(days=2))
    since = NOW - QUIET
    before = _held(db, since)[strike]
    other = Database(db.engine.url.render_as_string(hide_password=False))
    try:
        with other.session() as session:
            _article(session, STRIKE_LATER, NOW - timedelta(days=1), strike)
    finally:
        other.dispose()
    after = _held(db, since)[strike]
    assert after != before and after[1] == 2 and "wage" in after[4]
    [found] = _candidates(db, STRIKE_LATER, since)
    assert found.articles == 2 and found.cosine > 0.9


def test_a_rolled_back_article_is_forgotten(db):
    with db.session() as session:
        strike = _article(session, STRIKE, NOW - timedelta(days=2))
    since = NOW - QUIET
    before = _held(db, since)
    with pytest.raises(RuntimeError), db.session() as session:
        _article(session, STRIKE_LATER, NOW - timedelta(days=1), strike)
        raise RuntimeError("the entry failed after its index rows")
    assert _held(db, since) == before == _read_afresh(db, since)


def test_stories_that_fell_out_of_the_look_back_are_let_go_and_found_as_dormant(db):
    with db.session() as session:
        strike = _article(session, STRIKE, NOW - timedelta(days=2))
    assert strike in _held(db, NOW - QUIET)
    later = NOW + timedelta(days=10)
    held = _held(db, later - QUIET)
    assert strike not in held  # let go
    [found] = _candidates(db, STRIKE, later - QUIET)
    assert (found.story_id, found.dormant, found.articles) == (strike, True, 1)
    with db.session() as session:  # revived: held again
        _article(session, STRIKE_LATER, later, strike)
    assert _held(db, later - QUIET) == _read_afresh(db, later - QUIET)


def test_a_held_story_is_scored_as_its_members_say(db):
    """The same figures as stories.as_candidate computes from the articles themselves, for an
    article whose actors are terms of its vector too (each counted once)."""
    from monitor.stories import as_candidate

    with db.session() as session:
        old = _article(session, QUAKE, NOW - timedelta(days=2))
        _article(session, QUAKE_LATER, NOW - timedelta(days=1), old)
    probe = _profile({"sulawesi": 0.6, "poso": 0.6, "toll": 0.52}, actors={"sulawesi", "poso"})
    [found] = _candidates(db, probe, NOW - QUIET)
    expected = as_candidate(old, [QUAKE, QUAKE_LATER], probe)
    assert found.cosine == pytest.approx(expected.cosine) and found.dot == pytest.approx(expected.dot)
    assert (found.articles, found.known, dict(found.actors), found.shared_names, found.top[1]) == (
        expected.articles, expected.known, dict(expected.actors), expected.shared_names, expected.top[1])
