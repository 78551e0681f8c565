"""Read queries that assemble domain records from several tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.model import DevelopmentView, FeedEventView, SourceRef
from storage.models import Article, Development, DevelopmentSource, FeedEvent, Story


def load_development_views(session: Session, development_ids: Iterable[int]) -> dict[int, DevelopmentView]:
    """id → DevelopmentView for every id that exists; two queries whatever the number of ids."""
    ids = sorted(set(development_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Development, Story.title, Article.source, Article.url, Article.title)
        .join(Story, Story.id == Development.story_id)
        .join(Article, Article.id == Development.article_id)
        .where(Development.id.in_(ids))
    ).all()
    sources: dict[int, list[SourceRef]] = defaultdict(list)
    for ref in session.scalars(
        select(DevelopmentSource)
        .where(DevelopmentSource.development_id.in_(ids))
        # The first report, then corroborations in the order they arrived.
        .order_by(DevelopmentSource.development_id, DevelopmentSource.added_at, DevelopmentSource.article_id)
    ):
        sources[ref.development_id].append(
            SourceRef(source=ref.source, url=ref.url, article_id=ref.article_id)
        )

    return {development.id: development_view(development, story_title, source, article_url, article_title,
                                             tuple(sources[development.id]))
            for development, story_title, source, article_url, article_title in rows}


def development_view(development: Development | SimpleNamespace, story_title: str, source: str,
                     article_url: str | None, article_title: str, sources: tuple[SourceRef, ...]) -> DevelopmentView:
    """The view of a development whose story and article are at hand (the pipeline has them
    in memory when it stores one, and need not read them back): a Development, or the row
    the pipeline just wrote, with the same attributes."""
    return DevelopmentView(
        id=development.id,
        story_id=development.story_id,
        story_title=story_title,
        kind=development.kind,
        text=development.text,
        score=development.score,
        source=source,
        article_id=development.article_id,
        article_url=article_url,
        article_title=article_title,
        published_at=development.published_at,
        detected_at=development.detected_at,
        closest_text=development.closest_text,
        closest_similarity=development.closest_similarity,
        sources=sources,
        details=dict(development.details or {}),
    )


def load_development_view(session: Session, development_id: int) -> DevelopmentView:
    """The development as rules and notifiers see it; LookupError if there is no such development."""
    view = load_development_views(session, [development_id]).get(development_id)
    if view is None:
        raise LookupError(f"no development with id {development_id}")
    return view


def feed_event_view(event: FeedEvent) -> FeedEventView:
    return FeedEventView(id=event.id, kind=event.kind, feed_id=event.feed_id, feed_url=event.feed_url,
                         feed_title=event.feed_title, error=event.error, failures=event.failures,
                         failing_since=event.failing_since, detected_at=event.detected_at)
