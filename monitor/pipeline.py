"""One entry through the pipeline: normalise → story → developments → rules → alerts.

This is the one place that ties the pure stages to storage. Each entry is stored in one
transaction together with its claims, developments and pending alerts; delivery happens
after commit, from the outbox, so a crash loses nothing and sends nothing twice. A feed's poll
(fetch, then each entry through here, then the feed's state) is monitor/polling.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import NamedTuple

from sqlalchemy import insert
from sqlalchemy.orm import Session

from monitor import alerts, claims, developments, normalise, revisions, stories
from monitor.config import Settings
from monitor.model import Finding, Kind, KnownClaim, RawEntry, SourceRef
from monitor.rules import RuleSet
from storage import driver, story_index
from storage import models as m
from storage.known_claims import Known, known_claims
from storage.queries import development_view

# A story nobody joined for this long is dormant (the `quiet_period` setting's default).
QUIET_PERIOD = timedelta(seconds=Settings.model_fields["quiet_period"].default)

log = logging.getLogger("newsmon.pipeline")


@dataclass
class EntryOutcome:
    article_id: int | None
    status: str  # "new" | "version" | "unchanged"
    story_id: int | None = None
    developments: list[int] = field(default_factory=list)
    corroborated: list[int] = field(default_factory=list)


# --- one entry -----------------------------------------------------------------------------
def process_entry(session: Session, feed_id: int, raw: RawEntry, ruleset: RuleSet, now: datetime,
                  default_source: str, embedder=None, quiet_period: timedelta = QUIET_PERIOD) -> EntryOutcome:
    article = normalise.normalise(raw, now, default_source=default_source, sentences=False)
    found = driver.query(session.connection(), _PREVIOUS, [feed_id, article.guid])
    previous = _Previous(*found[0]) if found else None
    if previous is not None and previous.content_hash == article.content_hash:
        return EntryOutcome(previous.id, "unchanged", previous.story_id)
    article = replace(article, sentences=normalise.split_sentences(article.text))

    sentence_claims = [claims.analyse(s) for s in article.sentences]
    reading = stories.read(article.title, sentence_claims, until_year=article.published_at.year)
    # Counted now, read as they were before this article: its own IDF weights.
    dfs, documents = story_index.count_document(session, list(reading.counts))
    profile = stories.profile(reading, dfs, documents + 1)

    if previous is not None:
        story_id = previous.story_id
    else:
        found = story_index.candidates(session, profile, article.published_at - quiet_period)
        story_id, _similarity, _why = stories.choose_story(profile, found)
    is_new_story = story_id is None
    if story_id is None:
        story_id = story_index.new_story(session, article.title, article.published_at)

    revision = revisions.compare(previous.title, list(normalise.split_sentences(previous.text)),
                                 article.title, list(article.sentences)) if previous is not None else None
    row = _insert_article(session, {
        "feed_id": feed_id, "guid": article.guid, "version": (previous.version + 1) if previous else 1,
        "url": article.url, "title": article.title, "source": article.source,
        "published_at": article.published_at, "fetched_at": now, "text": article.text,
        "content_hash": article.content_hash, "story_id": story_id,
        "revision": revision.to_json() if revision is not None else None,
    })

    known, keys = ([], None) if is_new_story else _known_claims(session, story_id)
    if revision is None:
        positions = list(range(len(article.sentences)))
        diff = developments.diff_article(sentence_claims, known, article.source, article.title,
                                         _semantic(embedder, list(article.sentences), known), keys)
        dev_rows = _store_findings(session, story_id, row, diff.findings, now)
    else:
        positions, diff, dev_rows = _revise(session, story_id, revision, row, article, sentence_claims, known,
                                            now)
    claim_rows = []
    for slot, position in enumerate(positions):
        match = diff.matches[slot] if slot < len(diff.matches) else None
        finding = match.finding if match else None
        claim_rows.append({
            "article_id": row.id, "story_id": story_id, "position": position,
            "text": article.sentences[position], "norm": sentence_claims[position].norm,
            "closest_claim_id": match.closest.id if match and match.closest else None,
            "similarity": match.similarity if match else None,
            "development_id": dev_rows[min(finding, len(dev_rows) - 1)].id
            if finding is not None and dev_rows else None,
        })
    if claim_rows:
        # Core, one executemany: the ORM's bulk insert leaves out None values, which splits the
        # rows into one statement per run of the same missing columns.
        driver.executemany(session.connection(), _INSERT_CLAIMS, claim_rows)
    _add_sources(session, sorted(diff.corroborated), row)

    story_title = story_index.add_to_story(session, story_id, profile, article.published_at)

    # Fresh developments: their one source is this article, so their views need no read-back.
    first = (SourceRef(source=row.source, url=row.url, article_id=row.id),)
    alerts.enqueue_many(session, ruleset, [development_view(dev, story_title, row.source, row.url, row.title, first)
                                           for dev in dev_rows], now)
    return EntryOutcome(row.id, "version" if previous else "new", story_id,
                        [d.id for d in dev_rows], sorted(diff.corroborated))


def _semantic(embedder, sentences: list[str], known: list[KnownClaim]) -> developments.Semantic | None:
    """Embedding cosines for the optional semantic extra; None when it is off."""
    if embedder is None or not known or not sentences:
        return None
    return developments.Semantic(known=embedder.similarity(sentences, [k.text for k in known]),
                                 within=embedder.similarity(sentences, sentences))


class _Previous(NamedTuple):
    """The stored version an entry may be a new version of."""

    id: int
    version: int
    content_hash: str
    story_id: int
    title: str
    text: str


# The columns a new version is compared with, through the driver (no Core per entry).
_PREVIOUS = (f"SELECT id, version, content_hash, story_id, title, text FROM {m.Article.__tablename__} "
             f"WHERE feed_id = ? AND guid = ? ORDER BY version DESC LIMIT 1")


def _known_claims(session: Session, story_id: int) -> Known:
    connection = session.connection()
    return known_claims(connection).read(connection, story_id)


_INSERT_ARTICLE = insert(m.Article.__table__).returning(m.Article.__table__.c.id)
_INSERT_CLAIMS = insert(m.Claim.__table__)
_INSERT_SOURCES = insert(m.DevelopmentSource.__table__)


def _insert_article(session: Session, values: dict) -> SimpleNamespace:
    """The article's row (Core, one INSERT … RETURNING): its values and its id."""
    return _stored(driver.execute(session.connection(), _INSERT_ARTICLE, values)[0][0], values)


def _stored(id_: int, values: dict) -> SimpleNamespace:
    """A row just written, as the rest of the entry reads it (`.id`, `.source`, ...). Not an
    ORM object: building one costs 20 µs of instrumentation, for an article and each of its
    developments, and nothing here is loaded or flushed through the session."""
    return SimpleNamespace(id=id_, **values)


def _store_findings(session: Session, story_id: int, article: SimpleNamespace, findings: list[Finding],
                    now: datetime) -> list[SimpleNamespace]:
    """The findings as development rows, in one INSERT … RETURNING through the driver;
    returned with their ids (`_stored`), for the claims, sources and alerts. RETURNING's
    rows come in no promised order: each row carries its position in `_sentinel`, and the
    ids are matched back by it."""
    if not findings:
        return []
    values = [
        {"story_id": story_id, "article_id": article.id, "kind": finding.kind, "text": finding.text,
         "score": finding.score, "closest_text": finding.closest_text,
         "closest_similarity": finding.closest_similarity, "details": finding.details,
         "published_at": article.published_at, "detected_at": now}
        for finding in findings
    ]
    connection = session.connection()
    rows = driver.processed(m.Development.__table__, _DEVELOPMENT_COLUMNS, connection.dialect,
                            [(*row.values(), position) for position, row in enumerate(values)])
    by_position = {position: id_ for id_, position in
                   driver.values(connection, _DEVELOPMENTS_HEAD, _DEVELOPMENTS_ROW, " RETURNING id, _sentinel", rows)}
    ids = [by_position[position] for position in range(len(values))]
    _insert_sources(session, ids, article)  # a fresh development: its first source
    return [_stored(id_, row) for id_, row in zip(ids, values, strict=True)]


_DEVELOPMENT_COLUMNS = ("story_id", "article_id", "kind", "text", "score", "closest_text", "closest_similarity",
                        "details", "published_at", "detected_at", "_sentinel")
_DEVELOPMENTS_HEAD = f"INSERT INTO {m.Development.__tablename__} ({', '.join(_DEVELOPMENT_COLUMNS)}) VALUES "
_DEVELOPMENTS_ROW = "(" + ", ".join("?" * len(_DEVELOPMENT_COLUMNS)) + ")"


def _revise(session: Session, story_id: int, revision: revisions.Revision, row: SimpleNamespace, article,
            sentence_claims: list, known: list[KnownClaim], now: datetime):
    """A new version of an article (`revision`: what changed, stored on its row): a substantive
    edit is one `revision` development carrying what it adds to the story. Only the new
    sentences become claims."""
    fresh = set(revision.new_sentences())
    positions = [i for i, sentence in enumerate(article.sentences) if sentence in fresh]
    candidates = [sentence_claims[i] for i in positions]
    if revision.title:
        candidates.append(claims.analyse(article.title))
    diff = developments.diff_article(candidates, known or [], article.source, article.title) if known else \
        developments.Diff()
    if not revision.substantive:
        return positions, developments.Diff(matches=diff.matches[: len(positions)]), []
    found = [f for f in diff.findings if f.kind != Kind.NEW_STORY]
    summary = Finding(
        kind=Kind.REVISION,
        text=_revision_text(revision, found),
        score=max([f.score for f in found], default=0.5 if revision.edit == revisions.Edit.CORRECTION else 0.3),
        closest_text=found[0].closest_text if found else None,
        closest_similarity=found[0].closest_similarity if found else None,
        details={**revision.to_json(), "version": row.version,
                 "findings": [{"kind": f.kind, "text": f.text, **f.details} for f in found]},
    )
    dev_rows = _store_findings(session, story_id, row, [summary], now)
    for match in diff.matches:
        match.finding = 0 if match.new else None
    return positions, developments.Diff(matches=diff.matches[: len(positions)]), dev_rows


def _revision_text(revision: revisions.Revision, found: list[Finding]) -> str:
    """One readable line for an alert: the kind of edit and what it says now."""
    if found:
        body = " ".join(f.text for f in found)
    elif revision.title:
        body = f"headline now reads: {revision.title[1]}"
    elif revision.changed:
        body = " ".join(new for _, new in revision.changed)
    elif revision.added:
        body = " ".join(revision.added)
    else:
        body = "removed: " + " ".join(revision.removed)
    return f"[{revision.edit}] {body}"


def _add_sources(session: Session, development_ids: list[int], article: SimpleNamespace) -> None:
    """The article's outlet corroborates these developments (once per outlet)."""
    if not development_ids:
        return
    listed = {row[0] for row in driver.query(session.connection(), _LISTED, [development_ids, article.source])}
    _insert_sources(session, [d for d in development_ids if d not in listed], article)


_LISTED = (f"SELECT development_id FROM {m.DevelopmentSource.__tablename__} "
           f"WHERE development_id IN [?] AND source = ?")


def _insert_sources(session: Session, development_ids: list[int], article: SimpleNamespace) -> None:
    if development_ids:
        driver.executemany(session.connection(), _INSERT_SOURCES, [
            {"development_id": d, "article_id": article.id, "source": article.source, "url": article.url,
             "added_at": article.fetched_at} for d in development_ids])
