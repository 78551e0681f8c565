"""`newsmon feeds add|list|remove|import|export` against feeds and pages on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from feedserver import FeedServer, Reply
from test_feed_polling import rss

from monitor.cli import cli
from monitor.feeds import discover

ROOT = Path(__file__).resolve().parent.parent
PAGE = b"""<html><head><title>Example news</title>
<link rel="alternate" type="application/rss+xml" title="Top stories" href="/rss">
<link rel="stylesheet" href="/site.css">
</head><body>news</body></html>"""


def invoke(tmp_path: Path, *args: str):
    config = tmp_path / "newsmon.toml"
    if not config.exists():
        config.write_text(f'data_dir = "data"\nrules_dir = "{ROOT / "rules"}"\nfetch_allow_private = true\n'
                          f'[[feeds]]\nurl = "{ROOT / "seeds"}"\n')
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def test_discover_reads_a_pages_feed_links():
    html = (b'<head><base href="https://example.org/news/"><link rel="alternate" type="application/atom+xml" '
            b'href="atom.xml" title="Atom"><link rel="Alternate feed" type="application/rss+xml; charset=utf-8" '
            b'href="https://example.org/rss"><link rel="alternate" type="text/html" href="/fr/"></head>')
    assert [(link.url, link.title) for link in discover(html, "https://example.org/")] == [
        ("https://example.org/news/atom.xml", "Atom"), ("https://example.org/rss", None)]


def test_add_list_remove_import_export(tmp_path):
    with FeedServer() as server:
        server.feed("/rss", rss(5, title="Top stories"))
        server.feed("/atom", rss(1, title="Comments"))
        server.reply("/", Reply(200, PAGE, {"Content-Type": "text/html; charset=utf-8"}))
        server.reply("/two", Reply(200, PAGE.replace(b"</head>", b'<link rel="alternate" '
                                                     b'type="application/atom+xml" href="/atom"></head>'),
                                   {"Content-Type": "text/html"}))
        server.reply("/blank", Reply(200, b"<html><body>hi</body></html>", {"Content-Type": "text/html"}))
        server.reply("/missing", Reply(404, b""))

        added = invoke(tmp_path, "feeds", "add", server.url("/rss"), "--interval", "10m")
        assert added.exit_code == 0, added.output
        assert "added: Top stories — 5 entries" in added.output
        assert "already watched" in invoke(tmp_path, "feeds", "add", server.url("/rss")).output

        page = invoke(tmp_path, "feeds", "add", server.url("/"))
        assert "advertises the feed " + server.url("/rss") in page.output and "already watched" in page.output

        two = invoke(tmp_path, "feeds", "add", server.url("/two"))
        assert two.exit_code == 1 and "advertises 2 feeds" in two.output

        for path, why in (("/blank", "not a feed: got an HTML page"), ("/missing", "HTTP 404")):
            refused = invoke(tmp_path, "feeds", "add", server.url(path))
            assert refused.exit_code == 2 and why in refused.output

        listed = json.loads(invoke(tmp_path, "feeds", "list", "--json").output)
        http = [f for f in listed if f["kind"] == "http"]
        assert [(f["url"], f["title"], f["interval_seconds"], f["status"]) for f in http] == [
            (server.url("/rss"), "Top stories", 600, "new")]
        run = invoke(tmp_path, "run", "--once")
        assert run.exit_code == 0, run.output
        text = invoke(tmp_path, "feeds", "list").output
        assert f"ok           5 articles  {server.url('/rss')}  (Top stories)" in text
        assert "last success: 20" in text and "from now)" in text

        exported = invoke(tmp_path, "feeds", "export").output
        assert f'xmlUrl="{server.url("/rss")}"' in exported and "seeds" not in exported
        (tmp_path / "feeds.opml").write_text(exported.replace("/rss", "/other"))
        imported = invoke(tmp_path, "feeds", "import", str(tmp_path / "feeds.opml"))
        assert "1 feed(s) added, 0 already watched" in imported.output

        removed = invoke(tmp_path, "feeds", "remove", server.url("/rss"))
        assert "disabled (its 5 article(s) stay" in removed.output
        assert "removed" in invoke(tmp_path, "feeds", "remove", server.url("/other")).output
        seeds = invoke(tmp_path, "feeds", "remove", str(ROOT / "seeds"))
        assert seeds.exit_code == 2 and "listed in the config file" in seeds.output
        final = json.loads(invoke(tmp_path, "feeds", "list", "--json").output)
        assert [(f["url"].rsplit("/", 1)[-1], f["status"]) for f in final] == [("rss", "disabled"), ("seeds", "ok")]


def test_the_seeds_fixture_feed_gives_way_to_feeds_added_by_hand(tmp_path):
    """With no feed in the config, the seeds are the feed (the README's first run); once the
    user adds feeds of their own, the fixture is retired, not polled beside them for ever."""
    config = tmp_path / "newsmon.toml"
    config.write_text(f'data_dir = "data"\nrules_dir = "{ROOT / "rules"}"\nseeds_dir = "{ROOT / "seeds"}"\n'
                      "fetch_allow_private = true\n")
    first = invoke(tmp_path, "run", "--once")
    assert first.exit_code == 0 and "2 new article(s)" in first.output
    with FeedServer() as server:
        server.feed("/rss", rss(2, title="Own feed"))
        assert invoke(tmp_path, "feeds", "add", server.url("/rss")).exit_code == 0
        second = invoke(tmp_path, "run", "--once")
        assert second.exit_code == 0, second.output
        assert "2 new article(s)" in second.output and "the seeds fixture feed is disabled" in second.output
        assert not [line for line in second.output.splitlines() if line.startswith(f"feed {ROOT / 'seeds'}:")]
        listed = json.loads(invoke(tmp_path, "feeds", "list", "--json").output)
    assert {(feed["url"], feed["enabled"]) for feed in listed} == {(str(ROOT / "seeds"), False), (server.url("/rss"), True)}
