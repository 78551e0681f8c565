"""The pipeline, in the order it runs: fetch → normalise → stories → developments → rules → alerts.

This is the one place that ties the pure stages to storage. Each entry is stored in one
transaction together with its claims, developments and pending alerts; delivery happens
after commit, from the outbox, so a crash loses nothing and sends nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from monitor import alerts, claims, developments, normalise, revisions, schedule, stories
from monitor.config import FeedConfig, Settings
from monitor.fetch import Failed, Fetched, FetchResult, NotModified
from monitor.fetch.directory import fetch_directory
from monitor.model import Finding, Kind, KnownClaim, RawEntry, SourceRef
from monitor.rules import RuleSet
from storage import models as m
from storage import story_index
from storage.db import Database
from storage.models import utcnow  # one clock for the pipeline, the daemon and storage defaults
from storage.queries import development_view, feed_event_view

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


@dataclass
class PollReport:
    feed: str
    status: str  # "fetched" | "not_modified" | "failed"
    error: str | None = None
    entries: list[EntryOutcome] = field(default_factory=list)

    @property
    def new_articles(self) -> int:
        return sum(1 for e in self.entries if e.status in ("new", "version"))

    @property
    def new_developments(self) -> int:
        return sum(len(e.developments) for e in self.entries)


# --- feeds ---------------------------------------------------------------------------------
def sync_config_feeds(db: Database, feeds: list[FeedConfig]) -> None:
    """Feeds named in the config exist in the database (added, never silently removed)."""
    with db.session() as session:
        known = {f.url: f for f in session.scalars(select(m.Feed))}
        for feed in feeds:
            row = known.get(feed.url)
            if row is None:
                session.add(m.Feed(url=feed.url, kind=feed.kind, title=feed.title, from_config=True,
                                   interval_seconds=int(feed.interval) if feed.interval else None,
                                   full_text=feed.full_text))
            else:
                row.from_config, row.full_text = True, feed.full_text  # the config file says
                if feed.interval:
                    row.interval_seconds = int(feed.interval)
        configured = {feed.url for feed in feeds}
        for url, row in known.items():  # a feed taken out of the config file can be removed
            if row.from_config and url not in configured:
                row.from_config = False


async def fetch(feed: m.Feed, client=None, allow_private: bool = False, gate=None) -> FetchResult:
    if feed.kind == "directory":
        return await asyncio.to_thread(fetch_directory, feed.url)
    from monitor.fetch.http import fetch_http  # imported late: the directory feed needs no HTTP stack

    try:
        return await fetch_http(client, feed.url, etag=feed.etag, last_modified=feed.last_modified,
                                body_hash=feed.body_hash, allow_private=allow_private, gate=gate,
                                known_entries=frozenset((feed.entry_digests or "").split()))
    except Exception as error:  # a fetcher bug must not stop the other feeds
        log.exception("feed %s: fetch crashed", feed.url)
        return Failed(f"internal error: {type(error).__name__}")


def poll_feed(db: Database, feed_id: int, ruleset: RuleSet, result: FetchResult,
              now: datetime | None = None, policy: schedule.Policy | None = None,
              should_stop: Callable[[], bool] | None = None, embedder=None,
              quiet_period: timedelta = QUIET_PERIOD) -> PollReport:
    """Store what one fetch brought: every entry in publication order, then the feed's state.

    `should_stop` is asked between entries (the daemon's shutdown): when it says yes, the
    entries stored so far stay, and the feed's state is left as it was (validators, body
    hash, due time), so that the next run fetches the whole feed again and stores the rest;
    the report's status is then "interrupted".
    """
    policy = policy or schedule.Policy()
    report = PollReport(feed="", status="fetched")
    if isinstance(result, Fetched):
        with db.session() as session:
            feed = session.get_one(m.Feed, feed_id)
            report.feed, feed_title = feed.url, feed.title
        for raw in sorted(result.entries, key=lambda e: e.published_at or (now or utcnow())):
            if should_stop is not None and should_stop():
                report.status = "interrupted"
                log.warning("feed %s: stopped after %d of %d entries; the rest comes next run",
                            report.feed, len(report.entries), len(result.entries))
                return report
            # One transaction per entry: a crash keeps what was done; the rest comes next poll.
            with db.session() as session:
                outcome = process_entry(session, feed_id, raw, ruleset, now or utcnow(), feed_title or report.feed,
                                        embedder, quiet_period)
            report.entries.append(outcome)
            if outcome.status != "unchanged":
                log.info("article %s: %s, story %s, %d development(s) (feed %s)", outcome.article_id,
                         outcome.status, outcome.story_id, len(outcome.developments), report.feed)
            for development_id in outcome.developments:
                log.info("development %s in story %s (article %s)", development_id, outcome.story_id,
                         outcome.article_id)
    elif isinstance(result, NotModified):
        report.status = "not_modified"
    else:
        report.status, report.error = "failed", result.error
    _record_poll(db, feed_id, result, report, now or utcnow(), ruleset, policy)
    if isinstance(result, Fetched):
        for warning in result.warnings:
            log.warning("feed %s: %s", report.feed, warning)
    elif isinstance(result, Failed):
        log.warning("feed %s: %s", report.feed, result.error)
    log.debug("polled %s: %s, %d new article(s)", report.feed, report.status, report.new_articles)
    return report


def _record_poll(db: Database, feed_id: int, result: FetchResult, report: PollReport, now: datetime,
                 ruleset: RuleSet, policy: schedule.Policy) -> None:
    """The feed's state after a poll, its next due time, and a feed-health event if its health
    changed — in one transaction, so the event's alerts exist exactly when the state does."""
    failed = isinstance(result, Failed)
    with db.session() as session:
        feed = session.get_one(m.Feed, feed_id)
        report.feed = feed.url
        before = (feed.last_error, feed.failures, feed.failing_since)
        change = schedule.health_change(policy, now, failed=failed, gone=failed and result.gone,
                                        failing_since=feed.failing_since, down_alerted=feed.down_alerted)
        feed.last_polled_at = now
        feed.lease_owner, feed.lease_expires_at = None, None
        if isinstance(result, Failed):
            feed.failures += 1
            feed.failing_since = feed.failing_since or now
            feed.last_error = result.error
            if result.gone:
                feed.enabled = False
                log.warning("feed %s: disabled: %s (re-add it with `newsmon feeds add`)", feed.url, result.error)
        else:
            feed.failures, feed.failing_since, feed.last_error = 0, None, None
            feed.last_success_at = now
            feed.etag = result.etag or feed.etag
            feed.last_modified = result.last_modified or feed.last_modified
            feed.ttl_seconds = result.ttl_seconds
            if isinstance(result, Fetched):
                feed.body_hash = result.body_hash
                # Every entry of this body is now stored: the next poll need not parse them again.
                feed.entry_digests = " ".join(result.entry_digests) or None
                feed.title = feed.title or result.title
                feed.articles_seen += report.new_articles
                feed.entry_gap_seconds = schedule.entry_gap(_publication_dates(session, feed.id, result)) \
                    or feed.entry_gap_seconds
            if result.new_url and result.new_url != feed.url:
                _move(session, feed, result.new_url)
        if change is not None:
            _raise_health_event(session, feed, change, before, now, ruleset)
        normal = schedule.interval(policy, own_interval=feed.interval_seconds, entry_gap=feed.entry_gap_seconds,
                                   ttl=feed.ttl_seconds)
        feed.next_poll_at = schedule.next_poll(
            policy, now, normal=normal, failures=feed.failures, ttl=feed.ttl_seconds,
            retry_after=result.retry_after_seconds if isinstance(result, Failed) else None)


def _publication_dates(session: Session, feed_id: int, result: Fetched) -> list[datetime | None]:
    """The dates that tell how often the feed publishes: its entries', plus, when the entries
    stored last time were left unparsed, the newest stored ones in their place."""
    dates = [e.published_at for e in result.entries]
    if len(result.entries) < len(result.entry_digests):
        dates += session.scalars(select(m.Article.published_at).where(m.Article.feed_id == feed_id)
                                 .order_by(m.Article.published_at.desc()).limit(schedule.GAP_SAMPLE))
    return dates


def unchanged_row(feed: m.Feed, result: NotModified, now: datetime, policy: schedule.Policy) -> dict | None:
    """What `_record_poll` would write after a NotModified on a healthy feed, as one row for
    `record_unchanged`; None when the poll needs `_record_poll` (a recovery, a move)."""
    if feed.failures or feed.down_alerted or feed.failing_since or result.new_url:
        return None
    normal = schedule.interval(policy, own_interval=feed.interval_seconds, entry_gap=feed.entry_gap_seconds,
                               ttl=result.ttl_seconds)
    return {"b_id": feed.id, "b_now": now, "b_etag": result.etag or feed.etag,
            "b_last_modified": result.last_modified or feed.last_modified, "b_ttl": result.ttl_seconds,
            "b_next": schedule.next_poll(policy, now, normal=normal, ttl=result.ttl_seconds)}


def record_unchanged(db: Database, rows: list[dict]) -> None:
    """Unchanged healthy feeds' poll times, due times and validators, and their leases ended:
    one UPDATE executed for all rows in one transaction. A 304 costs nothing more."""
    feeds = m.Feed.__table__
    statement = update(feeds).where(feeds.c.id == bindparam("b_id")).values(
        last_polled_at=bindparam("b_now"), last_success_at=bindparam("b_now"), etag=bindparam("b_etag"),
        last_modified=bindparam("b_last_modified"), ttl_seconds=bindparam("b_ttl"),
        next_poll_at=bindparam("b_next"), lease_owner=None, lease_expires_at=None)
    with db.engine.begin() as connection:
        connection.execute(statement, rows)


def _move(session: Session, feed: m.Feed, new_url: str) -> None:
    """A permanent redirect: poll the new URL from now on (unless another feed has it already)."""
    taken = session.scalar(select(m.Feed.id).where(m.Feed.url == new_url))
    if taken is not None:
        log.warning("feed %s moved to %s, which is already feed %s; keeping the old URL", feed.url, new_url, taken)
        return
    log.warning("feed %s moved permanently to %s; the stored URL is updated", feed.url, new_url)
    feed.url = new_url


def _raise_health_event(session: Session, feed: m.Feed, kind: str, before: tuple, now: datetime,
                        ruleset: RuleSet) -> None:
    last_error, failures, failing_since = (feed.last_error, feed.failures, feed.failing_since) \
        if kind == Kind.FEED_DOWN else before
    event = m.FeedEvent(feed_id=feed.id, kind=kind, feed_url=feed.url, feed_title=feed.title, error=last_error,
                        failures=failures, failing_since=failing_since, detected_at=now)
    session.add(event)
    session.flush()
    feed.down_alerted = kind == Kind.FEED_DOWN
    view = feed_event_view(event)
    log.warning("%s", view.text)
    alerts.enqueue(session, ruleset, view, now)


# --- one entry -----------------------------------------------------------------------------
def process_entry(session: Session, feed_id: int, raw: RawEntry, ruleset: RuleSet, now: datetime,
                  default_source: str, embedder=None, quiet_period: timedelta = QUIET_PERIOD) -> EntryOutcome:
    article = normalise.normalise(raw, now, default_source=default_source, sentences=False)
    previous = session.scalars(
        select(m.Article).where(m.Article.feed_id == feed_id, m.Article.guid == article.guid)
        .order_by(m.Article.version.desc()).limit(1)
    ).first()
    if previous is not None and previous.content_hash == article.content_hash:
        return EntryOutcome(previous.id, "unchanged", previous.story_id)
    article = replace(article, sentences=normalise.split_sentences(article.text))

    sentence_claims = [claims.analyse(s) for s in article.sentences]
    reading = stories.read(article.title, sentence_claims)
    dfs, documents = story_index.document_frequencies(session, list(reading.counts))
    profile = stories.profile(reading, dfs, documents + 1)

    if previous is not None:
        story = session.get(m.Story, previous.story_id)
    else:
        found = story_index.candidates(session, profile, article.published_at - quiet_period)
        story_id, _similarity, _why = stories.choose_story(profile, found)
        story = session.get(m.Story, story_id) if story_id else None
    is_new_story = story is None
    if story is None:
        story = m.Story(title=article.title, first_seen=article.published_at, last_seen=article.published_at)
        session.add(story)
        session.flush()

    row = m.Article(
        feed_id=feed_id, guid=article.guid, version=(previous.version + 1) if previous else 1,
        url=article.url, title=article.title, source=article.source, published_at=article.published_at,
        fetched_at=now, text=article.text, content_hash=article.content_hash, story_id=story.id,
    )
    session.add(row)
    session.flush()

    known = [] if is_new_story else _known_claims(session, story.id)
    if previous is None:
        positions = list(range(len(article.sentences)))
        diff = developments.diff_article(sentence_claims, known, article.source, article.title,
                                         _semantic(embedder, list(article.sentences), known))
        dev_rows = _store_findings(session, story, row, diff.findings, now)
    else:
        positions, diff, dev_rows = _revise(session, story, previous, row, article, sentence_claims, known, now)
    claim_rows = []
    for slot, position in enumerate(positions):
        match = diff.matches[slot] if slot < len(diff.matches) else None
        finding = match.finding if match else None
        claim_rows.append({
            "article_id": row.id, "story_id": story.id, "position": position,
            "text": article.sentences[position], "norm": sentence_claims[position].norm,
            "closest_claim_id": match.closest.id if match and match.closest else None,
            "similarity": match.similarity if match else None,
            "development_id": dev_rows[min(finding, len(dev_rows) - 1)].id
            if finding is not None and dev_rows else None,
        })
    if claim_rows:
        session.execute(insert(m.Claim), claim_rows)  # one executemany, not an ORM object per sentence
    _add_sources(session, sorted(diff.corroborated), row)

    story.article_count += 1
    story.first_seen = min(story.first_seen, article.published_at)
    story.last_seen = max(story.last_seen, article.published_at)
    story_index.add_to_story(session, story, profile, article.published_at)
    story_index.count_document(session, list(reading.counts))
    session.flush()

    # Fresh developments: their one source is this article, so their views need no read-back.
    first = (SourceRef(source=row.source, url=row.url, article_id=row.id),)
    alerts.enqueue_many(session, ruleset, [development_view(dev, story.title, row.source, row.url, row.title, first)
                                           for dev in dev_rows], now)
    return EntryOutcome(row.id, "version" if previous else "new", story.id,
                        [d.id for d in dev_rows], sorted(diff.corroborated))


def _semantic(embedder, sentences: list[str], known: list[KnownClaim]) -> developments.Semantic | None:
    """Embedding cosines for the optional semantic extra; None when it is off."""
    if embedder is None or not known or not sentences:
        return None
    return developments.Semantic(known=embedder.similarity(sentences, [k.text for k in known]),
                                 within=embedder.similarity(sentences, sentences))


# A story is compared with at most this many of its latest distinct claims. Long-running
# stories (weeks of live coverage, syndicated copies) would otherwise make each new article
# cost more than the last; what was said 5 000 sentences ago is rarely what a report repeats.
MAX_KNOWN_CLAIMS = 3000


def _known_claims(session: Session, story_id: int) -> list[KnownClaim]:
    rows = session.execute(
        select(m.Claim.id, m.Claim.text, m.Claim.norm, m.Article.source, m.Claim.development_id)
        .join(m.Article, m.Article.id == m.Claim.article_id)
        .where(m.Claim.story_id == story_id)
        .order_by(m.Claim.id.desc())
        .limit(2 * MAX_KNOWN_CLAIMS)
    )
    distinct: dict[str, KnownClaim] = {}
    for r in rows:  # newest first; the first report of a sentence (the oldest) wins below
        distinct[r[2]] = KnownClaim(id=r[0], text=r[1], norm=r[2], source=r[3], development_id=r[4])
    return sorted(distinct.values(), key=lambda k: k.id)[-MAX_KNOWN_CLAIMS:]


def _store_findings(session: Session, story: m.Story, article: m.Article, findings: list[Finding],
                    now: datetime) -> list[m.Development]:
    rows = [
        m.Development(
            story_id=story.id, article_id=article.id, kind=finding.kind, text=finding.text, score=finding.score,
            closest_text=finding.closest_text, closest_similarity=finding.closest_similarity,
            details=finding.details, published_at=article.published_at, detected_at=now,
        )
        for finding in findings
    ]
    session.add_all(rows)
    session.flush()  # one batched INSERT … RETURNING for all of them, not a round trip each
    session.add_all(m.DevelopmentSource(development_id=dev.id, article_id=article.id, source=article.source,
                                        url=article.url) for dev in rows)  # a fresh development: its first source
    return rows


def _revise(session: Session, story: m.Story, previous: m.Article, row: m.Article, article,
            sentence_claims: list, known: list[KnownClaim], now: datetime):
    """A new version of an article: record what changed; a substantive edit is one `revision`
    development carrying what it adds to the story. Only the new sentences become claims."""
    revision = revisions.compare(previous.title, list(normalise.split_sentences(previous.text)),
                                 article.title, list(article.sentences))
    row.revision = revision.to_json()
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
    dev_rows = _store_findings(session, story, row, [summary], now)
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


def _add_sources(session: Session, development_ids: list[int], article: m.Article) -> None:
    """The article's outlet corroborates these developments (once per outlet)."""
    if not development_ids:
        return
    listed = set(session.scalars(select(m.DevelopmentSource.development_id).where(
        m.DevelopmentSource.development_id.in_(development_ids),
        m.DevelopmentSource.source == article.source)))
    session.add_all(m.DevelopmentSource(development_id=development_id, article_id=article.id,
                                        source=article.source, url=article.url)
                    for development_id in development_ids if development_id not in listed)


# --- the whole job -------------------------------------------------------------------------
def due_feeds(db: Database, now: datetime, all_feeds: bool = False) -> list[int]:
    with db.session() as session:
        query = select(m.Feed.id).where(m.Feed.enabled.is_(True)).order_by(m.Feed.id)
        if not all_feeds:
            query = query.where((m.Feed.next_poll_at.is_(None)) | (m.Feed.next_poll_at <= now))
        return list(session.scalars(query))


class Poller:
    """Fetches concurrently, stores one feed at a time (storage is CPU work under one GIL, and
    SQLite has one writer). At most 2 × concurrency fetched results wait, so memory stays bounded.

    A feed that did not change (304, or the same body) on a healthy feed is only noted; the
    notes are written together by `flush` (called when UNCHANGED_BATCH pile up, at the end of
    `poll_once`, and by the daemon every second and before it stops): until then the feed keeps
    its lease, so no other worker polls it again.
    """

    UNCHANGED_BATCH = 100

    def __init__(self, db: Database, settings: Settings, ruleset: RuleSet, client=None) -> None:
        self.db, self.settings, self.ruleset, self.client = db, settings, ruleset, client
        self.policy = schedule.Policy.from_settings(settings)
        self.gate = None
        if client is not None:
            from monitor.fetch.http import HostGate

            self.gate = HostGate(total=settings.fetch_concurrency, per_host=settings.fetch_per_host)
        self._slots = asyncio.Semaphore(2 * settings.fetch_concurrency)
        self._store = asyncio.Lock()
        self._unchanged: list[dict] = []
        self.should_stop: Callable[[], bool] | None = None
        self.embedder = None
        if settings.semantic_matching:
            from monitor.semantic import default_embedder  # the optional extra: imported only when on

            self.embedder = default_embedder()

    async def poll(self, feed: m.Feed) -> PollReport:
        async with self._slots:
            result = await fetch(feed, self.client, self.settings.fetch_allow_private, self.gate)
            row = unchanged_row(feed, result, utcnow(), self.policy) if isinstance(result, NotModified) else None
            if row is not None:
                self._unchanged.append(row)
                if len(self._unchanged) >= self.UNCHANGED_BATCH:
                    await self.flush()
                log.debug("polled %s: not_modified, 0 new article(s)", feed.url)
                return PollReport(feed=feed.url, status="not_modified")
            if feed.full_text:  # summary-only entries get their pages' text (monitor/fetch/article.py)
                from monitor.fetch.article import add_full_text

                result = await add_full_text(self.db, feed, result, self.client, gate=self.gate,
                                             allow_private=self.settings.fetch_allow_private)
            async with self._store:
                return await asyncio.to_thread(poll_feed, self.db, feed.id, self.ruleset, result, None,
                                               self.policy, self.should_stop, self.embedder,
                                               timedelta(seconds=self.settings.quiet_period))

    async def flush(self, wait: bool = True) -> None:
        """Write the unchanged feeds noted so far (see the class). `wait=False`: not now if a
        feed is being stored (the daemon's tick must not wait for a long feed)."""
        if not wait and self._store.locked() and len(self._unchanged) < self.UNCHANGED_BATCH:
            return
        rows, self._unchanged = self._unchanged, []
        if rows:
            async with self._store:
                await asyncio.to_thread(record_unchanged, self.db, rows)


async def poll_once(db: Database, settings: Settings, ruleset: RuleSet, client=None) -> list[PollReport]:
    """Poll every enabled feed once (the `run --once` job), whatever its due time."""
    with db.session() as session:
        feeds = list(session.scalars(select(m.Feed).where(m.Feed.enabled.is_(True)).order_by(m.Feed.id)))
    poller = Poller(db, settings, ruleset, client)
    reports = list(await asyncio.gather(*(poller.poll(feed) for feed in feeds)))
    await poller.flush()
    return reports
