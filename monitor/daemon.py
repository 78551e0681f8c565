"""schedule: the long-lived daemon (`newsmon run`).

    loop until SIGINT/SIGTERM:
        reload the rules if SIGHUP came or a rule file changed (a broken file keeps the old rules)
        claim due feeds (next_poll_at <= now) under a lease, as many as there are free slots
        poll each: fetch concurrently, store one at a time (pipeline.Poller)
        every DELIVERY_EVERY seconds: deliver due alerts from the outbox

Due times live in the database (`feeds.next_poll_at`, set by `pipeline._record_poll` from
`monitor/schedule.py`: per-feed interval, adaptation, backoff, jitter), so a restart continues
where it stopped and several workers on one PostgreSQL share the feeds: each claims due feeds
with `SELECT … FOR UPDATE SKIP LOCKED` and a lease that expires if the worker dies.

Why no APScheduler: every feed's next time changes after every poll (adaptive intervals,
backoff, Retry-After) and must be in the database anyway; a scheduler's in-memory job table
would be a second copy of that state to keep in step, and its shutdown cancels running jobs
outright, where we want a grace period. One loop that asks the database "what is due?" is
the whole scheduler.

Stopping. The first SIGINT/SIGTERM stops claiming feeds; polls in flight get
`shutdown_grace` seconds to finish. After that, fetches still running are abandoned and a
poll that is storing stops at the next entry boundary (each entry is one transaction). An
interrupted feed keeps its old validators and due time, so the next start fetches it again
and stores what is missing; entries already stored are recognised and cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from monitor import alerts, pipeline
from monitor.app import App
from monitor.errors import RuleError
from monitor.rules import RuleSet, fingerprint
from storage import models as m
from storage.db import Database

log = logging.getLogger("newsmon.daemon")
DELIVERY_EVERY = 15.0  # seconds between outbox passes (retries are timed by the outbox itself)
RULES_CHECK_EVERY = 5.0  # seconds between looks at the rules folder
IDLE = 1.0  # the longest the loop sleeps: a feed added by `newsmon feeds add` is picked up this fast
LEASE = 300.0  # seconds a claimed feed belongs to its worker; longer than any fetch (30 s) + store


class Daemon:
    def __init__(self, app: App, worker: str | None = None) -> None:
        self.app = app
        self.worker = worker or alerts.default_worker()
        self.stop = asyncio.Event()
        self.reload_wanted = False
        self._abandon = False
        self._bad_rules: dict | None = None  # fingerprint of a folder that failed to load

    async def run(self) -> None:
        app = self.app
        notifiers = app.build_notifiers()  # config errors first, then rule files
        ruleset = app.load_rules()
        pipeline.sync_config_feeds(app.db, app.settings.feeds)
        if app.db.dialect == "sqlite":
            release_leases(app.db)  # SQLite serves one worker: any lease is a dead run's
        from monitor.fetch.http import make_client

        client = make_client()
        poller = pipeline.Poller(app.db, app.settings, ruleset, client)
        poller.should_stop = lambda: self._abandon
        self._install_signals()
        tasks: set[asyncio.Task] = set()
        deliver: asyncio.Task | None = None
        loop = asyncio.get_running_loop()
        last_delivery = last_rules_check = -1e9
        log.warning("newsmon running as %s: %d feed(s); stop with Ctrl-C", self.worker, _count(app.db))
        try:
            while not self.stop.is_set():
                if self.reload_wanted or loop.time() - last_rules_check >= RULES_CHECK_EVERY:
                    last_rules_check = loop.time()
                    poller.ruleset = self._maybe_reload(poller.ruleset)
                free = 2 * app.settings.fetch_concurrency - len(tasks)
                for feed in claim_due_feeds(app.db, pipeline.utcnow(), self.worker, free, LEASE):
                    task = asyncio.create_task(self._poll(poller, feed), name=f"poll {feed.url}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if (deliver is None or deliver.done()) and loop.time() - last_delivery >= DELIVERY_EVERY:
                    last_delivery = loop.time()
                    deliver = asyncio.create_task(self._deliver(notifiers))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), IDLE)
            log.warning("stopping: %d poll(s) in flight get %gs to finish", len(tasks), app.settings.shutdown_grace)
            await self._wind_down(tasks, deliver)
        finally:
            release_leases(app.db, self.worker)
            await client.aclose()
            from notifiers import close_notifiers

            close_notifiers(notifiers)
        log.warning("stopped")

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._want_reload)

    def _want_reload(self) -> None:
        self.reload_wanted = True
        self._bad_rules = None  # SIGHUP: try even a folder that failed before

    def _maybe_reload(self, current: RuleSet) -> RuleSet:
        """The rules to use from now on: new ones if the folder changed and loads, else `current`."""
        asked, self.reload_wanted = self.reload_wanted, False
        if not asked and not current.changed_on_disk():
            return current
        if not asked and self._bad_rules is not None and fingerprint(current.folder) == self._bad_rules:
            return current  # the same broken files: reported once already
        try:
            fresh = self.app.load_rules()
        except RuleError as error:
            self._bad_rules = fingerprint(current.folder)
            log.warning("rules not reloaded, the previous %d rule(s) stay in force: %s", len(current), error)
            return current
        self._bad_rules = None
        log.warning("rules reloaded: %d rule(s) from %s", len(fresh), fresh.folder)
        return fresh

    async def _poll(self, poller: pipeline.Poller, feed: m.Feed) -> None:
        try:
            await poller.poll(feed)
        except asyncio.CancelledError:
            raise
        except Exception:  # a storage error on one feed must not stop the daemon; its lease expires
            log.exception("feed %s: the poll failed; it will be tried again after %gs", feed.url, LEASE)

    async def _deliver(self, notifiers) -> None:
        try:
            report = await asyncio.to_thread(alerts.deliver_due, self.app.db, notifiers)
        except Exception:
            log.exception("alert delivery failed; the alerts stay in the outbox")
            return
        if report.outcomes:
            log.info("alerts: %d sent, %d failed, %d dead", report.sent, report.failed, report.dead)

    async def _wind_down(self, tasks: set[asyncio.Task], deliver: asyncio.Task | None) -> None:
        pending = set(tasks) | ({deliver} if deliver else set())
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.app.settings.shutdown_grace)
            if late:
                log.warning("abandoning %d poll(s) after the grace period; they run again next start", len(late))
                self._abandon = True  # a poll that is storing stops at the next entry
                for task in late:
                    task.cancel()
                await asyncio.wait(late)


async def run_daemon(app: App) -> None:
    await Daemon(app).run()


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(m.Feed).where(m.Feed.enabled.is_(True))) or 0


def claim_due_feeds(db: Database, now: datetime, worker: str, limit: int, lease_seconds: float) -> list[m.Feed]:
    """Take a lease on up to `limit` due feeds, soonest due first (never-polled feeds first).

    On PostgreSQL rows another worker is claiming are skipped (`FOR UPDATE SKIP LOCKED`);
    the lease stays on the row after commit, so no two workers poll one feed at once, and a
    dead worker's feeds are polled again once its leases expire. `_record_poll` ends a lease.
    """
    if limit <= 0:
        return []
    with db.session() as session:
        query = (
            select(m.Feed)
            .where(m.Feed.enabled.is_(True),
                   or_(m.Feed.next_poll_at.is_(None), m.Feed.next_poll_at <= now),
                   or_(m.Feed.lease_expires_at.is_(None), m.Feed.lease_expires_at <= now))
            .order_by(m.Feed.next_poll_at.asc().nulls_first(), m.Feed.id)
            .limit(limit)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        feeds = list(session.scalars(query))
        for feed in feeds:
            feed.lease_owner, feed.lease_expires_at = worker, now + timedelta(seconds=lease_seconds)
    return feeds


def release_leases(db: Database, worker: str | None = None) -> None:
    """Give up the leases of `worker` (or all leases: a single SQLite worker starting up)."""
    with db.session() as session:
        query = update(m.Feed).values(lease_owner=None, lease_expires_at=None)
        if worker is not None:
            query = query.where(m.Feed.lease_owner == worker)
        session.execute(query)
