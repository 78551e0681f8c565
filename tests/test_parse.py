"""parse_feed: the fixture table in tests/data/feeds/expected.yaml, then the rules around it."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml

from monitor.errors import FeedError
from monitor.fetch.parse import ParsedFeed, parse_feed

FEEDS = Path(__file__).parent / "data" / "feeds"
TABLE = yaml.safe_load((FEEDS / "expected.yaml").read_text(encoding="utf-8"))
DEFAULT_URL = "https://feeds.example.com/x/feed"


def as_utc(value):
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC) if value else None
    return datetime.fromisoformat(str(value)).astimezone(UTC)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_fixture(name):
    case = TABLE[name]
    body = (FEEDS / name).read_bytes()
    url = case.get("url", DEFAULT_URL)
    if "error" in case:
        with pytest.raises(FeedError) as raised:
            parse_feed(body, url, case.get("headers"))
        assert raised.value.message == case["error"]
        assert raised.value.url == url
        return
    parsed = parse_feed(body, url, case.get("headers"))
    expect = case["expect"]
    for key in ("title", "format", "ttl_seconds"):
        if key in expect:
            assert getattr(parsed, key) == expect[key], key
    assert len(parsed.warnings) == case.get("warnings", 0), parsed.warnings
    assert len(parsed.entries) == len(expect["entries"])
    for entry, wanted in zip(parsed.entries, expect["entries"], strict=True):
        for key, value in wanted.items():
            if key == "body_has":
                assert value in entry.body
            elif key == "published_at":
                assert entry.published_at == as_utc(value)
            else:
                assert getattr(entry, key) == value, key
        assert entry.published_at is None or entry.published_at.tzinfo == UTC


def test_every_fixture_is_in_the_table():
    fixtures = {path.name for path in FEEDS.iterdir() if path.suffix in (".xml", ".json", ".html")}
    assert fixtures == set(TABLE)


# -- helpers ------------------------------------------------------------------------------------


def rss(items: list[tuple[str, datetime | None]], title: str | None = "Wire") -> bytes:
    parts = []
    for guid, when in items:
        date = f"<pubDate>{format_datetime(when)}</pubDate>" if when else ""
        parts.append(f"<item><title>{guid}</title><guid isPermaLink='false'>{guid}</guid>{date}</item>")
    head = f"<title>{title}</title>" if title else ""
    return f'<rss version="2.0"><channel>{head}{"".join(parts)}</channel></rss>'.encode()


def guids(parsed: ParsedFeed) -> list[str]:
    return [entry.guid for entry in parsed.entries]


T0 = datetime(2024, 5, 1, tzinfo=UTC)


# -- the entry bound ----------------------------------------------------------------------------


def test_the_newest_entries_are_kept_in_document_order():
    order = [3, 0, 5, 1, 4, 2]
    parsed = parse_feed(rss([(f"g{n}", T0 + timedelta(hours=n)) for n in order]), DEFAULT_URL, max_entries=3)
    assert guids(parsed) == ["g3", "g5", "g4"]
    assert parsed.warnings == ["kept the newest 3 of 6 entries"]


def test_undated_entries_yield_to_dated_ones_and_keep_their_order():
    items = [("u1", None), ("d1", T0), ("u2", None), ("d2", T0 + timedelta(days=1))]
    assert guids(parse_feed(rss(items), DEFAULT_URL, max_entries=3)) == ["u1", "d1", "d2"]
    assert guids(parse_feed(rss([(f"u{n}", None) for n in range(5)]), DEFAULT_URL, max_entries=2)) == [
        "u0",
        "u1",
    ]


def test_a_huge_feed_is_cut_before_parsing():
    items = [(f"g{n}", T0 - timedelta(minutes=n)) for n in range(20_000)]  # newest first
    started = time.monotonic()
    parsed = parse_feed(rss(items), DEFAULT_URL, max_entries=50)
    assert time.monotonic() - started < 5
    assert guids(parsed) == [f"g{n}" for n in range(50)]
    assert parsed.warnings == ["kept the newest 50 of 20000 entries"]


def test_a_huge_feed_listed_oldest_first_still_keeps_the_newest():
    items = [(f"g{n}", T0 + timedelta(minutes=n)) for n in range(20_000)]  # oldest first
    parsed = parse_feed(rss(items), DEFAULT_URL, max_entries=50)
    assert guids(parsed) == [f"g{n}" for n in range(19_950, 20_000)]


def test_a_huge_json_feed_is_bounded_too():
    items = [{"id": str(n), "content_text": "x"} for n in range(30_000)]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    parsed = parse_feed(body, DEFAULT_URL, max_entries=10)
    assert guids(parsed) == [str(n) for n in range(10)]
    assert parsed.warnings == ["kept the newest 10 of 30000 entries"]


def test_repeated_guids_keep_the_first():
    parsed = parse_feed(rss([("same", T0), ("other", T0), ("same", T0 + timedelta(days=1))]), DEFAULT_URL)
    assert guids(parsed) == ["same", "other"]
    assert parsed.entries[0].published_at == T0
    assert parsed.warnings == ["dropped 1 entries that repeat an earlier id"]


# -- what is and is not a feed ------------------------------------------------------------------


def test_a_valid_feed_with_no_entries_is_not_an_error():
    parsed = parse_feed(rss([]), DEFAULT_URL)
    assert parsed.entries == [] and parsed.title == "Wire" and parsed.warnings == []


@pytest.mark.parametrize(
    ("body", "headers", "sentence"),
    [
        (b"   \n\t ", {}, "empty response"),
        (
            b"<?xml version='1.0'?><config><x/></config>",
            {},
            "not a feed: no RSS, Atom or JSON Feed document found",
        ),
        (
            b"<html><body>Moved</body></html>",
            {"Content-Type": "application/rss+xml"},
            "not a feed: got an HTML page",
        ),
        (b"<p>hello</p>", {"Content-Type": "text/html"}, "not a feed: got an HTML page"),
        (b'{"items": [', {"Content-Type": "application/feed+json"}, "not a feed: invalid JSON at line 1"),
        (b'{"title": "no version", "items": []}', {}, "not a feed: JSON without a JSON Feed version"),
        (
            b'{"version": "https://example.com/v2", "items": []}',
            {},
            "not a feed: JSON without a JSON Feed version",
        ),
        (b"\x1f\x8b\x08\x00garbage", {}, "not a feed: a damaged gzip file"),
    ],
)
def test_not_a_feed_sentences(body, headers, sentence):
    with pytest.raises(FeedError) as raised:
        parse_feed(body, DEFAULT_URL, headers)
    assert raised.value.message == sentence
    assert str(raised.value) == f"feed {DEFAULT_URL}: {sentence}"


def test_a_broken_feed_that_still_has_entries_is_accepted_with_a_warning():
    body = b'<rss version="2.0"><channel><title>T</title><item><title>A &amp B</title><guid>1</guid></item>'
    parsed = parse_feed(body, DEFAULT_URL)
    assert [entry.title for entry in parsed.entries] == ["A & B"]
    assert len(parsed.warnings) == 1 and parsed.warnings[0].startswith("XML error at line 1:")


def test_a_gzipped_file_without_content_encoding_is_unpacked():
    parsed = parse_feed(gzip.compress(rss([("g", T0)])), DEFAULT_URL)
    assert guids(parsed) == ["g"]


def test_json_content_type_with_an_xml_body_is_read_as_xml():
    parsed = parse_feed(rss([("g", T0)]), DEFAULT_URL, {"Content-Type": "application/json"})
    assert guids(parsed) == ["g"]


def test_json_in_a_non_utf8_charset_and_with_a_bom():
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Café", "items": [{"id": "1"}]}
    latin = json.dumps(feed, ensure_ascii=False).encode("latin-1")
    assert (
        parse_feed(latin, DEFAULT_URL, {"Content-Type": "application/json; charset=iso-8859-1"}).title
        == "Café"
    )
    with_bom = b"\xef\xbb\xbf" + json.dumps(feed, ensure_ascii=False).encode()
    assert parse_feed(with_bom, DEFAULT_URL).title == "Café"


# -- fields ---------------------------------------------------------------------------------------


def test_source_falls_back_to_the_host_when_the_feed_has_no_title():
    parsed = parse_feed(rss([("g", T0)], title=None), "https://wire.example.net/feed.xml")
    assert parsed.title is None and parsed.entries[0].source == "wire.example.net"


def test_an_opaque_guid_is_not_turned_into_a_url():
    # feedparser resolves ids like links when given a base URL; the feed moving must not change ids.
    body = b'<rss version="2.0"><channel><item><guid>12345</guid><link>/story/1</link></item></channel></rss>'
    one = parse_feed(body, "https://a.example.com/rss")
    two = parse_feed(body, "https://b.example.com/rss")
    assert one.entries[0].guid == two.entries[0].guid == "12345"
    assert one.entries[0].url == "https://a.example.com/story/1"


def test_non_http_links_are_dropped():
    item = b"<item><title>T</title><link>javascript:alert(1)</link></item>"
    body = b'<rss version="2.0"><channel>' + item + b"</channel></rss>"
    assert parse_feed(body, DEFAULT_URL).entries[0].url is None


def test_the_longest_of_content_and_summary_is_the_body():
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>x</id>
      <summary type="html">&lt;p&gt;A much longer summary than the content&lt;/p&gt;</summary>
      <content type="text">Short</content></entry></feed>"""
    entry = parse_feed(body, DEFAULT_URL).entries[0]
    assert entry.body == "<p>A much longer summary than the content</p>" and entry.body_is_html


def test_html_is_left_for_normalise_not_sanitised():
    # Sanitising is off (newsmon never renders entry HTML): the markup arrives as published.
    body = b"""<rss version="2.0"><channel><item><guid>1</guid>
      <description>&lt;p onclick="x()"&gt;Hi&lt;script&gt;evil()&lt;/script&gt;&lt;/p&gt;</description>
      </item></channel></rss>"""
    assert parse_feed(body, DEFAULT_URL).entries[0].body == '<p onclick="x()">Hi<script>evil()</script></p>'


def test_entries_with_nothing_in_them_are_skipped():
    body = b'<rss version="2.0"><channel><item></item><item><title>Real</title></item></channel></rss>'
    parsed = parse_feed(body, DEFAULT_URL)
    assert [entry.title for entry in parsed.entries] == ["Real"]
    assert parsed.warnings == ["skipped 1 entries with no title, link or text"]


# -- entries stored last time are not parsed again ---------------------------------------------


def test_entries_with_a_known_digest_are_left_unparsed_and_edits_count_as_new():
    day = [(f"g{n}", T0 + timedelta(hours=n)) for n in range(5)]
    first = parse_feed(rss(day), DEFAULT_URL)
    assert guids(first) == [f"g{n}" for n in range(5)] and len(set(first.entry_digests)) == 5

    newer = rss([("g5", T0 + timedelta(hours=5)), *day]).replace(b"<title>g2</title>", b"<title>g2 (updated)</title>")
    second = parse_feed(newer, DEFAULT_URL, known=set(first.entry_digests))
    assert guids(second) == ["g5", "g2"]  # the new entry and the edited one; three left unparsed
    assert [e.title for e in second.entries] == ["g5", "g2 (updated)"]
    assert second.title == "Wire" and second.warnings == [] and len(second.entry_digests) == 6
    # Each entry names its element's digest (a full-text poll that defers an entry forgets it).
    assert [e.digest for e in first.entries] == list(first.entry_digests)
    assert [e.digest for e in second.entries] == [second.entry_digests[0], second.entry_digests[3]]

    unchanged = parse_feed(rss(day, title="Wire, renamed"), DEFAULT_URL, known=set(first.entry_digests))
    assert (guids(unchanged), unchanged.title) == ([], "Wire, renamed")  # a valid feed, nothing new in it


def test_a_document_that_cannot_be_cut_safely_is_parsed_whole():
    day = [(f"g{n}", T0 + timedelta(hours=n)) for n in range(3)]
    known = set(parse_feed(rss(day), DEFAULT_URL).entry_digests)
    # A self-closed entry element: the entries cannot be told apart by their tags, so no digests.
    odd = rss(day).replace(b"</channel>", b"<item/></channel>")
    parsed = parse_feed(odd, DEFAULT_URL, known=known)
    assert guids(parsed) == ["g0", "g1", "g2"] and parsed.entry_digests == ()
    assert [e.digest for e in parsed.entries] == [None, None, None]
    # The same bytes under another declared encoding read differently: every entry is new.
    latin = b'<?xml version="1.0" encoding="iso-8859-1"?>' + rss(day)
    assert guids(parse_feed(latin, DEFAULT_URL, known=known)) == ["g0", "g1", "g2"]
