"""The inverted index of story terms and the document frequencies behind IDF weights.

story_terms holds, per (term, story), the summed weight of the term over the story's article
vectors and when an article last added to it; rows "h:<name>" count how many of the story's
articles have <name> as an actor (not part of the vector). term_stats counts, per term, the
articles that used it, plus one row (DOCUMENTS) counting all articles.

Look-ups never scan all stories: candidates come from the postings of the article's own
terms, read through the (term, last_seen) index — recent postings for active stories, the
newest few older postings of the article's rarest terms for dormant ones. Their cost follows
how many stories were active in the quiet period, not how many were ever stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import cache, lru_cache
from typing import NamedTuple

from sqlalchemy import Insert, Update, bindparam, func, insert, literal_column, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from monitor.stories import ACTOR, CORE_SHARE, REVIVE, SAME_STORY, Candidate, Profile, query_terms
from storage.models import ACTOR_ROWS, Story, StoryTerm, TermStat

DOCUMENTS = "#documents"  # term_stats row that counts articles (no term starts with "#")
CANDIDATES = 20  # active stories considered per article: those sharing the most terms
REVIVAL_TERMS = 5  # the first of the article's look-up terms (its rarest) used for dormant stories …
REVIVAL_POSTINGS = 10  # … reading at most this many older postings of each
_UPSERT = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def document_frequencies(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    dfs = dict(session.connection().execute(_DFS, {"terms": [*terms, DOCUMENTS]}).all())
    return dfs, dfs.pop(DOCUMENTS, 0)


def count_document(session: Session, terms: list[str]) -> None:
    """One more article uses each of `terms`: one upsert, safe with several writers."""
    # In term order: two PostgreSQL workers upserting shared rows take their locks in the same
    # order, so they wait for each other instead of deadlocking.
    ordered = sorted({*terms, DOCUMENTS})
    connection = session.connection()
    sql, positional = _count_terms_sql(connection.dialect)
    # The driver's own executemany of a statement compiled once: an article has a hundred or
    # more terms, and SQLAlchemy's per-row parameter handling cost more than the upserts.
    connection.exec_driver_sql(sql, [(t,) for t in ordered] if positional else [{"term": t} for t in ordered])


@lru_cache(maxsize=8)  # by dialect object: one per engine
def _count_terms_sql(dialect) -> tuple[str, bool]:
    """count_terms as the driver's SQL, and whether it takes positional parameters."""
    compiled = _statements(dialect.name).count_terms.compile(dialect=dialect)
    return str(compiled), compiled.positiontup is not None


# The look-ups below run for every article: built once, with parameters, and run through the
# connection (Core rows, no ORM), so an article pays for the query and not for building it.
_TERMS = bindparam("terms", expanding=True)
_STORIES = bindparam("stories", expanding=True)
_SINCE = bindparam("since", type_=StoryTerm.last_seen.type)
_DFS = select(TermStat.term, TermStat.df).where(TermStat.term.in_(_TERMS))
_ACTIVE = (
    select(StoryTerm.story_id)
    .where(StoryTerm.term.in_(_TERMS), StoryTerm.last_seen >= _SINCE)
    .group_by(StoryTerm.story_id)
    .order_by(func.count().desc(), StoryTerm.story_id.desc())
    .limit(CANDIDATES)
)
_STORY_ROWS = select(Story.id, Story.term_mass, Story.article_count, Story.last_seen, Story.latest_year) \
    .where(Story.id.in_(_STORIES))
_SHARED = select(StoryTerm.story_id, StoryTerm.term, StoryTerm.weight) \
    .where(StoryTerm.story_id.in_(_STORIES), StoryTerm.term.in_(_TERMS))
_CORE_ACTORS = (
    select(StoryTerm.story_id, StoryTerm.term, StoryTerm.weight)
    .join(Story, Story.id == StoryTerm.story_id)
    .where(StoryTerm.story_id.in_(_STORIES), ACTOR_ROWS,  # the partial index's own condition
           StoryTerm.weight >= Story.article_count * CORE_SHARE)
)


@lru_cache(maxsize=REVIVAL_TERMS)
def _dormant(n_terms: int):
    """The newest older postings of each of n terms, in one statement (a UNION ALL of per-term
    look-ups, each its own range of the (term, last_seen) index)."""
    per_term = [
        select(StoryTerm.story_id, StoryTerm.last_seen)
        .where(StoryTerm.term == bindparam(f"term{i}"), StoryTerm.last_seen < _SINCE)
        .order_by(StoryTerm.last_seen.desc())
        .limit(REVIVAL_POSTINGS)
        .subquery()
        for i in range(n_terms)
    ]
    return union_all(*(select(sub.c.story_id) for sub in per_term))


def candidates(session: Session, profile: Profile, since: datetime) -> list[Candidate]:
    """Stories sharing the article's terms: active since `since`, or dormant but recent in
    the postings of its rarest terms."""
    terms = query_terms(profile)
    if not terms:
        return []
    connection = session.connection()
    active = connection.execute(_ACTIVE, {"terms": terms, "since": since}).scalars().all()
    rarest = terms[:REVIVAL_TERMS]
    dormant = connection.execute(_dormant(len(rarest)),
                                 {"since": since, **{f"term{i}": t for i, t in enumerate(rarest)}}).scalars().all()
    story_ids = list(dict.fromkeys([*active, *dormant]))
    if not story_ids:
        return []

    stories = {row.id: row for row in connection.execute(_STORY_ROWS, {"stories": story_ids})}
    dots: dict[int, float] = dict.fromkeys(story_ids, 0.0)
    known: dict[int, set[str]] = {sid: set() for sid in story_ids}
    has_lead: set[int] = set()
    names: dict[int, set[str]] = {sid: set() for sid in story_ids}
    top: dict[int, tuple[float, str]] = {}
    actor_rows = [ACTOR + name for name in profile.actors]
    for story_id, term, weight in connection.execute(
            _SHARED, {"stories": story_ids, "terms": [*profile.vector, *profile.actors, *actor_rows]}):
        if term in profile.vector:
            part = profile.vector[term] * weight
            dots[story_id] += part
            if part > top.get(story_id, (0.0, ""))[0]:
                top[story_id] = (part, term)
            if term == profile.lead:
                has_lead.add(story_id)
            if term in profile.names:
                names[story_id].add(term)
        known[story_id].add(term.removeprefix(ACTOR))
    found = [
        Candidate(story_id=sid, dot=dots[sid], mass=stories[sid].term_mass or 0.0,
                  articles=stories[sid].article_count or 1, dormant=stories[sid].last_seen < since,
                  known=frozenset(known[sid] & profile.actors),
                  lead_known=profile.lead is None or sid in has_lead, latest=stories[sid].latest_year,
                  shared_names=frozenset(names[sid]), top=top.get(sid, (0.0, None)))
        for sid in story_ids if sid in stories
    ]
    # Core actors (named as actors by at least half a story's articles), read only for the
    # stories similar enough to be chosen: it means reading the story's rows.
    close = [c.story_id for c in found if c.cosine >= (REVIVE if c.dormant else SAME_STORY)]
    if not close:
        return found
    actors: dict[int, dict[str, float]] = {sid: {} for sid in close}
    for story_id, term, weight in connection.execute(_CORE_ACTORS, {"stories": close}):
        actors[story_id][term.removeprefix(ACTOR)] = weight
    return [replace(c, actors=actors[c.story_id]) if c.story_id in actors else c for c in found]


def new_story(session: Session, title: str, published: datetime) -> int:
    """A story for an article that joins none (its vector comes with add_to_story)."""
    return session.connection().execute(_NEW_STORY, {"title": title, "first_seen": published,
                                                     "last_seen": published}).scalar_one()


def add_to_story(session: Session, story_id: int, profile: Profile, published: datetime) -> str:
    """Add an article to its story: its vector (and actors) to the story's terms, one to the
    story's count, its date to the story's span, the latest year it wrote; the story's title.

    Two statements, whatever the article: an upsert that adds the weights in SQL (so two
    writers cannot lose each other's update) and returns the new ones, from which the change
    of the squared norm follows; then one UPDATE of the story row, also relative."""
    actor_rows = {ACTOR + name for name in profile.actors}
    wanted = {**profile.vector, **dict.fromkeys(actor_rows, 1.0)}
    dialect = session.get_bind().dialect.name
    statements = _statements(dialect)
    connection = session.connection()
    rows = [{"term": term, "story_id": story_id, "weight": wanted[term], "last_seen": published}
            for term in sorted(wanted)]  # in term order, as count_document, for the same reason
    delta = 0.0
    for term, new in connection.execute(statements.add_terms, rows):
        if term not in actor_rows:
            added = wanted[term]
            delta += new * new - (new - added) ** 2  # (old + w)² − old², old = new − w
    return connection.execute(statements.update_story, {
        "story": story_id, "published": published, "delta": delta, "latest": profile.latest,
    }).scalar_one()


class _Statements(NamedTuple):
    count_terms: Insert
    add_terms: Insert
    update_story: Update


@cache
def _statements(dialect: str) -> _Statements:
    """The writes of add_to_story and count_document, in the dialect's own upsert and its own
    two-argument min and max (SQLite's min/max with two arguments; PostgreSQL's LEAST and
    GREATEST)."""
    if dialect not in _UPSERT:
        raise RuntimeError(f"newsmon stores to SQLite or PostgreSQL, not {dialect}")
    least, greatest = (func.least, func.greatest) if dialect == "postgresql" else (func.min, func.max)
    terms, stats, story = StoryTerm.__table__, TermStat.__table__, Story.__table__
    count = _UPSERT[dialect](stats).values(term=bindparam("term"), df=literal_column("1"))
    count = count.on_conflict_do_update(index_elements=["term"], set_={"df": stats.c.df + literal_column("1")})
    add = _UPSERT[dialect](terms)
    add = add.on_conflict_do_update(
        index_elements=["term", "story_id"],
        set_={"weight": terms.c.weight + add.excluded.weight,
              "last_seen": greatest(terms.c.last_seen, add.excluded.last_seen)},
    ).returning(terms.c.term, terms.c.weight)
    published = bindparam("published", type_=story.c.first_seen.type)
    latest = bindparam("latest", type_=story.c.latest_year.type)
    update_story = (
        update(story)
        .where(story.c.id == bindparam("story"))
        .values(article_count=story.c.article_count + 1,
                first_seen=least(story.c.first_seen, published),
                last_seen=greatest(story.c.last_seen, published),
                term_mass=func.coalesce(story.c.term_mass, 0.0) + bindparam("delta"),
                # NULL-safe: SQLite's max(a, NULL) is NULL; PostgreSQL's GREATEST skips NULLs.
                latest_year=greatest(func.coalesce(story.c.latest_year, latest),
                                     func.coalesce(latest, story.c.latest_year)))
        .returning(story.c.title)
    )
    return _Statements(count, add, update_story)


_NEW_STORY = insert(Story.__table__).values(
    title=bindparam("title"), first_seen=bindparam("first_seen"), last_seen=bindparam("last_seen"),
    article_count=0, term_mass=0.0, status="active",
).returning(Story.__table__.c.id)
