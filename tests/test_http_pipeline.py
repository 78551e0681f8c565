"""An HTTP feed through the whole pipeline: served on 127.0.0.1, polled twice, 304 the second time."""

from __future__ import annotations

import asyncio

from feedserver import FeedServer
from sqlalchemy import func, select

from monitor import polling
from monitor.config import ChannelConfig, FeedConfig, Settings
from monitor.fetch.http import make_client
from monitor.rules import load_rules
from storage import models as m
from tests.pipeline_helpers import ROOT, SEEDS

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title><link>http://x/</link>
<item><guid>a1</guid><title>Minerals talks</title><pubDate>Sat, 22 Feb 2025 06:00:00 GMT</pubDate>
<description><![CDATA[<p>{first}</p>]]></description></item>
<item><guid>a2</guid><title>Overnight session</title><pubDate>Sat, 22 Feb 2025 18:00:00 GMT</pubDate>
<description><![CDATA[<p>{second}</p>]]></description></item></channel></rss>"""


def test_an_rss_feed_over_http_becomes_one_story_and_a_304_costs_nothing(sqlite_db, tmp_path):
    body = RSS.format(first=(SEEDS / "003_922b7d489b1430c1.txt").read_text().replace("\n\n", "</p><p>"),
                      second=(SEEDS / "000_05ca3c854a4f2115.txt").read_text().replace("\n", "</p><p>"))
    with FeedServer() as server:
        server.feed("/rss.xml", body.encode(), etag='"v1"')
        _poll_twice(sqlite_db, tmp_path, server.url("/rss.xml"))


def _poll_twice(sqlite_db, tmp_path, url):
    settings = Settings(database_url=sqlite_db.url, rules_dir=ROOT / "rules", fetch_allow_private=True,
                        feeds=[FeedConfig(url=url)],
                        channels={"jsonl": ChannelConfig(kind="jsonl", path=str(tmp_path / "a.jsonl")),
                                  "console": ChannelConfig(kind="console")})
    polling.sync_config_feeds(sqlite_db, settings.feeds)
    ruleset = load_rules(settings.rules_dir, set(settings.channels))

    async def poll():
        client = make_client()
        try:
            return await polling.poll_once(sqlite_db, settings, ruleset, client)
        finally:
            await client.aclose()

    first = asyncio.run(poll())
    assert first[0].status == "fetched" and first[0].new_articles == 2
    second = asyncio.run(poll())
    assert second[0].status == "not_modified"
    with sqlite_db.session() as session:
        assert session.scalar(select(func.count()).select_from(m.Story)) == 1
        devs = session.scalars(select(m.Development.text)).all()
        feed = session.scalars(select(m.Feed)).one()
    assert any("updated version of the agreement" in t for t in devs)
    assert feed.etag == '"v1"' and feed.failures == 0
