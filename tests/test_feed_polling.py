"""Feeds served on 127.0.0.1 that change, answer 304, fail, move and go away: what is stored on
the feed, what alerts go out, and what `newsmon feeds list` shows. Time is driven, not slept."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from feedserver import FeedServer, Reply
from sqlalchemy import func, select

from monitor import alerts, polling
from monitor.config import FeedConfig
from monitor.fetch.http import make_client
from monitor.model import Kind
from monitor.rules import load_rules
from monitor.schedule import Policy
from notifiers import build_notifiers
from storage import models as m

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(default_interval=900, min_interval=300, max_interval=14400, max_backoff=21600,
                down_after=6 * 3600, jitter=0.0)
TOPICS = ["harbour", "railway", "orchard", "glacier", "vineyard", "lighthouse", "quarry", "meadow"]


def rss(count: int, *, ttl: int | None = None, title: str = "Wire") -> bytes:
    """A feed whose entry i is published i hours after T0 - 1 day, each about its own topic."""
    items = []
    for i in range(count):
        when = format_datetime(T0 - timedelta(days=1) + timedelta(hours=i), usegmt=True)
        topic = TOPICS[i % len(TOPICS)]
        items.append(f"<item><guid>g{i}</guid><title>The {topic} reopened in town {i}</title>"
                     f"<pubDate>{when}</pubDate><description>Workers in town {i} said the {topic} "
                     f"reopened on Monday after {i + 2} weeks of repairs costing {i + 3} million euros."
                     f"</description></item>")
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>http://x/</link>{ttl_tag}{''.join(items)}</channel></rss>").encode()


class Harness:
    def __init__(self, db, tmp_path):
        self.db = db
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "all.yaml").write_text("name: everything\nchannels: [jsonl]\n")
        self.ruleset = load_rules(rules, {"jsonl"})
        self.jsonl = tmp_path / "alerts.jsonl"
        self.notifiers = build_notifiers({"jsonl": _channel(self.jsonl)})

    def add(self, url: str) -> int:
        polling.sync_config_feeds(self.db, [FeedConfig(url=url)])
        with self.db.session() as session:
            return session.scalar(select(m.Feed.id).where(m.Feed.url == url))

    def poll(self, feed_id: int, now: datetime) -> polling.PollReport:
        feed = self.feed(feed_id)

        async def fetch():
            client = make_client()
            try:
                return await polling.fetch(feed, client, allow_private=True)
            finally:
                await client.aclose()

        return polling.poll_feed(self.db, feed_id, self.ruleset, asyncio.run(fetch()), now, POLICY)

    def feed(self, feed_id: int) -> m.Feed:
        with self.db.session() as session:
            return session.get_one(m.Feed, feed_id)

    def deliver(self, now: datetime) -> list[dict]:
        alerts.deliver_due(self.db, self.notifiers, now=now)
        return [json.loads(line) for line in self.jsonl.read_text().splitlines()] if self.jsonl.exists() else []

    def count(self, model) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(model))


def _channel(path):
    from monitor.config import ChannelConfig

    return ChannelConfig(kind="jsonl", path=str(path))


@pytest.fixture
def harness(db, tmp_path):
    return Harness(db, tmp_path)


def test_a_changing_feed_then_304s_that_cost_nothing(harness):
    entries = {"n": 2}
    with FeedServer() as server:
        server.route("/rss", lambda seen: _versioned(seen, entries["n"]))
        feed_id = harness.add(server.url("/rss"))

        first = harness.poll(feed_id, T0)
        assert (first.status, first.new_articles) == ("fetched", 2)
        entries["n"] = 3  # the publisher adds an entry: a new ETag
        second = harness.poll(feed_id, T0 + timedelta(minutes=20))
        assert (second.status, second.new_articles) == ("fetched", 1)
        assert len(second.entries) == 1  # the two stored entries were not even parsed again
        articles = harness.count(m.Article)

        before = harness.feed(feed_id)
        third = harness.poll(feed_id, T0 + timedelta(minutes=40))
        assert third.status == "not_modified"
        assert server.requests_to("/rss")[-1].headers["if-none-match"] == '"v3"'
    after = harness.feed(feed_id)
    assert harness.count(m.Article) == articles == 3
    assert after.articles_seen == 3 and after.failures == 0 and after.last_error is None
    assert after.last_polled_at == T0 + timedelta(minutes=40) > before.last_polled_at
    assert (after.etag, after.body_hash, after.title) == (before.etag, before.body_hash, "Wire")
    # Hourly entries: polled every half hour, within the bounds.
    assert after.entry_gap_seconds == 3600
    assert after.next_poll_at == T0 + timedelta(minutes=40, seconds=1800)


def test_an_entry_that_cannot_be_stored_holds_back_nothing_and_is_stored_next_poll(harness, monkeypatch, caplog):
    """A bug one entry's text triggers (here: raised after the entry's rows were written, as a
    crash mid-entry would) rolls that entry back, names it, and lets the others through; the
    next poll fetches the whole feed again (no validators kept) and stores it."""
    real = polling.process_entry
    broken = {"g1"}

    def process_entry(session, feed_id, raw, *args, **kwargs):
        outcome = real(session, feed_id, raw, *args, **kwargs)
        if raw.guid in broken:
            raise ValueError(f"cannot store {raw.guid}")
        return outcome

    monkeypatch.setattr(polling, "process_entry", process_entry)
    with FeedServer() as server:
        server.route("/rss", lambda seen: _versioned(seen, 3))
        feed_id = harness.add(server.url("/rss"))
        with caplog.at_level("WARNING", logger="newsmon.polling"):
            first = harness.poll(feed_id, T0)
        assert [raw.guid for raw in first.failed] == ["g1"] and first.new_articles == 2
        # On SQLite the three were one transaction (store_batch): rolled back together, then
        # stored one by one. On PostgreSQL each entry is its own transaction (several workers).
        together = f"feed {server.url('/rss')}: storing 3 entries together failed (ValueError)"
        assert (together in caplog.text) == (harness.db.dialect == "sqlite")
        assert f"feed {server.url('/rss')}: entry g1 could not be stored" in caplog.text
        with harness.db.session() as session:
            assert sorted(session.scalars(select(m.Article.guid))) == ["g0", "g2"]  # g1 rolled back whole
        assert harness.feed(feed_id).etag is None  # not remembered as stored: no 304 next time

        broken.clear()  # the bug is fixed (a new release)
        second = harness.poll(feed_id, T0 + timedelta(minutes=20))
        assert "if-none-match" not in server.requests_to("/rss")[-1].headers
        assert (second.status, second.new_articles, second.failed) == ("fetched", 1, [])
        assert harness.poll(feed_id, T0 + timedelta(minutes=40)).status == "not_modified"
    with harness.db.session() as session:
        assert sorted(session.scalars(select(m.Article.guid))) == ["g0", "g1", "g2"]
        assert session.scalar(select(func.count()).select_from(m.Claim).join(m.Article)
                              .where(m.Article.guid == "g1")) > 0


def _versioned(seen, count: int) -> Reply:
    etag = f'"v{count}"'
    if seen.headers.get("if-none-match") == etag:
        return Reply(304, headers={"ETag": etag})
    return Reply(200, rss(count), {"ETag": etag, "Content-Type": "application/rss+xml"})


def test_a_failing_feed_backs_off_alerts_once_when_down_and_once_when_it_recovers(harness):
    state = {"up": False}
    with FeedServer() as server:
        server.route("/rss", lambda seen: Reply(200, rss(2), {"Content-Type": "application/rss+xml"})
                     if state["up"] else Reply(404, b"nope"))
        feed_id = harness.add(server.url("/rss"))

        waits, now = [], T0
        for _ in range(5):  # fails for 1 + 2 + 4 + 8 quarter hours … polled when due
            report = harness.poll(feed_id, now)
            assert report.status == "failed" and report.error == "HTTP 404"
            feed = harness.feed(feed_id)
            waits.append((feed.next_poll_at - now).total_seconds())
            now = feed.next_poll_at
        assert waits == [900, 1800, 3600, 7200, 14400]
        assert feed.failures == 5 and feed.failing_since == T0 and feed.last_error == "HTTP 404"
        assert harness.count(m.FeedEvent) == 0  # the 5th poll was at T0 + 3h45: not down for 6 h yet
        harness.poll(feed_id, now)  # T0 + 7h45: down
        assert harness.count(m.FeedEvent) == 1
        harness.poll(feed_id, now + timedelta(hours=6))  # still down: no second event
        assert harness.count(m.FeedEvent) == 1

        state["up"] = True
        recovered = harness.poll(feed_id, now + timedelta(hours=12))
        assert recovered.status == "fetched"
        harness.poll(feed_id, now + timedelta(hours=13))
    lines = harness.deliver(now + timedelta(hours=14))
    health = [line for line in lines if line["kind"] in Kind.FEED_HEALTH]
    assert [line["kind"] for line in health] == ["feed_down", "feed_recovered"]
    assert health[0]["error"] == "HTTP 404" and health[0]["feed_url"].endswith("/rss")
    assert "is down since 2025-03-01 12:00 UTC: HTTP 404" in health[0]["text"]
    assert health[1]["failures"] == 7 and health[1]["rule"] == "everything"
    feed = harness.feed(feed_id)
    assert (feed.failures, feed.failing_since, feed.last_error, feed.down_alerted) == (0, None, None, False)
    assert len({line["alert_id"] for line in lines}) == len(lines)
    assert harness.deliver(now + timedelta(hours=15)) == lines  # nothing sent twice


def test_retry_after_and_ttl_are_floors(harness):
    with FeedServer() as server:
        server.reply("/busy", Reply(503, b"", {"Retry-After": "7200"}))
        server.feed("/slow", rss(3, ttl=180))  # <ttl> in minutes: 3 hours
        busy, slow = harness.add(server.url("/busy")), harness.add(server.url("/slow"))
        harness.poll(busy, T0)
        harness.poll(slow, T0)
    assert harness.feed(busy).next_poll_at == T0 + timedelta(hours=2)
    assert harness.feed(busy).last_error == "HTTP 503"
    assert harness.feed(slow).ttl_seconds == 3 * 3600
    assert harness.feed(slow).next_poll_at == T0 + timedelta(hours=3)


def test_410_disables_the_feed_and_says_so(harness, tmp_path):
    with FeedServer() as server:
        server.reply("/gone", Reply(410, b"gone"))
        feed_id = harness.add(server.url("/gone"))
        harness.poll(feed_id, T0)
    feed = harness.feed(feed_id)
    assert not feed.enabled and feed.last_error == "HTTP 410: the feed is gone"
    assert [line["kind"] for line in harness.deliver(T0)] == ["feed_down"]
    assert polling.due_feeds(harness.db, T0 + timedelta(days=30)) == []


@pytest.mark.parametrize("second_answer", ["fetched", "not_modified"])
def test_a_permanent_redirect_moves_the_feed(harness, second_answer):
    with FeedServer() as server:
        server.feed("/new", rss(2), etag='"e"')
        feed_id = harness.add(server.url("/old"))
        if second_answer == "not_modified":
            harness.poll(feed_id, T0)  # 404 first: nothing stored, no validators
            server.redirect("/old", "/new", status=301)
            with harness.db.session() as session:  # as if /old had served the same body before
                session.get_one(m.Feed, feed_id).etag = '"e"'
        else:
            server.redirect("/old", "/new", status=308)
        report = harness.poll(feed_id, T0 + timedelta(hours=1))
        assert report.status == second_answer
        assert harness.feed(feed_id).url == server.url("/new")
        server.redirect("/temp", "/new", status=302)
        temp = harness.add(server.url("/temp"))
        harness.poll(temp, T0)
        assert harness.feed(temp).url == server.url("/temp")  # a temporary hop moves nothing


def test_the_daemons_poller_claims_polls_and_batches_the_304s_of_healthy_feeds(harness):
    """What the daemon does each second: claim due feeds under a lease, poll them, and write the
    unchanged ones together. A 304 moves the feed's times on and ends its lease; a feed that was
    failing goes the full way, so its recovery is recorded."""
    from monitor.config import Settings
    from monitor.daemon import claim_due_feeds

    answers = {"/a": 0, "/b": 0}

    def flaky(seen):  # fails once, then behaves like the others
        answers["/b"] += 1
        return Reply(503) if answers["/b"] == 2 else _versioned(seen, 2)

    settings = Settings(fetch_allow_private=True, fetch_concurrency=2)
    with FeedServer() as server:
        server.route("/a", lambda seen: _versioned(seen, 2))
        server.route("/b", flaky)
        ids = [harness.add(server.url(path)) for path in ("/a", "/b")]

        async def round_(now):
            client = make_client()
            poller = polling.Poller(harness.db, settings, harness.ruleset, client)
            try:
                feeds = claim_due_feeds(harness.db, now, "w1", 10, 300)
                leased = [harness.feed(i).lease_owner for i in ids]
                reports = [await poller.poll(feed) for feed in feeds]
                await poller.flush()
            finally:
                await client.aclose()
            return leased, sorted((r.feed.rsplit("/", 1)[1], r.status) for r in reports)

        start = polling.utcnow()  # the poller keeps the real time; claims look ahead of it
        assert asyncio.run(round_(start))[1] == [("a", "fetched"), ("b", "fetched")]
        assert asyncio.run(round_(start + timedelta(hours=5)))[1] == [("a", "not_modified"), ("b", "failed")]
        assert harness.feed(ids[1]).failures == 1
        leased, reports = asyncio.run(round_(start + timedelta(hours=10)))
        assert leased == ["w1", "w1"] and reports == [("a", "not_modified"), ("b", "not_modified")]
        assert [seen.headers.get("if-none-match") for seen in server.requests_to("/a")] == [None, '"v2"', '"v2"']
    for feed_id in ids:
        feed = harness.feed(feed_id)
        assert (feed.lease_owner, feed.lease_expires_at, feed.failures, feed.last_error) == (None, None, 0, None)
        assert feed.last_polled_at == feed.last_success_at and feed.last_polled_at > start
        assert feed.next_poll_at > feed.last_polled_at and feed.etag == '"v2"'
    assert harness.count(m.Article) == 4  # two entries each, stored once


def test_a_cancelled_flush_leaves_its_write_to_the_next_flush_instead_of_losing_sight_of_it(sqlite_db):
    """The daemon's tick is cancelled when it stops, maybe while writing the unchanged feeds.
    The rows it took are written all the same, and the stop's own flush returns only once they
    are. (Another connection holds SQLite's write lock, so the write waits while it is cancelled.)"""
    import sqlite3

    from monitor.config import Settings

    polling.sync_config_feeds(sqlite_db, [FeedConfig(url="http://127.0.0.1:9/feed")])
    with sqlite_db.session() as session:
        feed_id = session.scalar(select(m.Feed.id))
    now = polling.utcnow()
    row = {"b_id": feed_id, "b_now": now, "b_etag": '"v9"', "b_last_modified": None, "b_ttl": None,
           "b_next": now + timedelta(hours=1)}
    locker = sqlite3.connect(sqlite_db.sqlite_path(), isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")

    async def scenario():
        poller = polling.Poller(sqlite_db, Settings(), None)
        poller._unchanged.append(row)
        tick = asyncio.create_task(poller.flush(wait=False))
        await asyncio.sleep(0.2)  # the write has started, and waits for the lock
        tick.cancel()
        with pytest.raises(asyncio.CancelledError):
            await tick
        asyncio.get_running_loop().call_later(0.3, locker.execute, "COMMIT")
        await poller.flush()  # the stop's flush
        with sqlite_db.session() as session:  # before the loop ends (its end waits for threads)
            feed = session.get_one(m.Feed, feed_id)
            assert (feed.etag, feed.last_polled_at) == ('"v9"', now)

    try:
        asyncio.run(scenario())
    finally:
        locker.close()
