"""fetch_http end to end against a real loopback server: what a user sees for each case."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from feedserver import FeedServer, Reply

from monitor import USER_AGENT
from monitor.fetch import Failed, Fetched, NotModified
from monitor.fetch.http import HostGate, fetch_http, make_client


@pytest.fixture
def server():
    with FeedServer() as running:
        yield running


def rss(*titles: str, ttl: int | None = None, dated: bool = True) -> bytes:
    """A small RSS 2.0 feed; item i is published i hours after 2024-01-01."""
    items = "".join(
        f"<item><title>{title}</title><guid>id-{index}</guid><link>/a/{index}</link>"
        + (
            f"<pubDate>{format_datetime(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=index))}</pubDate>"
            if dated
            else ""
        )
        + f"<description>Text of {title}.</description></item>"
        for index, title in enumerate(titles)
    )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    channel = f"<channel><title>Test Wire</title>{ttl_tag}{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def fetch(url: str, **options):
    """One fetch with a fresh shared-style client; private addresses allowed (this is loopback)."""

    async def go():
        async with make_client() as client:
            return await fetch_http(client, url, **{"allow_private": True, **options})

    return asyncio.run(go())


def titles(result) -> list[str]:
    assert isinstance(result, Fetched), result
    return [entry.title for entry in result.entries]


# -- a normal feed, polled again and again ------------------------------------------------------


def test_fetched_entries_are_absolute_dated_and_sourced(server):
    server.feed("/rss", rss("Storm hits coast", "Ferry resumes"))
    result = fetch(server.url("/rss"))
    assert titles(result) == ["Storm hits coast", "Ferry resumes"]
    first = result.entries[0]
    assert first.url == server.url("/a/0")
    assert first.guid == "id-0"
    assert first.source == "Test Wire"
    assert first.published_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert result.title == "Test Wire"
    assert result.body_hash and len(result.body_hash) == 64
    assert server.requests_to("/rss")[0].headers["user-agent"] == USER_AGENT


def test_a_body_that_changes_between_polls(server):
    versions = iter([rss("One"), rss("One"), rss("One", "Two")])
    server.feed("/rss", lambda: next(versions))
    first = fetch(server.url("/rss"))
    assert titles(first) == ["One"]
    # The server ignores validators, but the body is byte-identical: not modified, not parsed.
    second = fetch(server.url("/rss"), body_hash=first.body_hash)
    assert isinstance(second, NotModified)
    third = fetch(server.url("/rss"), body_hash=first.body_hash)
    assert titles(third) == ["One", "Two"]
    assert third.body_hash != first.body_hash


def test_etag_gets_a_304_and_the_server_saw_if_none_match(server):
    server.feed("/rss", rss("One"), etag='"v1"')
    first = fetch(server.url("/rss"))
    assert first.etag == '"v1"'
    second = fetch(server.url("/rss"), etag=first.etag, body_hash=first.body_hash)
    assert second == NotModified(etag='"v1"')
    assert server.requests_to("/rss")[1].headers["if-none-match"] == '"v1"'


def test_last_modified_gets_a_304(server):
    stamp = "Mon, 01 Jan 2024 10:00:00 GMT"
    server.feed("/rss", rss("One"), last_modified=stamp)
    first = fetch(server.url("/rss"))
    assert first.last_modified == stamp
    second = fetch(server.url("/rss"), last_modified=stamp)
    assert isinstance(second, NotModified) and second.last_modified == stamp
    assert server.requests_to("/rss")[1].headers["if-modified-since"] == stamp


def test_a_server_ignoring_validators_still_costs_no_parse(server):
    server.feed("/rss", rss("One"), etag='"v1"', honour_conditional=False)
    first = fetch(server.url("/rss"))
    again = fetch(server.url("/rss"), etag='"v1"', body_hash=first.body_hash)
    assert isinstance(again, NotModified) and again.etag == '"v1"'


def test_gzip_is_asked_for_and_decoded(server):
    server.feed("/rss", rss("Compressed news"), gzip_body=True)
    assert titles(fetch(server.url("/rss"))) == ["Compressed news"]
    accepted = server.requests_to("/rss")[0].headers["accept-encoding"]
    assert "gzip" in accepted and "br" in accepted


# -- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "moves"), [(301, True), (308, True), (302, False), (307, False)])
def test_only_a_permanent_redirect_moves_the_feed(server, status, moves):
    server.feed("/new", rss("Moved"))
    server.redirect("/old", "/new", status=status)
    result = fetch(server.url("/old"))
    assert titles(result) == ["Moved"]
    assert result.new_url == (server.url("/new") if moves else None)


def test_a_temporary_hop_in_the_chain_keeps_the_old_url(server):
    server.feed("/c", rss("End"))
    server.redirect("/a", "/b", status=301)
    server.redirect("/b", "/c", status=302)
    assert fetch(server.url("/a")).new_url is None


def test_a_permanent_redirect_then_304_still_reports_the_move(server):
    server.feed("/new", rss("One"), etag='"e"')
    server.redirect("/old", "/new", status=301)
    result = fetch(server.url("/old"), etag='"e"')
    assert result == NotModified(etag='"e"', new_url=server.url("/new"))


def test_redirect_loop_and_too_many_redirects(server):
    server.redirect("/ping", "/pong", status=302)
    server.redirect("/pong", "/ping", status=302)
    loop = fetch(server.url("/ping"))
    assert isinstance(loop, Failed) and loop.error == f"redirect loop (back to {server.url('/ping')})"
    for hop in range(8):
        server.redirect(f"/hop{hop}", f"/hop{hop + 1}", status=302)
    assert fetch(server.url("/hop0"), max_redirects=5) == Failed("too many redirects (more than 5)")


def test_redirect_to_another_scheme_or_nowhere_is_refused(server):
    server.redirect("/rss", "ftp://files.example.com/feed.xml")
    server.redirect("/nowhere", "http://[::1/feed.xml")
    server.reply("/no-location", Reply(302))
    assert fetch(server.url("/rss")) == Failed("redirect to ftp:// refused")
    assert fetch(server.url("/nowhere")) == Failed("redirect to an invalid URL")
    assert fetch(server.url("/no-location")) == Failed("HTTP 302 redirect without a Location")


# -- statuses -----------------------------------------------------------------------------------


def test_http_errors_are_short_sentences(server):
    server.reply("/gone", Reply(410))
    server.reply("/broken", Reply(500, b"oops"))
    assert fetch(server.url("/missing")) == Failed("HTTP 404")
    assert fetch(server.url("/broken")) == Failed("HTTP 500")
    gone = fetch(server.url("/gone"))
    assert gone.gone and gone.error == "HTTP 410: the feed is gone"


def test_retry_after_in_seconds_and_as_a_date(server):
    server.reply("/busy", Reply(429, headers={"Retry-After": "120"}))
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    server.reply("/down", Reply(503, headers={"Retry-After": later}))
    server.reply("/down-no-hint", Reply(503))
    assert fetch(server.url("/busy")) == Failed("HTTP 429", retry_after_seconds=120.0)
    down = fetch(server.url("/down"))
    assert down.error == "HTTP 503" and 3500 < down.retry_after_seconds <= 3600
    assert fetch(server.url("/down-no-hint")) == Failed("HTTP 503")


def test_empty_200_and_an_html_page(server):
    server.reply("/empty", Reply(200, b"", {"Content-Type": "application/rss+xml"}))
    page = b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi</p></body></html>"
    server.reply("/home", Reply(200, page, {"Content-Type": "text/html; charset=utf-8"}))
    assert fetch(server.url("/empty")) == Failed("empty response")
    assert fetch(server.url("/home")) == Failed("not a feed: got an HTML page")


# -- hostile or huge ----------------------------------------------------------------------------


def test_billion_laughs_ends_quickly_without_expansion(server):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10)
    )
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]><rss version="2.0"><channel><title>Bomb</title>'
        "<item><title>&lol9;</title><guid>x</guid></item></channel></rss>"
    ).encode()
    server.reply("/bomb", Reply(200, bomb, {"Content-Type": "application/rss+xml"}))
    started = time.monotonic()
    result = fetch(server.url("/bomb"))
    assert time.monotonic() - started < 5
    # Either refused, or read without expanding 10^9 "lol"s.
    if isinstance(result, Fetched):
        assert all(len(entry.title or "") < 10_000 for entry in result.entries)
    else:
        assert isinstance(result, Failed) and result.error


def test_a_100000_entry_feed_keeps_the_newest_1000_in_bounded_time(server):
    count = 100_000
    items = "".join(f"<item><title>n{i}</title><guid>g{i}</guid></item>" for i in range(count))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Firehose</title>{items}</channel></rss>'
    server.reply("/firehose", Reply(200, body.encode(), {"Content-Type": "application/rss+xml"}))
    started = time.monotonic()
    result = fetch(server.url("/firehose"))
    assert time.monotonic() - started < 20
    # Undated: the document order stands (newest first), so the first 1000 are kept.
    assert titles(result)[:2] == ["n0", "n1"] and len(result.entries) == 1000
    assert "kept the newest 1000 of 100000 entries" in result.warnings


def test_the_newest_are_kept_when_the_feed_lists_oldest_first(server):
    server.feed("/rss", rss(*[f"t{i}" for i in range(30)]))  # t29 is the newest
    result = fetch(server.url("/rss"), max_entries=5)
    assert titles(result) == ["t25", "t26", "t27", "t28", "t29"]


def test_a_trickling_server_hits_the_deadline(server):
    server.reply(
        "/slow", Reply(200, rss("Slow") * 10, {"Content-Type": "application/rss+xml"}, byte_delay=1.0)
    )
    started = time.monotonic()
    assert fetch(server.url("/slow"), deadline_seconds=1.5) == Failed("timed out after 1.5 s")
    assert time.monotonic() - started < 4


def test_a_server_that_never_answers_hits_the_read_timeout(server):
    server.reply("/silent", Reply(200, rss("Late"), {"Content-Type": "application/rss+xml"}, delay=3))

    async def go():
        async with make_client(read_timeout=0.5) as client:
            return await fetch_http(client, server.url("/silent"), allow_private=True)

    assert asyncio.run(go()) == Failed("timed out after 0.5 s waiting for the server")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_refused(server, chunked):
    big = b"<rss>" + b"x" * 50_000 + b"</rss>"
    server.reply(
        "/big", Reply(200, big, {"Content-Type": "application/rss+xml"}, chunked=chunked, chunk_size=4096)
    )
    assert fetch(server.url("/big"), max_bytes=20_000) == Failed("response larger than 20 kB")


# -- network failures and safety ----------------------------------------------------------------


def test_connection_refused_and_dns_failure():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert fetch(f"http://127.0.0.1:{port}/rss") == Failed("connection refused")
    assert fetch("http://no-such-host.invalid/rss") == Failed("DNS lookup failed")
    assert fetch("http://no-such-host.invalid/rss", allow_private=False) == Failed("DNS lookup failed")


def test_private_and_loopback_addresses_are_refused_by_default(server):
    server.feed("/rss", rss("Internal"))
    refused = fetch(server.url("/rss"), allow_private=False)
    assert refused == Failed("refused: 127.0.0.1 is a private or local address")
    assert server.requests_to("/rss") == []  # nothing was sent
    by_name = fetch(server.url("/rss", host="localhost"), allow_private=False)
    assert isinstance(by_name, Failed) and by_name.error.startswith("refused: localhost is a private")


def test_userinfo_never_appears_in_errors_or_urls(server):
    server.feed("/rss", rss("Members only"))
    server.redirect("/ping", "/pong", status=302)
    server.redirect("/pong", "/ping", status=302)
    secret_url = server.url("/ping", userinfo="reader:s3cret-pw")
    loop = fetch(secret_url)
    assert isinstance(loop, Failed) and "s3cret" not in loop.error and "reader" not in loop.error
    ok = fetch(server.url("/rss", userinfo="reader:s3cret-pw"))
    assert server.requests_to("/rss")[0].headers["authorization"].startswith("Basic ")
    assert all("s3cret" not in (entry.url or "") for entry in ok.entries)
    missing = fetch(server.url("/nope", userinfo="reader:s3cret-pw"))
    assert missing == Failed("HTTP 404")


def test_invalid_and_non_http_urls():
    assert fetch("ftp://example.com/feed") == Failed("not an http(s) URL")
    assert fetch("http://[::1/feed") == Failed("not a valid URL")


# -- ttl ----------------------------------------------------------------------------------------


def test_ttl_is_the_largest_of_feed_ttl_max_age_and_expires(server):
    server.feed("/ttl-feed", rss("x", ttl=60), headers={"Cache-Control": "max-age=600"})
    server.feed("/ttl-header", rss("x", ttl=5), headers={"Cache-Control": "public, max-age=7200"})
    now = datetime.now(UTC)
    expires = {
        "Date": format_datetime(now, usegmt=True),
        "Expires": format_datetime(now + timedelta(hours=3), usegmt=True),
    }
    server.feed("/ttl-expires", rss("x"), headers=expires)
    server.feed("/ttl-none", rss("x"), headers={"Cache-Control": "no-cache, max-age=0"})
    assert fetch(server.url("/ttl-feed")).ttl_seconds == 3600
    assert fetch(server.url("/ttl-header")).ttl_seconds == 7200
    assert 10_790 <= fetch(server.url("/ttl-expires")).ttl_seconds <= 10_800
    assert fetch(server.url("/ttl-none")).ttl_seconds is None


def test_a_304_carries_the_header_ttl(server):
    server.reply("/cached", Reply(304, headers={"Cache-Control": "max-age=900", "ETag": '"b"'}))
    assert fetch(server.url("/cached"), etag='"b"') == NotModified(etag='"b"', ttl_seconds=900)


# -- concurrency --------------------------------------------------------------------------------


def test_per_host_and_global_limits_hold(server):
    server.reply("/slow", Reply(200, rss("x"), {"Content-Type": "application/rss+xml"}, delay=0.3))
    gate = HostGate(total=8, per_host=2)

    async def go():
        async with make_client() as client:
            return await asyncio.gather(
                *(fetch_http(client, server.url("/slow"), allow_private=True, gate=gate) for _ in range(6))
            )

    results = asyncio.run(go())
    assert all(isinstance(result, Fetched) for result in results)
    assert server.most_in_flight == 2
    assert gate._hosts == {}  # idle hosts are forgotten


def test_the_global_limit_holds_across_hosts(server):
    server.reply("/slow", Reply(200, rss("x"), {"Content-Type": "application/rss+xml"}, delay=0.3))
    gate = HostGate(total=3, per_host=2)
    urls = [server.url("/slow"), server.url("/slow", host="localhost")] * 4

    async def go():
        async with make_client() as client:
            return await asyncio.gather(
                *(fetch_http(client, url, allow_private=True, gate=gate) for url in urls)
            )

    assert all(isinstance(result, Fetched) for result in asyncio.run(go()))
    assert server.most_in_flight == 3
