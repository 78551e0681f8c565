"""The inverted index of story terms and the document frequencies behind IDF weights."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.stories import Candidate
from storage.models import Story, StoryTerm, TermStat

DOCUMENTS = "#documents"  # term_stats row that counts articles (no term starts with "#")


def document_frequencies(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    rows = session.execute(select(TermStat.term, TermStat.df).where(TermStat.term.in_([*terms, DOCUMENTS])))
    dfs = dict(rows.all())
    return dfs, dfs.pop(DOCUMENTS, 0)


def count_document(session: Session, terms: list[str]) -> None:
    existing = {t.term: t for t in session.scalars(select(TermStat).where(TermStat.term.in_([*terms, DOCUMENTS])))}
    for term in [*terms, DOCUMENTS]:
        row = existing.get(term)
        if row is None:
            session.add(TermStat(term=term, df=1))
        else:
            row.df += 1


def candidates(session: Session, vec: dict[str, float], terms: list[str], since: datetime,
               limit: int = 20) -> list[Candidate]:
    """Stories active since `since` that share the article's strongest terms."""
    if not terms:
        return []
    hits = session.execute(
        select(StoryTerm.story_id, func.count())
        .where(StoryTerm.term.in_(terms), StoryTerm.last_seen >= since)
        .group_by(StoryTerm.story_id)
        .order_by(func.count().desc())
        .limit(limit)
    ).all()
    story_ids = [story_id for story_id, _ in hits]
    if not story_ids:
        return []
    dots: dict[int, float] = dict.fromkeys(story_ids, 0.0)
    for story_id, term, weight in session.execute(
        select(StoryTerm.story_id, StoryTerm.term, StoryTerm.weight)
        .where(StoryTerm.story_id.in_(story_ids), StoryTerm.term.in_(list(vec)))
    ):
        dots[story_id] += vec[term] * weight
    masses = dict(session.execute(select(Story.id, Story.term_mass).where(Story.id.in_(story_ids))).all())
    return [Candidate(sid, dots[sid], masses.get(sid, 0.0)) for sid in story_ids]


def add_to_story(session: Session, story: Story, vec: dict[str, float], seen: datetime) -> None:
    """Add an article's vector to its story's, keeping the story's squared norm exact."""
    rows = {r.term: r for r in session.scalars(
        select(StoryTerm).where(StoryTerm.story_id == story.id, StoryTerm.term.in_(list(vec))))}
    mass = story.term_mass or 0.0
    for term, weight in vec.items():
        row = rows.get(term)
        if row is None:
            session.add(StoryTerm(term=term, story_id=story.id, weight=weight, last_seen=seen))
            mass += weight * weight
        else:
            mass += (row.weight + weight) ** 2 - row.weight ** 2
            row.weight += weight
            row.last_seen = max(row.last_seen, seen)
    story.term_mass = mass
