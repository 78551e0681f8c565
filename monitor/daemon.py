"""schedule: the long-lived daemon (`newsmon run`).

    APScheduler jobs, until SIGINT/SIGTERM:
        every IDLE s:              claim due feeds (next_poll_at <= now) under a lease, as many as
                                   there are free slots; poll each: fetch concurrently, store one
                                   at a time (polling.Poller); write the unchanged (304) feeds of
                                   the last second in one batch
        every DELIVERY_EVERY s:    deliver due alerts from the outbox
        every RULES_CHECK_EVERY s: reload the rules if SIGHUP came or a rule file changed
                                   (a broken file keeps the old rules)

Due times live in the database (`feeds.next_poll_at`, set by `polling._record_poll` from
`monitor/schedule.py`: per-feed interval, adaptation, backoff, jitter), so a restart continues
where it stopped and several workers on one PostgreSQL share the feeds: each claims due feeds
with `SELECT … FOR UPDATE SKIP LOCKED` and a lease that expires if the worker dies.

APScheduler drives it: three jobs — claim due feeds every second, deliver the outbox every
15 s, look at the rules folder every 5 s — each running alone and coalescing missed runs.
Each feed's own time is not an APScheduler job but `feeds.next_poll_at` in the database:
it changes after every poll (adaptive interval, backoff, Retry-After), must survive a
restart, and must be shared by several workers; the claim job asks the database what is due.
Polls run as the daemon's own tasks, so stopping can give them a grace period.

Stopping. The first SIGINT/SIGTERM stops claiming feeds; polls in flight get
`shutdown_grace` seconds to finish. After that, fetches still running are abandoned and a
poll that is storing stops at the next entry boundary (what was stored is committed). An
interrupted feed keeps its old validators and due time, so the next start fetches it again
and stores what is missing; entries already stored are recognised and cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from monitor import alerts, polling
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
        try:
            polling.sync_config_feeds(app.db, app.settings.feeds, app.settings.feeds_are_fixture)
        except IntegrityError:  # another worker, started with us, added the same feeds first
            polling.sync_config_feeds(app.db, app.settings.feeds, app.settings.feeds_are_fixture)
        if app.db.dialect == "sqlite":
            release_leases(app.db)  # SQLite serves one worker: any lease is a dead run's
        from monitor.fetch.http import make_client

        client = make_client()
        poller = polling.Poller(app.db, app.settings, ruleset, client)
        poller.should_stop = lambda: self._abandon
        self._install_signals()
        self._tasks: set[asyncio.Task] = set()
        self._delivery: asyncio.Task | None = None
        self._poller, self._notifiers = poller, notifiers
        scheduler = self._scheduler()
        log.warning("newsmon running as %s: %d feed(s); stop with Ctrl-C", self.worker, _count(app.db))
        scheduler.start()
        try:
            await self.stop.wait()
            scheduler.shutdown(wait=False)  # no new claims, deliveries or reloads from here on
            log.warning("stopping: %d poll(s) in flight get %gs to finish", len(self._tasks),
                        app.settings.shutdown_grace)
            await self._wind_down(self._tasks, self._delivery)
            await self._flush()
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            release_leases(app.db, self.worker)
            await client.aclose()
            from notifiers import close_notifiers

            close_notifiers(notifiers)
        log.warning("stopped")

    def _scheduler(self) -> AsyncIOScheduler:
        """APScheduler drives the daemon with three jobs: claim due feeds (every IDLE seconds),
        deliver the outbox, look at the rules folder. Each job runs alone (max_instances=1) and
        missed runs collapse into one (coalesce): a slow poll never piles up work."""
        scheduler = AsyncIOScheduler(timezone="UTC")
        now = polling.utcnow()
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None, "next_run_time": now}
        scheduler.add_job(self._claim, "interval", seconds=IDLE, id="claim-due-feeds", **common)
        scheduler.add_job(self._start_delivery, "interval", seconds=DELIVERY_EVERY, id="deliver", **common)
        scheduler.add_job(self._check_rules, "interval", seconds=RULES_CHECK_EVERY, id="rules", **common)
        self._scheduler_ref = scheduler
        return scheduler

    async def _claim(self) -> None:
        """Write the unchanged feeds polled since the last tick, then start a poll for each due
        feed this worker can lease, up to its free slots."""
        await self._flush(wait=False)
        if self.stop.is_set():
            return
        free = 2 * self.app.settings.fetch_concurrency - len(self._tasks)
        for feed in claim_due_feeds(self.app.db, polling.utcnow(), self.worker, free, LEASE):
            task = asyncio.create_task(self._poll(self._poller, feed), name=f"poll {feed.url}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, wait: bool = True) -> None:
        try:
            await self._poller.flush(wait)
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise
            # Stopping: the scheduler's shutdown cancelled this tick mid-write. The write goes
            # on, and the stop's own flush waits for it.
        except Exception:  # their leases expire, and they are polled again: nothing is lost
            log.exception("could not record the unchanged feeds; they will be polled again after %gs", LEASE)

    async def _start_delivery(self) -> None:
        # Our own task, not the job itself, so that stopping can give it the grace period.
        if not self.stop.is_set() and (self._delivery is None or self._delivery.done()):
            self._delivery = asyncio.create_task(self._deliver(self._notifiers))

    async def _check_rules(self) -> None:
        self._poller.ruleset = self._maybe_reload(self._poller.ruleset)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._want_reload)

    def _want_reload(self) -> None:
        self.reload_wanted = True
        self._bad_rules = None  # SIGHUP: try even a folder that failed before
        scheduler = getattr(self, "_scheduler_ref", None)
        if scheduler is not None and scheduler.running:
            scheduler.modify_job("rules", next_run_time=polling.utcnow())  # now, not in 5 s

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

    async def _poll(self, poller: polling.Poller, feed: m.Feed) -> None:
        try:
            await poller.poll(feed)
        except asyncio.CancelledError:
            raise
        except Exception:  # a storage error on one feed must not stop the daemon; its lease expires
            log.exception("feed %s: the poll failed; it will be tried again after %gs", feed.url, LEASE)

    async def _deliver(self, notifiers) -> None:
        try:
            # Every due alert, batch after batch (a busy poll's alerts go out now, not 100 per
            # pass); stopping ends it after the batch in hand.
            report = await asyncio.to_thread(alerts.deliver_due, self.app.db, notifiers, drain=True,
                                             should_stop=self.stop.is_set)
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
