"""Managing feeds: add (checked once, with feed discovery on web pages), remove, OPML import
and export, and the `feeds list` view. The CLI's `feeds …` commands are thin layers over this.

    found = await check(url, settings)   # Found(url, title, entries) or Found(error=…, links=[…])
    feed_id, note = add(db, found.url, …)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser
from sqlalchemy import func, select

from monitor.config import Settings
from monitor.errors import FeedError, NewsmonError
from monitor.fetch import Failed, Fetched, NotModified
from storage import models as m
from storage.db import Database

# The MIME types a page's <link rel="alternate"> announces feeds with.
# OPML has no word for newsmon's own feed settings: they travel as namespaced outline attributes.
OPML_NS = "urn:newsmon:opml"
ET.register_namespace("newsmon", OPML_NS)
FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
              "application/json", "application/xml", "text/xml"}
MAX_CANDIDATES = 10  # a page that advertises more is listed, not checked one by one


@dataclass(frozen=True)
class FeedLink:
    url: str
    title: str | None
    type: str


@dataclass
class Found:
    """What checking a URL once found: a feed (title, entries) or why not, and a page's feed links."""

    url: str
    title: str | None = None
    entries: int = 0
    error: str | None = None
    links: list[FeedLink] = field(default_factory=list)  # the page's advertised feeds, when it is a page

    @property
    def ok(self) -> bool:
        return self.error is None


def discover(html: bytes | str, base_url: str) -> list[FeedLink]:
    """The feeds a web page advertises with `<link rel="alternate" type="application/rss+xml" href=…>`."""
    tree = LexborHTMLParser(html if isinstance(html, str) else html.decode("utf-8", "replace"))
    base = base_url
    for node in tree.css("base[href]"):
        base = urljoin(base_url, node.attributes.get("href") or "")
        break
    links: dict[str, FeedLink] = {}
    for node in tree.css("link[href]"):
        attrs = node.attributes
        rel = (attrs.get("rel") or "").lower().split()
        kind = (attrs.get("type") or "").lower().split(";")[0].strip()
        if "alternate" in rel and kind in FEED_TYPES:
            url = urljoin(base, (attrs.get("href") or "").strip())
            if url.startswith(("http://", "https://")) and url not in links:
                links[url] = FeedLink(url, (attrs.get("title") or "").strip() or None, kind)
    return list(links.values())


async def check(url: str, settings: Settings, client=None) -> Found:
    """Fetch `url` once. A feed: its title and entry count. A web page: the feeds it advertises,
    each checked in turn (the first MAX_CANDIDATES)."""
    from monitor.fetch.http import fetch_http, fetch_page, make_client

    own = client is None
    client = client or make_client()
    try:
        result = await fetch_http(client, url, allow_private=settings.fetch_allow_private)
        found = _found(url, result)
        if found.error == "not a feed: got an HTML page":
            try:
                page_url, body = await fetch_page(client, url, allow_private=settings.fetch_allow_private)
            except FeedError as error:
                found.error = error.message
                return found
            for link in discover(body, page_url)[:MAX_CANDIDATES]:
                checked = _found(link.url, await fetch_http(client, link.url,
                                                            allow_private=settings.fetch_allow_private))
                if checked.ok:
                    found.links.append(FeedLink(link.url, checked.title or link.title, link.type))
        return found
    finally:
        if own:
            await client.aclose()


def _found(url: str, result) -> Found:
    if isinstance(result, Fetched):
        return Found(result.new_url or url, result.title, len(result.entries))
    if isinstance(result, NotModified):
        return Found(result.new_url or url)
    assert isinstance(result, Failed)
    return Found(url, error=result.error)


def add(db: Database, url: str, *, title: str | None = None, interval: float | None = None,
        full_text: bool = False) -> tuple[int, str]:
    """Store a feed (or re-enable a removed one): (feed id, what happened, in words)."""
    kind = "http" if url.startswith(("http://", "https://")) else "directory"
    if kind == "directory":
        url = str(Path(url).resolve())
    with db.session() as session:
        feed = session.scalar(select(m.Feed).where(m.Feed.url == url))
        if feed is not None and feed.enabled:
            return feed.id, f"already watched as feed #{feed.id}"
        note = "added"
        if feed is None:
            feed = m.Feed(url=url, kind=kind)
            session.add(feed)
        else:
            note = "enabled again"
            feed.enabled, feed.failures, feed.failing_since, feed.last_error = True, 0, None, None
            feed.down_alerted, feed.next_poll_at = False, None
        feed.title = title or feed.title
        feed.full_text = full_text
        feed.interval_seconds = int(interval) if interval else feed.interval_seconds
        session.flush()
        return feed.id, note


def find(db: Database, ref: str) -> m.Feed:
    """A feed by id or URL; FeedError when there is none."""
    with db.session() as session:
        query = select(m.Feed).where(m.Feed.id == int(ref)) if ref.isdigit() else \
            select(m.Feed).where(m.Feed.url == ref)
        feed = session.scalar(query)
    if feed is None:
        raise FeedError(ref, "no such feed (see `newsmon feeds list`)")
    return feed


def remove(db: Database, ref: str) -> str:
    """Stop watching a feed. One with stored articles is disabled (its articles stay in their
    stories, and developments point at them); one without is deleted. Says which, in words."""
    feed = find(db, ref)
    if feed.from_config:
        raise FeedError(feed.url, "this feed is listed in the config file; remove it there")
    with db.session() as session:
        row = session.get_one(m.Feed, feed.id)
        articles = session.scalar(select(func.count()).select_from(m.Article).where(m.Article.feed_id == feed.id))
        if articles:
            row.enabled, row.lease_owner, row.lease_expires_at = False, None, None
            row.last_error = "removed by `newsmon feeds remove`"
            return f"feed #{feed.id} disabled (its {articles} article(s) stay in their stories): {feed.url}"
        session.delete(row)
    return f"feed #{feed.id} removed: {feed.url}"


def import_opml(db: Database, path: Path) -> tuple[list[str], list[str]]:
    """Add every `<outline xmlUrl=…>` of an OPML file (nested outlines too): (added, already there)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as error:
        raise NewsmonError(f"cannot read {path} as OPML: {error}") from None
    added, known = [], []
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or "").strip()
        if not url.startswith(("http://", "https://")):
            continue
        _, note = add(db, url, title=outline.get("title") or outline.get("text"),
                      full_text=outline.get(f"{{{OPML_NS}}}fullText") == "true")
        (known if note.startswith("already") else added).append(url)
    return added, known


def export_opml(db: Database) -> str:
    """Every enabled feed as an OPML 2.0 document."""
    opml = ET.Element("opml", version="2.0")
    ET.SubElement(ET.SubElement(opml, "head"), "title").text = "newsmon feeds"
    body = ET.SubElement(opml, "body")
    with db.session() as session:
        for feed in session.scalars(select(m.Feed).where(m.Feed.enabled.is_(True), m.Feed.kind == "http")
                                    .order_by(m.Feed.id)):
            name = feed.title or feed.url
            outline = ET.SubElement(body, "outline", type="rss", text=name, title=name, xmlUrl=feed.url)
            if feed.full_text:
                outline.set(f"{{{OPML_NS}}}fullText", "true")
    ET.indent(opml)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(opml, encoding="unicode") + "\n"


def describe(row: dict, now: datetime) -> list[str]:
    """The lines `newsmon feeds list` prints for one feed (row: storage.listing.list_feeds)."""
    head = f"#{row['id']:<4} {row['status']:<8} {row['articles_seen']:>5} articles  {row['url']}"
    lines = [head + (f"  ({row['title']})" if row["title"] else "") + ("  [full text]" if row["full_text"] else "")]
    if row["pages_waiting"]:
        lines.append(f"       {row['pages_waiting']} entries wait for their article pages (full_text_pages_per_poll)")
    if row["last_error"]:
        lines.append(f"       last error: {row['last_error']} ({row['failures']} failure(s) in a row)")
    next_poll = "—" if not row["enabled"] else _when(row["next_poll_at"], now, "now")
    lines.append(f"       last success: {_when(row['last_success_at'], now, 'never')}; next poll: {next_poll}")
    return lines


def _when(iso: str | None, now: datetime, missing: str) -> str:
    if not iso:
        return missing
    moment = datetime.fromisoformat(iso)
    seconds = (moment - now).total_seconds()
    if seconds <= 0 and missing == "now":
        return "now (due)"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({_ago(abs(seconds))} {'from now' if seconds > 0 else 'ago'})"


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
