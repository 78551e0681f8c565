"""Read-only queries behind `newsmon stories|developments|feeds list`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.model import DevelopmentView
from storage.models import Article, Development, Feed, Story
from storage.queries import load_development_views


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def story_json(story: Story, articles: list[Article]) -> dict:
    return {
        "id": story.id,
        "title": story.title,
        "status": story.status,
        "first_seen": _iso(story.first_seen),
        "last_seen": _iso(story.last_seen),
        "article_count": story.article_count,
        "articles": [
            {"id": a.id, "url": a.url, "title": a.title, "source": a.source, "version": a.version,
             "published_at": _iso(a.published_at)}
            for a in articles
        ],
    }


def list_stories(session: Session, limit: int = 50) -> list[dict]:
    stories = list(session.scalars(select(Story).order_by(Story.last_seen.desc(), Story.id.desc()).limit(limit)))
    by_story: dict[int, list[Article]] = {s.id: [] for s in stories}
    for article in session.scalars(
        select(Article).where(Article.story_id.in_(list(by_story))).order_by(Article.published_at, Article.id)
    ):
        by_story[article.story_id].append(article)
    return [story_json(s, by_story[s.id]) for s in stories]


def story_timeline(session: Session, story_id: int) -> dict | None:
    """The story with its articles and developments, each list in publication order."""
    story = session.get(Story, story_id)
    if story is None:
        return None
    articles = list(session.scalars(
        select(Article).where(Article.story_id == story_id).order_by(Article.published_at, Article.id)))
    data = story_json(story, articles)
    data["developments"] = [v.to_json() for v in list_developments(session, story_id=story_id, newest_first=False)]
    return data


def list_developments(session: Session, story_id: int | None = None, since: datetime | None = None,
                      kinds: list[str] | None = None, limit: int = 200,
                      newest_first: bool = True) -> list[DevelopmentView]:
    query = select(Development.id)
    if story_id is not None:
        query = query.where(Development.story_id == story_id)
    if since is not None:
        query = query.where(Development.detected_at >= since)
    if kinds:
        query = query.where(Development.kind.in_(kinds))
    order = (Development.published_at.desc(), Development.id.desc()) if newest_first else \
        (Development.published_at, Development.id)
    ids = list(session.scalars(query.order_by(*order).limit(limit)))
    views = load_development_views(session, ids)
    return [views[i] for i in ids if i in views]


def list_feeds(session: Session) -> list[dict]:
    return [
        {
            "id": f.id, "url": f.url, "kind": f.kind, "title": f.title, "enabled": f.enabled,
            "status": "disabled" if not f.enabled else ("failing" if f.failures else
                                                         ("ok" if f.last_success_at else "new")),
            "interval_seconds": f.interval_seconds, "last_polled_at": _iso(f.last_polled_at),
            "last_success_at": _iso(f.last_success_at), "next_poll_at": _iso(f.next_poll_at),
            "failures": f.failures, "last_error": f.last_error, "articles_seen": f.articles_seen,
            "full_text": f.full_text, "pages_waiting": f.pages_waiting or 0,
        }
        for f in session.scalars(select(Feed).order_by(Feed.id))
    ]
