"""schedule: the long-lived daemon. APScheduler runs one polling job per feed, on the feed's
interval, and a delivery job for the outbox; SIGINT/SIGTERM stop it cleanly.

Each poll commits entry by entry, so stopping mid-poll loses nothing: what was stored
stays, and the rest of the feed is read again (idempotently) on the next start.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import alerts, pipeline
from monitor.app import App
from storage import models as m

log = logging.getLogger("newsmon.daemon")
DELIVERY_EVERY = 15  # seconds between outbox passes (retries are timed by the outbox itself)
JITTER = 0.1  # ± share of a feed's interval, so feeds on one host do not fire together


async def run_daemon(app: App) -> None:
    notifiers = app.build_notifiers()  # config errors first, then rule files
    ruleset = app.load_rules()
    pipeline.sync_config_feeds(app.db, app.settings.feeds)
    client = None
    if any(f.kind == "http" for f in app.settings.feeds):
        from monitor.fetch.http import make_client

        client = make_client()
    stop = asyncio.Event()
    busy = asyncio.Lock()  # SQLite serves one writer: feeds are polled one after another

    async def poll(feed_id: int) -> None:
        if stop.is_set():
            return
        async with busy:
            with app.db.session() as session:
                feed = session.get(m.Feed, feed_id)
            result = await pipeline.fetch(feed, client, app.settings.fetch_allow_private)
            report = await asyncio.to_thread(pipeline.poll_feed, app.db, feed_id, ruleset, result)
            with app.db.session() as session:
                feed = session.get(m.Feed, feed_id)
                feed.next_poll_at = pipeline.utcnow() + timedelta(seconds=_interval(app, feed))
            log.debug("polled %s: %s", report.feed, report.status)

    async def deliver() -> None:
        report = await asyncio.to_thread(alerts.deliver_due, app.db, notifiers)
        if report.outcomes:
            log.info("alerts: %d sent, %d failed, %d dead", report.sent, report.failed, report.dead)

    scheduler = AsyncIOScheduler(timezone="UTC")
    with app.db.session() as session:
        feeds = [(f.id, _interval(app, f), f.next_poll_at) for f in session.query(m.Feed).filter_by(enabled=True)]
    now = pipeline.utcnow()
    for feed_id, interval, next_poll in feeds:
        # Due times live in the database, so a restart continues where it stopped.
        first = max(now, next_poll) if next_poll else now
        scheduler.add_job(poll, "interval", args=[feed_id], seconds=interval, next_run_time=first,
                          jitter=int(interval * JITTER), id=f"feed-{feed_id}", max_instances=1,
                          coalesce=True, misfire_grace_time=int(interval))
    scheduler.add_job(deliver, "interval", seconds=DELIVERY_EVERY, next_run_time=now, id="deliver",
                      max_instances=1, coalesce=True)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    scheduler.start()
    log.warning("newsmon running: %d feed(s); stop with Ctrl-C", len(feeds))
    await stop.wait()
    log.warning("stopping: finishing the poll in progress")
    scheduler.shutdown(wait=False)
    async with busy:  # let an in-flight poll commit its current entry
        pass
    if client is not None:
        await client.aclose()
    from notifiers import close_notifiers

    close_notifiers(notifiers)


def _interval(app: App, feed: m.Feed) -> float:
    return max(feed.interval_seconds or app.settings.poll_interval, feed.ttl_seconds or 0)
