"""Plain records that flow between the pipeline's stages.

The deciding stages (normalise, stories, developments, rules) are pure functions
over these; only the pipeline, the daemon and the CLI touch storage and the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class Kind:
    """Development kinds, as they appear in JSON and in rule files."""

    NEW_STORY = "new_story"
    NEW_FACT = "new_fact"
    CHANGED_FIGURE = "changed_figure"
    NEW_DATE = "new_date"
    REVISION = "revision"
    ALL = (NEW_STORY, NEW_FACT, CHANGED_FIGURE, NEW_DATE, REVISION)
    # Feed health: not developments, but rules select them by kind all the same.
    FEED_DOWN = "feed_down"
    FEED_RECOVERED = "feed_recovered"
    FEED_HEALTH = (FEED_DOWN, FEED_RECOVERED)


@dataclass(frozen=True)
class RawEntry:
    """One entry as a fetcher found it, before any cleaning."""

    guid: str
    body: str
    body_is_html: bool = False
    url: str | None = None
    title: str | None = None
    source: str | None = None
    published_at: datetime | None = None
    # The main text of the entry's web page (full-text feeds, monitor/fetch/article.py). It
    # becomes the article's text; the content hash stays that of the entry as the feed sent it,
    # so an unchanged entry stays unchanged and its page is never fetched again.
    page_text: str | None = None
    # The digest of the entry's element in the document (fetch/parse.py `entry_digests`), when
    # the parser could tell which element the entry came from: a full-text poll that defers the
    # entry leaves that digest out of the ones it remembers, so the next poll parses it again.
    digest: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Article:
    """A normalised report: what the later stages read."""

    guid: str
    url: str | None
    title: str
    source: str
    published_at: datetime
    text: str
    sentences: tuple[str, ...]
    content_hash: str


@dataclass(frozen=True)
class Claim:
    """A sentence of an article, with what matching needs to know about it."""

    text: str
    norm: str  # canonical tokens joined by spaces: aliases, numbers and dates unified
    terms: frozenset[str]  # content terms (stems, entities, numbers, dates)
    entities: frozenset[str]
    numbers: frozenset[str]
    dates: frozenset[str]
    factual: bool  # carries a fact: an actor doing something, a number or a date
    salience: float  # 0..1, from what it carries
    figures: tuple[tuple[str, str], ...] = ()  # (number token, the word it counts: "dead", "usd")


@dataclass(frozen=True)
class KnownClaim:
    """A claim the story already holds (from an earlier article)."""

    id: int
    text: str
    norm: str
    source: str
    development_id: int | None = None


@dataclass
class Finding:
    """A development the diff stage decided on, before it is stored."""

    kind: str
    text: str
    score: float
    claim_positions: list[int] = field(default_factory=list)  # which sentences of the article support it
    closest_text: str | None = None
    closest_similarity: float | None = None
    closest_claim_id: int | None = None
    corroborates: int | None = None  # id of an existing development this repeats
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SourceRef:
    source: str
    url: str | None
    article_id: int


@dataclass(frozen=True)
class DevelopmentView:
    """A stored development as rules, notifiers, the CLI and the JSON output see it.

    `to_json()` is the documented, stable JSON shape (docs/json.md).
    """

    id: int
    story_id: int
    story_title: str
    kind: str
    text: str
    score: float
    source: str
    article_id: int
    article_url: str | None
    article_title: str
    published_at: datetime
    detected_at: datetime
    closest_text: str | None
    closest_similarity: float | None
    sources: tuple[SourceRef, ...] = ()
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "story_id": self.story_id,
            "story_title": self.story_title,
            "kind": self.kind,
            "text": self.text,
            "score": round(self.score, 3),
            "source": self.source,
            "article_id": self.article_id,
            "article_url": self.article_url,
            "article_title": self.article_title,
            "published_at": self.published_at.isoformat(),
            "detected_at": self.detected_at.isoformat(),
            "closest_earlier": None
            if self.closest_text is None
            else {"text": self.closest_text, "similarity": round(self.closest_similarity or 0.0, 3)},
            "sources": [{"source": s.source, "url": s.url, "article_id": s.article_id} for s in self.sources],
            "details": self.details,
        }


@dataclass(frozen=True)
class FeedEventView:
    """A feed going down or recovering, as rules, notifiers and the JSON output see it."""

    id: int
    kind: str  # Kind.FEED_DOWN | Kind.FEED_RECOVERED
    feed_id: int
    feed_url: str
    feed_title: str | None
    error: str | None
    failures: int
    failing_since: datetime | None
    detected_at: datetime

    @property
    def text(self) -> str:
        """One sentence for people, and what rule keywords are matched against."""
        name = self.feed_title or self.feed_url
        if self.kind == Kind.FEED_RECOVERED:
            return f"Feed {name} recovered after {self.failures} failed poll(s) (last error: {self.error})"
        since = f" since {self.failing_since:%Y-%m-%d %H:%M} UTC" if self.failing_since else ""
        return f"Feed {name} is down{since}: {self.error} ({self.failures} failed poll(s))"

    def to_json(self) -> dict:
        return {
            "event_id": self.id,
            "kind": self.kind,
            "feed_id": self.feed_id,
            "feed_url": self.feed_url,
            "feed_title": self.feed_title,
            "text": self.text,
            "error": self.error,
            "failures": self.failures,
            "failing_since": self.failing_since.isoformat() if self.failing_since else None,
            "detected_at": self.detected_at.isoformat(),
        }
