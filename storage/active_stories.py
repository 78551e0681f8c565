"""The active stories' index rows, kept in the process.

Every article looks its candidate stories up among those active in the quiet period: which
share its rarest terms (the postings of ten terms), their
rows, their weights for its vector's terms, their core actors. Four look-ups of scattered
rows of the two largest tables, whose cost grew with the history as their B-trees outgrew
SQLite's page cache. The active stories are few (those an article joined within the quiet
period) and the same from one article to the next, so their rows are read once and kept:
`held(session, since)` holds *every* story whose last article is at or after `since`, with
all its story_terms rows, and `story_index` answers from it what it used to ask the database
(dormant stories are still looked up there, see storage/story_index.py).

Right with other writers as the kept document counts are (storage/document_counts.py):
every writer of the index counts its article in `#documents` in the same transaction, so
what is held is dropped whenever those counts are (another writer counted articles, or a
transaction rolled back). Within a transaction the held rows follow this process's own
writes: `story_index.add_to_story` applies the weights its upsert returns.

Times are compared as the database compares them: as bound values (text on SQLite).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.stories import ACTOR
from storage import document_counts, driver
from storage.models import Story

# How far the look-back may move before stories that fell out of it are let go: evicting is a
# pass over every held story, so not for every article.
EVICT_AFTER = timedelta(days=1)
_CHUNK = 500  # story ids per IN list when loading

_STORIES = ("SELECT id, term_mass, article_count, last_seen, latest_year FROM stories "
            "WHERE last_seen >= ?")
_STORIES_BEFORE = _STORIES + " AND last_seen < ?"
_TERMS = "SELECT story_id, term, weight, last_seen FROM story_terms WHERE story_id IN [?]"


@dataclass
class HeldStory:
    """A story's row and all its story_terms rows, as the database has them."""

    mass: float
    articles: int
    last_seen: Any  # as bound (text on SQLite)
    latest_year: int | None
    terms: dict[str, list] = field(default_factory=dict)  # term → [weight, last_seen]
    actors: dict[str, float] = field(default_factory=dict)  # the "h:" rows: name → weight


class Held:
    """Every story whose last article is at or after `floor`, and which of them use a term."""

    def __init__(self) -> None:
        self.generation = -1
        self.floor: datetime | None = None
        self.stories: dict[int, HeldStory] = {}
        self.by_term: dict[str, set[int]] = {}

    def clear(self, generation: int) -> None:
        self.generation = generation
        self.floor = None
        self.stories.clear()
        self.by_term.clear()

    def active(self, terms: list[str], since: Any, limit: int) -> list[int]:
        """The `limit` stories with the most of `terms` used since `since` (bound), most
        first, newest first among equals (as a GROUP BY story ORDER BY count would)."""
        counts: Counter[int] = Counter()
        for term in terms:
            for story_id in self.by_term.get(term, ()):
                if self.stories[story_id].terms[term][1] >= since:
                    counts[story_id] += 1
        return sorted(counts, key=lambda story_id: (-counts[story_id], -story_id))[:limit]

    def add(self, story_id: int, story: HeldStory) -> None:
        self.stories[story_id] = story
        for term in story.terms:
            self.by_term.setdefault(term, set()).add(story_id)

    def apply(self, story_id: int, weights: list[tuple[str, float]], published: Any, latest: int | None,
              delta: float) -> None:
        """An article added to a held story: the new weights of its rows (as the upsert
        returned them), and the story row's update, as `story_index._update_story` makes it."""
        story = self.stories[story_id]
        for term, weight in weights:
            row = story.terms.get(term)
            if row is None:
                story.terms[term] = [weight, published]
                self.by_term.setdefault(term, set()).add(story_id)
            else:
                row[0], row[1] = weight, max(row[1], published)
            if term.startswith(ACTOR):
                story.actors[term.removeprefix(ACTOR)] = weight
        story.articles += 1
        story.mass += delta
        story.last_seen = max(story.last_seen, published)
        if latest is not None and (story.latest_year is None or latest > story.latest_year):
            story.latest_year = latest

    def evict(self, before: Any) -> None:
        for story_id in [s for s, story in self.stories.items() if story.last_seen < before]:
            for term in self.stories.pop(story_id).terms:
                having = self.by_term[term]
                having.discard(story_id)
                if not having:
                    del self.by_term[term]


_HELD: WeakKeyDictionary[Engine, Held] = WeakKeyDictionary()


def held(session: Session, since: datetime) -> Held:
    """What is held, right for this transaction and holding every story active since `since`."""
    connection = session.connection()
    generation = document_counts.generation(session)
    kept = _HELD.setdefault(connection.engine, Held())
    if kept.generation != generation:
        kept.clear(generation)
    column = Story.__table__.c.last_seen
    if kept.floor is None or since < kept.floor:
        # Stories not held yet: all of them the first time, those between an earlier `since`
        # and the floor when an article is older than the ones before it.
        bounds = [driver.bound(column, connection.dialect, since)]
        if kept.floor is not None:
            bounds.append(driver.bound(column, connection.dialect, kept.floor))
        _load(connection, kept, driver.query(connection, _STORIES_BEFORE if kept.floor else _STORIES, bounds))
        kept.floor = since
    elif since - kept.floor >= EVICT_AFTER:
        kept.evict(driver.bound(column, connection.dialect, since))
        kept.floor = since
    return kept


def _load(connection, kept: Held, rows: list[tuple]) -> None:
    stories = {row[0]: HeldStory(mass=row[1] or 0.0, articles=row[2] or 0, last_seen=row[3], latest_year=row[4])
               for row in rows}
    for story_id, term, weight, last_seen in driver.query_each(connection, _TERMS, list(stories), _CHUNK):
        story = stories[story_id]
        story.terms[term] = [weight, last_seen]
        if term.startswith(ACTOR):
            story.actors[term.removeprefix(ACTOR)] = weight
    for story_id, story in stories.items():
        kept.add(story_id, story)


def _current(session: Session) -> Held | None:
    """What is held for the session's database, if anything is and it is right for this
    transaction."""
    kept = _HELD.get(session.connection().engine)
    return kept if kept is not None and kept.generation == document_counts.generation(session) else None


def new_story(session: Session, story_id: int, published: datetime) -> None:
    """A story this process just opened, held if it is within the look-back."""
    kept = _current(session)
    if kept is not None and kept.floor is not None and published >= kept.floor:
        published_value = driver.bound(Story.__table__.c.last_seen, session.connection().dialect, published)
        kept.add(story_id, HeldStory(mass=0.0, articles=0, last_seen=published_value, latest_year=None))


def holding(session: Session, story_id: int) -> Held | None:
    """What is held, if it holds the story and is right for this transaction."""
    kept = _current(session)
    return kept if kept is not None and story_id in kept.stories else None


def hold_if_active(session: Session, story_id: int) -> None:
    """After a story not held took an article: held from now on if that made it active."""
    kept = _current(session)
    if kept is None or kept.floor is None or story_id in kept.stories:
        return
    connection = session.connection()
    floor = driver.bound(Story.__table__.c.last_seen, connection.dialect, kept.floor)
    _load(connection, kept, driver.query(connection, _STORIES + " AND id = ?", [floor, story_id]))
