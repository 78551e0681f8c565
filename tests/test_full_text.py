"""Full-text feeds: summary-only entries get their article page's main text, fetched from 127.0.0.1.

Real feed and article pages on the loopback server, real trafilatura, real SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from html import escape

import pytest
from click.testing import CliRunner
from feedserver import FeedServer, Reply
from sqlalchemy import select

from monitor import USER_AGENT, polling
from monitor.cli import cli
from monitor.config import ChannelConfig, FeedConfig, Settings
from monitor.feeds import describe
from monitor.fetch.http import make_client
from monitor.rules import load_rules
from storage import models as m
from storage.listing import list_feeds
from tests.pipeline_helpers import ROOT, SEEDS

STORY = [p for p in (SEEDS / "003_922b7d489b1430c1.txt").read_text().split("\n") if p.strip()]
BOILERPLATE = ["Subscribe to our newsletter", "All rights reserved", "Most read today", "Cookie settings",
               "Sign in to comment"]


def page(paragraphs: list[str]) -> bytes:
    """A news site's article page: navigation, sidebar, related links and footer around the story."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!doctype html><html><head><title>Minerals deal - Example News</title></head><body>
<header><nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/sport">Sport</a>
<a href="/subscribe">Subscribe to our newsletter</a> <a href="/cookies">Cookie settings</a></nav></header>
<main><article><h1>Ukraine and US draft minerals agreement</h1>
<p class="byline">By Staff Reporter, 22 February 2025</p>{body}</article>
<aside><h2>Most read today</h2><ul><li><a href="/a/1">Storm hits coast</a></li>
<li><a href="/a/2">Markets rally on rate hopes</a></li><li><a href="/a/3">Cup final tickets sold out</a></li></ul></aside>
<section class="comments"><p>Sign in to comment.</p></section></main>
<footer><p>© 2025 Example News. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>""".encode()


def feed(items: list[tuple[str, str, str]]) -> bytes:
    """RSS with (guid, link path or URL, description) items: the description is all a reader gets."""
    rows = "".join(f"<item><guid>{guid}</guid><title>Report {guid}</title><link>{link}</link>"
                   f"<pubDate>Sat, 22 Feb 2025 0{index}:00:00 GMT</pubDate>"
                   f"<description>{escape(summary)}</description></item>"
                   for index, (guid, link, summary) in enumerate(items))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{rows}</channel></rss>'.encode()


def poll(db, tmp_path, url: str, full_text: bool = True, **settings):
    config = Settings(database_url=db.url, rules_dir=ROOT / "rules", fetch_allow_private=True,
                      feeds=[FeedConfig(url=url, full_text=full_text)],
                      channels={"jsonl": ChannelConfig(kind="jsonl", path=str(tmp_path / "a.jsonl")),
                                "console": ChannelConfig(kind="console")}, **settings)
    polling.sync_config_feeds(db, config.feeds)
    ruleset = load_rules(config.rules_dir, set(config.channels))

    async def go():
        async with make_client() as client:
            return await polling.poll_once(db, config, ruleset, client)

    return asyncio.run(go())


def stored(db) -> dict[str, list[str]]:
    """Each guid's stored texts, oldest version first."""
    with db.session() as session:
        rows = session.execute(select(m.Article.guid, m.Article.text).order_by(m.Article.version))
        texts: dict[str, list[str]] = {}
        for guid, text in rows:
            texts.setdefault(guid, []).append(text)
        return texts


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


def test_summary_only_entries_get_the_pages_main_text_once(db, tmp_path, server):
    server.reply("/story", Reply(200, page(STORY), {"Content-Type": "text/html; charset=utf-8"}))
    entries = [("a1", "/story", STORY[0][:200])]
    server.feed("/rss", lambda: feed(entries))

    assert poll(db, tmp_path, server.url("/rss"))[0].new_articles == 1
    text = stored(db)["a1"][0]
    assert STORY[2][:120] in text and STORY[-1][:80] in text  # the article's body, beginning to end
    for noise in [*BOILERPLATE, "Storm hits coast", "Privacy policy"]:
        assert noise not in text
    [request] = server.requests_to("/story")
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["accept"].startswith("text/html")  # a page, not a feed, is asked for

    # The feed changes (a new entry) but a1 is the same entry: its page is not fetched again,
    # and the stored article is not turned into a new version.
    server.reply("/second", Reply(200, page(STORY[1:]), {"Content-Type": "text/html"}))
    entries.append(("a2", "/second", STORY[1][:200]))
    assert poll(db, tmp_path, server.url("/rss"))[0].new_articles == 1
    assert len(server.requests_to("/story")) == 1 and len(server.requests_to("/second")) == 1
    assert len(stored(db)["a1"]) == 1


def test_a_failed_or_empty_page_keeps_the_summary_and_warns(sqlite_db, tmp_path, server, caplog):
    server.reply("/empty", Reply(200, b"<html><body></body></html>", {"Content-Type": "text/html"}))
    server.reply("/menu", Reply(200, b"<html><body><nav><a href='/'>Home</a></nav></body></html>",
                                {"Content-Type": "text/html"}))
    server.feed("/rss", feed([("gone", "/missing", "Officials met in Kyiv on Friday."),
                              ("empty", "/empty", "Talks resumed in Riyadh on Tuesday."),
                              ("menu", "/menu", "Prices rose 3% in March.")]))
    with caplog.at_level(logging.WARNING, logger="newsmon"):
        report = poll(sqlite_db, tmp_path, server.url("/rss"))[0]
    assert report.new_articles == 3
    assert stored(sqlite_db) == {"gone": ["Officials met in Kyiv on Friday."],
                                 "empty": ["Talks resumed in Riyadh on Tuesday."],
                                 "menu": ["Prices rose 3% in March."]}
    assert f"article page {server.url('/missing')}: HTTP 404; stored with the feed's summary" in caplog.text
    assert f"article page {server.url('/empty')}: no article text found on the page" in caplog.text
    assert f"article page {server.url('/menu')}: the page has no more text than the summary" in caplog.text


def test_pages_are_never_requested_without_full_text_or_for_entries_with_a_body(sqlite_db, tmp_path, server):
    server.reply("/story", Reply(200, page(STORY), {"Content-Type": "text/html"}))
    server.feed("/plain", feed([("s1", "/story", STORY[0][:200])]))
    assert poll(sqlite_db, tmp_path, server.url("/plain"), full_text=False)[0].new_articles == 1
    assert stored(sqlite_db)["s1"] == [STORY[0][:200]]

    whole = "\n".join(STORY)  # an entry that carries the whole article needs no page
    server.feed("/whole", feed([("w1", "/story", whole)]))
    reports = {report.feed: report for report in poll(sqlite_db, tmp_path, server.url("/whole"))}
    assert reports[server.url("/whole")].new_articles == 1
    assert server.requests_to("/story") == []


def test_an_oversize_page_is_cut_off_and_the_summary_kept(sqlite_db, tmp_path, server, caplog):
    endless = b"<html><body><article>" + b"<p>" + b"word " * 2_400_000 + b"</p></article></body></html>"
    server.reply("/huge", Reply(200, endless, {"Content-Type": "text/html"}, chunked=True))
    server.feed("/rss", feed([("h1", "/huge", "A short teaser.")]))
    with caplog.at_level(logging.WARNING, logger="newsmon"):
        assert poll(sqlite_db, tmp_path, server.url("/rss"))[0].new_articles == 1
    assert stored(sqlite_db) == {"h1": ["A short teaser."]}
    assert f"article page {server.url('/huge')}: response larger than 10 MB" in caplog.text


def test_pages_of_one_host_are_fetched_politely(sqlite_db, tmp_path, server):
    for index in range(6):
        server.reply(f"/p{index}", Reply(200, page(STORY), {"Content-Type": "text/html"}, delay=0.15))
    server.feed("/rss", feed([(f"g{index}", f"/p{index}", f"Teaser {index}.") for index in range(6)]))
    poll(sqlite_db, tmp_path, server.url("/rss"), fetch_per_host=2)
    assert sum(len(server.requests_to(f"/p{index}")) for index in range(6)) == 6
    assert server.most_in_flight == 2


def test_feeds_add_full_text_is_listed_and_travels_in_opml(tmp_path, server):
    server.feed("/rss", feed([("a1", "/story", "Teaser.")]))
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "data"\nrules_dir = "{ROOT / "rules"}"\nfetch_allow_private = true\n'
                      f'[[feeds]]\nurl = "{SEEDS}"\n')

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)

    assert invoke("feeds", "add", server.url("/rss"), "--full-text").exit_code == 0
    assert f"{server.url('/rss')}  (Wire)  [full text]" in invoke("feeds", "list").output
    listed = {f["url"]: f["full_text"] for f in json.loads(invoke("feeds", "list", "--json").output)}
    assert listed == {server.url("/rss"): True, str(SEEDS.resolve()): False}

    exported = invoke("feeds", "export").output
    assert 'newsmon:fullText="true"' in exported
    other = tmp_path / "other"
    other.mkdir()
    (other / "feeds.opml").write_text(exported)
    config = other / "newsmon.toml"
    config.write_text(f'data_dir = "data"\nrules_dir = "{ROOT / "rules"}"\n')
    assert "1 feed(s) added" in invoke("feeds", "import", str(other / "feeds.opml")).output
    assert [f["full_text"] for f in json.loads(invoke("feeds", "list", "--json").output) if f["kind"] == "http"] \
        == [True]


def test_the_config_file_sets_full_text_on_a_feed_it_lists(sqlite_db):
    url = "http://127.0.0.1:9/rss"
    polling.sync_config_feeds(sqlite_db, [FeedConfig(url=url)])
    polling.sync_config_feeds(sqlite_db, [FeedConfig(url=url, full_text=True)])
    with sqlite_db.session() as session:
        assert session.scalars(select(m.Feed.full_text)).one() is True


def test_the_pages_headline_is_not_stored_again_as_the_first_sentence(db, tmp_path, server):
    server.reply("/story", Reply(200, page(STORY), {"Content-Type": "text/html; charset=utf-8"}))
    rss = feed([("h1", "/story", STORY[0][:200])]).replace(b"<title>Report h1</title>",
                                                            b"<title>Ukraine and US draft minerals agreement</title>")
    server.feed("/rss", rss)

    assert poll(db, tmp_path, server.url("/rss"))[0].new_articles == 1
    text = stored(db)["h1"][0]
    assert "Ukraine and US draft minerals agreement" not in text  # the <h1>, which is the entry's title
    assert STORY[2][:120] in text


def dated_feed(items: list[tuple[str, str, str, int]]) -> bytes:
    """RSS of (guid, link, summary, minute) items, newest first as feeds list them."""
    rows = "".join(f"<item><guid>{guid}</guid><title>Report {guid}</title><link>{link}</link>"
                   f"<pubDate>Sat, 22 Feb 2025 10:{minute:02d}:00 GMT</pubDate>"
                   f"<description>{escape(summary)}</description></item>"
                   for guid, link, summary, minute in sorted(items, key=lambda item: -item[3]))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{rows}</channel></rss>'.encode()


def feed_row(db) -> m.Feed:
    with db.session() as session:
        row = session.scalars(select(m.Feed).where(m.Feed.kind == "http")).one()
        session.expunge(row)
        return row


def test_pages_beyond_the_cap_wait_for_the_next_polls_oldest_first(db, tmp_path, server, caplog):
    items = [(f"g{index}", f"/p{index}", f"Teaser {index}.", index) for index in range(7)]
    for index in range(8):
        server.reply(f"/p{index}", Reply(200, page([f"Dispatch number {index} from Kyiv.", *STORY]),
                                         {"Content-Type": "text/html"}))
    server.feed("/rss", lambda: dated_feed(items), etag='"v1"')  # answers 304 to a kept validator
    url = server.url("/rss")

    def fetched() -> list[str]:
        return [seen.path for seen in server.requests if seen.path.startswith("/p")]

    with caplog.at_level(logging.WARNING, logger="newsmon"):
        assert poll(db, tmp_path, url, full_text_pages_per_poll=3)[0].new_articles == 3
    assert sorted(fetched()) == ["/p0", "/p1", "/p2"]  # the oldest three, one request each
    assert sorted(stored(db)) == ["g0", "g1", "g2"]  # the others are not stored with their summary
    assert all(STORY[2][:120] in texts[0] for texts in stored(db).values())
    assert f"feed {url}: 4 summary-only entries wait for their article pages (at most 3 pages a poll)" \
        in caplog.text
    row = feed_row(db)
    assert row.pages_waiting == 4 and row.etag is None and row.body_hash is None
    assert len(row.entry_digests.split()) == 3  # only the stored entries' elements are skipped next time
    assert (row.next_poll_at - row.last_polled_at).total_seconds() <= Settings().min_interval * 1.1
    with db.session() as session:
        [listed] = [feed for feed in list_feeds(session) if feed["url"] == url]
    assert listed["pages_waiting"] == 4
    assert "       4 entries wait for their article pages" in "\n".join(describe(listed, row.last_polled_at))

    items.append(("g7", "/p7", "Teaser 7.", 7))  # news arrives while the feed catches up: it comes last
    assert poll(db, tmp_path, url, full_text_pages_per_poll=3)[0].new_articles == 3
    assert "if-none-match" not in server.requests_to("/rss")[-1].headers
    assert sorted(fetched()[3:]) == ["/p3", "/p4", "/p5"]
    assert feed_row(db).pages_waiting == 2

    assert poll(db, tmp_path, url, full_text_pages_per_poll=3)[0].new_articles == 2
    assert sorted(fetched()[6:]) == ["/p6", "/p7"]
    row = feed_row(db)
    assert row.pages_waiting is None and row.etag == '"v1"' and row.entry_digests and len(row.entry_digests.split()) == 8

    assert poll(db, tmp_path, url, full_text_pages_per_poll=3)[0].status == "not_modified"  # caught up: a 304
    assert sorted(fetched()) == [f"/p{index}" for index in range(8)]  # each page exactly once
    texts = stored(db)
    assert sorted(texts) == [f"g{index}" for index in range(8)]
    assert all(len(versions) == 1 and STORY[2][:120] in versions[0] for versions in texts.values())


def test_full_text_pages_per_poll_is_a_documented_setting(monkeypatch, tmp_path):
    from monitor.config import load_settings
    from monitor.errors import ConfigError

    assert Settings().full_text_pages_per_poll == 30
    monkeypatch.setenv("NEWSMON_FULL_TEXT_PAGES_PER_POLL", "5")
    assert load_settings().full_text_pages_per_poll == 5
    monkeypatch.setenv("NEWSMON_FULL_TEXT_PAGES_PER_POLL", "0")
    with pytest.raises(ConfigError, match="full_text_pages_per_poll"):
        load_settings()
    documented = (ROOT / "docs" / "configuration.md").read_text()
    assert "| `full_text_pages_per_poll` | `30` |" in documented
