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

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from monitor.stories import ACTOR, CORE_SHARE, REVIVE, SAME_STORY, Candidate, Profile, query_terms
from storage.models import Story, StoryTerm, TermStat

DOCUMENTS = "#documents"  # term_stats row that counts articles (no term starts with "#")
CANDIDATES = 20  # active stories considered per article: those sharing the most terms
REVIVAL_TERMS = 5  # the article's strongest terms used to look for dormant stories …
REVIVAL_POSTINGS = 10  # … reading at most this many older postings of each
_UPSERT = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def document_frequencies(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    rows = session.execute(select(TermStat.term, TermStat.df).where(TermStat.term.in_([*terms, DOCUMENTS])))
    dfs = dict(rows.all())
    return dfs, dfs.pop(DOCUMENTS, 0)


def count_document(session: Session, terms: list[str]) -> None:
    """One more article uses each of `terms`: one upsert, safe with several writers."""
    rows = [{"term": term, "df": 1} for term in dict.fromkeys([*terms, DOCUMENTS])]
    dialect = session.get_bind().dialect.name
    if dialect not in _UPSERT:
        _count_document_orm(session, [r["term"] for r in rows])
        return
    statement = _UPSERT[dialect](TermStat.__table__)
    statement = statement.on_conflict_do_update(index_elements=["term"], set_={"df": TermStat.__table__.c.df + 1})
    session.connection().execute(statement, rows)  # Core, not the ORM: one executemany


def _count_document_orm(session: Session, terms: list[str]) -> None:
    existing = {t.term: t for t in session.scalars(select(TermStat).where(TermStat.term.in_(terms)))}
    for term in terms:
        row = existing.get(term)
        if row is None:
            session.add(TermStat(term=term, df=1))
        else:
            row.df += 1


def candidates(session: Session, profile: Profile, since: datetime) -> list[Candidate]:
    """Stories sharing the article's terms: active since `since`, or dormant but recent in
    the postings of its rarest terms."""
    terms = query_terms(profile)
    if not terms:
        return []
    active = [story_id for story_id, _ in session.execute(
        select(StoryTerm.story_id, func.count())
        .where(StoryTerm.term.in_(terms), StoryTerm.last_seen >= since)
        .group_by(StoryTerm.story_id)
        .order_by(func.count().desc(), StoryTerm.story_id.desc())
        .limit(CANDIDATES)
    )]
    dormant: list[int] = []
    for term in terms[:REVIVAL_TERMS]:
        dormant += session.scalars(
            select(StoryTerm.story_id)
            .where(StoryTerm.term == term, StoryTerm.last_seen < since)
            .order_by(StoryTerm.last_seen.desc())
            .limit(REVIVAL_POSTINGS)
        )
    story_ids = list(dict.fromkeys([*active, *dormant]))
    if not story_ids:
        return []

    stories = {row.id: row for row in session.execute(
        select(Story.id, Story.term_mass, Story.article_count, Story.last_seen, Story.latest_year)
        .where(Story.id.in_(story_ids)))}
    dots: dict[int, float] = dict.fromkeys(story_ids, 0.0)
    known: dict[int, set[str]] = {sid: set() for sid in story_ids}
    has_lead: set[int] = set()
    actor_rows = [ACTOR + name for name in profile.actors]
    for story_id, term, weight in session.execute(
        select(StoryTerm.story_id, StoryTerm.term, StoryTerm.weight)
        .where(StoryTerm.story_id.in_(story_ids), StoryTerm.term.in_([*profile.vector, *profile.actors, *actor_rows]))
    ):
        if term in profile.vector:
            dots[story_id] += profile.vector[term] * weight
            if term == profile.lead:
                has_lead.add(story_id)
        known[story_id].add(term.removeprefix(ACTOR))
    found = [
        Candidate(story_id=sid, dot=dots[sid], mass=stories[sid].term_mass or 0.0,
                  articles=stories[sid].article_count or 1, dormant=stories[sid].last_seen < since,
                  known=frozenset(known[sid] & profile.actors),
                  lead_known=profile.lead is None or sid in has_lead, latest=stories[sid].latest_year)
        for sid in story_ids if sid in stories
    ]
    # Core actors (named as actors by at least half a story's articles), read only for the
    # stories similar enough to be chosen: it means reading the story's rows.
    close = [c.story_id for c in found if c.cosine >= (REVIVE if c.dormant else SAME_STORY)]
    if not close:
        return found
    actors: dict[int, dict[str, float]] = {sid: {} for sid in close}
    for story_id, term, weight in session.execute(
        select(StoryTerm.story_id, StoryTerm.term, StoryTerm.weight)
        .join(Story, Story.id == StoryTerm.story_id)
        .where(StoryTerm.story_id.in_(close), StoryTerm.term.startswith(ACTOR, autoescape=True),
               StoryTerm.weight >= Story.article_count * CORE_SHARE)
    ):
        actors[story_id][term.removeprefix(ACTOR)] = weight
    return [replace(c, actors=actors[c.story_id]) if c.story_id in actors else c for c in found]


def add_to_story(session: Session, story: Story, profile: Profile, seen: datetime) -> None:
    """Add an article's vector (and actors, and the latest year it wrote) to its story's,
    keeping the squared norm exact."""
    actor_rows = {ACTOR + name: 1.0 for name in profile.actors}
    wanted = {**profile.vector, **actor_rows}
    rows = {r.term: r for r in session.scalars(
        select(StoryTerm).where(StoryTerm.story_id == story.id, StoryTerm.term.in_(list(wanted))))}
    mass = story.term_mass or 0.0
    for term, weight in wanted.items():
        in_vector = term not in actor_rows
        row = rows.get(term)
        if row is None:
            session.add(StoryTerm(term=term, story_id=story.id, weight=weight, last_seen=seen))
            mass += weight * weight if in_vector else 0.0
        else:
            if in_vector:
                mass += (row.weight + weight) ** 2 - row.weight ** 2
            row.weight += weight
            row.last_seen = max(row.last_seen, seen)
    story.term_mass = mass
    if profile.latest is not None and (story.latest_year is None or profile.latest > story.latest_year):
        story.latest_year = profile.latest
