"""Polling a feed: fetch → each entry through the pipeline (monitor/pipeline.py) → the feed's state.

A poll's bookkeeping lives here: the feed's validators and due time, feed-health events, the
batched write of unchanged (304) feeds, and the Poller that `run --once` and the daemon share.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from monitor import alerts, schedule
from monitor.config import FeedConfig, Settings
from monitor.fetch import Failed, Fetched, FetchResult, NotModified
from monitor.fetch.directory import fetch_directory
from monitor.model import Kind, RawEntry
from monitor.pipeline import QUIET_PERIOD, EntryOutcome, process_entry
from monitor.rules import RuleSet
from storage import models as m
from storage.db import Database
from storage.known_claims import forget_known_claims
from storage.models import utcnow  # one clock for the pipeline, the daemon and storage defaults
from storage.queries import feed_event_view

log = logging.getLogger("newsmon.polling")

# Entries stored in one transaction when the `store_batch` setting leaves it to newsmon: on
# SQLite, 25 (see _store_entries); on PostgreSQL, 1: several workers upsert the same
# document-frequency rows, and a transaction holding the row locks of many articles would
# deadlock with another worker's (one article's locks are taken in term order: they cannot).
STORE_BATCH = 25


# Allocations between two runs of the cyclic garbage collector's youngest generation (Python's
# default: 700). Storing an article allocates tens of thousands of objects, and the process
# holds hundreds of thousands more in its caches (analysed sentences, stems, known claims):
# at the default, the collector's full passes over those cost 0.5 ms an article, ~6% of its
# time (bench/sample_on_history.py on a 10 000-article history, 3 000 articles warm-up: 1.77 s
# of collection; at 50 000, 0.25 s, and no full pass). Nothing cyclic is kept longer than the
# youngest generation holds: at most this many objects, a few MB.
GC_THRESHOLD = 50_000


def tune_gc() -> None:
    """The collector's threshold for a process that stores articles (`newsmon run`)."""
    gc.set_threshold(GC_THRESHOLD)


def store_batch(db: Database, setting: int | None = None) -> int:
    """Entries a transaction: the setting, else STORE_BATCH on SQLite and 1 on PostgreSQL."""
    return setting or (STORE_BATCH if db.dialect == "sqlite" else 1)


@dataclass
class PollReport:
    feed: str
    status: str  # "fetched" | "not_modified" | "failed"
    error: str | None = None
    entries: list[EntryOutcome] = field(default_factory=list)
    failed: list[RawEntry] = field(default_factory=list)  # entries that could not be stored: tried next poll

    @property
    def new_articles(self) -> int:
        return sum(1 for e in self.entries if e.status in ("new", "version"))

    @property
    def new_developments(self) -> int:
        return sum(len(e.developments) for e in self.entries)


# --- feeds ---------------------------------------------------------------------------------
def sync_config_feeds(db: Database, feeds: list[FeedConfig], fixture: bool = False) -> None:
    """Feeds named in the config exist in the database (added, never silently removed).

    `fixture`: `feeds` is the seeds fixture feed, there because the config names none; once
    feeds were added by hand (`newsmon feeds add`, `feeds import`) it is not added, and
    disabled if an earlier run added it."""
    with db.session() as session:
        known = {f.url: f for f in session.scalars(select(m.Feed))}
        fixture_urls = {f.url for f in feeds} if fixture else set()
        if fixture and any(row.enabled and not row.from_config and row.url not in fixture_urls
                           for row in known.values()):
            for url in fixture_urls & known.keys():  # in from an earlier run: retired, kept
                if known[url].enabled:
                    known[url].enabled = False
                    log.warning("feed %s: the seeds fixture feed is disabled: other feeds were added", url)
            feeds = []
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
              quiet_period: timedelta = QUIET_PERIOD, batch: int | None = None) -> PollReport:
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
        pending = sorted(result.entries, key=lambda e: e.published_at or (now or utcnow()))

        def store(session: Session, raw: RawEntry) -> EntryOutcome:
            return process_entry(session, feed_id, raw, ruleset, now or utcnow(), feed_title or report.feed,
                                 embedder, quiet_period)

        stored = _store_entries(db, store, pending, report, should_stop, store_batch(db, batch))
        if stored < len(pending):
            report.status = "interrupted"
            log.warning("feed %s: stopped after %d of %d entries; the rest comes next run",
                        report.feed, stored, len(pending))
            return report
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


def _store_entries(db: Database, store: Callable[[Session, RawEntry], EntryOutcome], entries: list[RawEntry],
                   report: PollReport, should_stop: Callable[[], bool] | None, batch: int) -> int:
    """Store `entries` with `store`, `batch` to a transaction; how many were taken (all but
    those after a stop).

    Why batches: on SQLite most of an entry's database time is the commit and the index pages
    its writes dirty, which entries of one transaction share (docs/benchmarks.md). Nothing is
    lost by it: the feed's state is written only after its entries, so entries of a transaction
    a crash cuts off are fetched and stored by the next poll. One entry that fails takes its
    batch's transaction with it; the batch is then stored again one entry per transaction, so
    only that entry is left out (and left for the next poll)."""
    taken = 0
    while taken < len(entries):
        if should_stop is not None and should_stop():
            return taken
        chunk = entries[taken:taken + batch]
        outcomes: list[EntryOutcome] = []
        try:
            with db.session() as session:
                for raw in chunk:
                    if outcomes and should_stop is not None and should_stop():
                        break
                    outcomes.append(store(session, raw))
        except Exception as error:
            # The transaction is gone, and with it what the process kept of the rows it read
            # inside it (a story's claims written by an earlier entry of the chunk).
            forget_known_claims(db.engine)
            if len(chunk) > 1:
                log.warning("feed %s: storing %d entries together failed (%s); storing them one by one",
                            report.feed, len(chunk), type(error).__name__)
                _store_entries(db, store, chunk, report, None, 1)
                taken += len(chunk)
                continue
            # One entry that cannot be stored (a bug its text triggers, a value the database
            # refuses) must not hold back the entries after it, poll after poll: it is rolled
            # back, named, and left for the next poll, which fetches the feed whole.
            log.exception("feed %s: entry %s could not be stored; the next poll tries it again",
                          report.feed, chunk[0].guid)
            report.failed.append(chunk[0])
            taken += 1
            continue
        taken += len(outcomes)
        for outcome in outcomes:  # logged once committed
            _log_outcome(report, outcome)
    return taken


def _log_outcome(report: PollReport, outcome: EntryOutcome) -> None:
    report.entries.append(outcome)
    if outcome.status != "unchanged":
        log.info("article %s: %s, story %s, %d development(s) (feed %s)", outcome.article_id,
                 outcome.status, outcome.story_id, len(outcome.developments), report.feed)
    for development_id in outcome.developments:
        log.info("development %s in story %s (article %s)", development_id, outcome.story_id,
                 outcome.article_id)


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
                if report.failed:  # the next poll must parse them again
                    result = replace(result, entry_digests=result.unremembered(report.failed))
                # Its entries are stored now (those waiting for their pages left out of the
                # digests): the next poll need not parse them again.
                feed.entry_digests = " ".join(result.entry_digests) or None
                feed.pages_waiting = result.deferred or None
                if result.deferred or report.failed:  # entries wait for their pages
                    # (fetch/article.py) or failed: the next poll must get the whole document
                    # again, not a 304 or "same body".
                    feed.etag = feed.last_modified = feed.body_hash = None
                feed.title = feed.title or result.title
                feed.articles_seen += report.new_articles
                feed.entry_gap_seconds = schedule.entry_gap(_publication_dates(session, feed.id, result)) \
                    or feed.entry_gap_seconds
            if result.new_url and result.new_url != feed.url:
                _move(session, feed, result.new_url)
        if change is not None:
            _raise_health_event(session, feed, change, before, now, ruleset)
        feed.next_poll_at = _next_due(policy, feed, now, feed.ttl_seconds, feed.failures,
                                      result.retry_after_seconds if isinstance(result, Failed) else None,
                                      catching_up=isinstance(result, Fetched) and result.deferred > 0)


def _next_due(policy: schedule.Policy, feed: m.Feed, now: datetime, ttl: int | None, failures: int = 0,
              retry_after: float | None = None, catching_up: bool = False) -> datetime:
    """When the feed is due next (the one rule for both the full and the batched 304 path)."""
    normal = schedule.interval(policy, own_interval=feed.interval_seconds, entry_gap=feed.entry_gap_seconds,
                               ttl=ttl)
    if catching_up:  # entries wait for their pages: back at the shortest interval (never under ttl)
        normal = min(normal, policy.min_interval)
    return schedule.next_poll(policy, now, normal=normal, failures=failures, ttl=ttl, retry_after=retry_after)


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
    return {"b_id": feed.id, "b_now": now, "b_etag": result.etag or feed.etag,
            "b_last_modified": result.last_modified or feed.last_modified, "b_ttl": result.ttl_seconds,
            "b_next": _next_due(policy, feed, now, result.ttl_seconds)}


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
        self._writing: asyncio.Future | None = None  # a flush's write, while it runs
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

                result = await add_full_text(self.db, feed, result, self.client,
                                             max_pages=self.settings.full_text_pages_per_poll, gate=self.gate,
                                             allow_private=self.settings.fetch_allow_private)
            async with self._store:
                return await asyncio.to_thread(poll_feed, self.db, feed.id, self.ruleset, result, None,
                                               self.policy, self.should_stop, self.embedder,
                                               timedelta(seconds=self.settings.quiet_period),
                                               self.settings.store_batch)

    async def flush(self, wait: bool = True) -> None:
        """Write the unchanged feeds noted so far (see the class). `wait=False`: not now if a
        feed is being stored (the daemon's tick must not wait for a long feed)."""
        if not wait and self._store.locked() and len(self._unchanged) < self.UNCHANGED_BATCH:
            return
        if wait and self._writing is not None:
            # A write whose flush was cancelled (the daemon's tick, when it stops) went on in
            # its thread: wait for it, and raise its error here if it had one.
            writing, self._writing = self._writing, None
            await writing
        rows, self._unchanged = self._unchanged, []
        if rows:
            async with self._store:
                # Shielded: the rows are taken, so cancelling the caller must not orphan them.
                self._writing = asyncio.ensure_future(asyncio.to_thread(record_unchanged, self.db, rows))
                await asyncio.shield(self._writing)
                self._writing = None


async def poll_once(db: Database, settings: Settings, ruleset: RuleSet, client=None) -> list[PollReport]:
    """Poll every enabled feed once (the `run --once` job), whatever its due time."""
    with db.session() as session:
        feeds = list(session.scalars(select(m.Feed).where(m.Feed.enabled.is_(True)).order_by(m.Feed.id)))
    poller = Poller(db, settings, ruleset, client)
    reports = list(await asyncio.gather(*(poller.poll(feed) for feed in feeds)))
    await poller.flush()
    return reports
