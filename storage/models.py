"""Tables. One class per kind of record; no behaviour beyond columns and keys."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, orm_insert_sentinel


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)  # http(s) URL or directory path
    kind: Mapped[str] = mapped_column(String(16))  # "http" | "directory"
    title: Mapped[str | None] = mapped_column(String(512))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    full_text: Mapped[bool] = mapped_column(Boolean, default=False)
    from_config: Mapped[bool] = mapped_column(Boolean, default=False)
    interval_seconds: Mapped[int | None] = mapped_column(Integer)  # None: the configured default
    etag: Mapped[str | None] = mapped_column(String(512))
    last_modified: Mapped[str | None] = mapped_column(String(128))
    body_hash: Mapped[str | None] = mapped_column(String(64))
    # Space-separated digests of the entries of the last poll that are stored (fetch/parse.py):
    # the next poll leaves those entries unparsed. Empty: parse everything.
    entry_digests: Mapped[str | None] = mapped_column(Text)
    # Summary-only entries of a full-text feed that wait for their article pages (a later poll).
    pages_waiting: Mapped[int | None] = mapped_column(Integer)
    ttl_seconds: Mapped[int | None] = mapped_column(Integer)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    articles_seen: Mapped[int] = mapped_column(Integer, default=0)
    # Median gap between the feed's recent entries: how often it publishes (adaptive polling).
    entry_gap_seconds: Mapped[int | None] = mapped_column(Integer)
    # A feed_down event was raised for the current outage; a success then raises feed_recovered.
    down_alerted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_feeds_due", "enabled", "next_poll_at"),)


class FeedEvent(Base):
    """A change in a feed's health (`feed_down`, `feed_recovered`): what feed-health alerts carry.

    The feed's URL and title are copied: the event reads the same after the feed moves or goes.
    """

    __tablename__ = "feed_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    feed_url: Mapped[str] = mapped_column(String(2048))
    feed_title: Mapped[str | None] = mapped_column(String(512))
    error: Mapped[str | None] = mapped_column(Text)  # the last error (feed_down) or the one it recovered from
    failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)  # earliest published_at
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # latest published_at
    status: Mapped[str] = mapped_column(String(16), default="active")
    article_count: Mapped[int] = mapped_column(Integer, default=0)
    term_mass: Mapped[float] = mapped_column(Float, default=0.0)  # sum of squared term weights (cosine norm)
    latest_year: Mapped[int | None] = mapped_column(Integer, nullable=True)  # newest year its articles wrote


# The rows of story_terms that count actors ("h:<name>", monitor/stories.py ACTOR), as a
# literal: a partial index is used only by queries that repeat its condition word for word.
ACTOR_ROWS = text("term LIKE 'h:%'")


class StoryTerm(Base):
    """Inverted index: which stories use a term, with the term's accumulated weight."""

    __tablename__ = "story_terms"

    term: Mapped[str] = mapped_column(String(128), primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True)
    weight: Mapped[float] = mapped_column(Float, default=0.0)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_story_terms_story", "story_id"),
        # Only the actor rows: a story's core actors are read without its thousands of terms.
        Index("ix_story_terms_actors", "story_id", sqlite_where=ACTOR_ROWS, postgresql_where=ACTOR_ROWS),
    )


class TermStat(Base):
    """Document frequency of each term over all articles, for IDF weights."""

    __tablename__ = "term_stats"

    term: Mapped[str] = mapped_column(String(128), primary_key=True)
    df: Mapped[int] = mapped_column(Integer, default=0)


class Article(Base):
    """One version of one entry. A changed body under the same guid is a new row, version + 1."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    guid: Mapped[str] = mapped_column(String(2048))
    version: Mapped[int] = mapped_column(Integer, default=1)
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(512))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))  # compared with the previous version's, not searched
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), index=True)
    # For version 2+: what changed since the previous version, sentence by sentence, and what
    # kind of edit it was (monitor/revisions.py). Cosmetic edits are recorded here only.
    revision: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("feed_id", "guid", "version", name="uq_article_version"),)


class Claim(Base):
    """A sentence of an article as the story knows it."""

    __tablename__ = "claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    norm: Mapped[str] = mapped_column(Text)
    closest_claim_id: Mapped[int | None] = mapped_column(Integer)
    similarity: Mapped[float | None] = mapped_column(Float)
    development_id: Mapped[int | None] = mapped_column(ForeignKey("developments.id"), index=True)

    # A story's claims in id order: the rows added since a given one (storage/known_claims.py).
    __table_args__ = (Index("ix_claims_story_id_id", "story_id", "id"),)


class Development(Base):
    __tablename__ = "developments"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    closest_text: Mapped[str | None] = mapped_column(Text)
    closest_similarity: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # A row's position among an article's developments, written with them: they are inserted
    # in one statement, whose RETURNING rows come in no promised order, and each new id is
    # matched back to its row by it (monitor/pipeline.py).
    _sentinel: Mapped[int | None] = orm_insert_sentinel()


class DevelopmentSource(Base):
    """Every outlet (article) that reported a development: the first, then corroborations."""

    __tablename__ = "development_sources"

    development_id: Mapped[int] = mapped_column(
        ForeignKey("developments.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(String(2048))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    """The outbox. The unique keys make 'never send twice' a database fact.

    An alert carries exactly one subject: a development, or a feed event (feed health).
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(256))
    development_id: Mapped[int | None] = mapped_column(ForeignKey("developments.id", ondelete="CASCADE"))
    feed_event_id: Mapped[int | None] = mapped_column(ForeignKey("feed_events.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending|sent|failed|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("rule", "development_id", "channel", name="uq_alert_key"),
        UniqueConstraint("rule", "feed_event_id", "channel", name="uq_alert_feed_event_key"),
        CheckConstraint("(development_id IS NULL) <> (feed_event_id IS NULL)", name="ck_alert_one_subject"),
    )
