"""Full text for feeds that send only summaries (`feeds add --full-text`, `full_text = true`).

    result = await add_full_text(db, feed, result, client, max_pages=30, gate=gate, allow_private=False)

An entry whose text is shorter than SUMMARY_CHARS and that links to an http(s) page gets its
page fetched with newsmon's own client and `fetch_page` (same User-Agent, timeouts, deadline,
body limit, redirect and private-address rules as a feed), one host at a time through the
shared HostGate, and the page's main text extracted by trafilatura from the bytes we fetched
(trafilatura never fetches anything itself). Only entries that are new or changed since they
were stored are fetched: the stored content hash is that of the feed's entry (see
RawEntry.page_text), compared here before any request. A page that fails, or yields no more
text than the summary, leaves the entry with its summary and a warning naming the page; it is
not tried again until the feed changes the entry.

At most `max_pages` pages are fetched a poll (`full_text_pages_per_poll`), for the oldest
wanted entries; the others are deferred: taken out of the result, so that they are not stored
with their summary, and their digests out of the ones the poll remembers, so that the next poll
parses them again. `Fetched.deferred` tells polling.py not to keep validators or the body hash
and to come back soon.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime

import httpx
from rapidfuzz import fuzz
from sqlalchemy import select

from monitor import normalise
from monitor.errors import FeedError
from monitor.fetch import Fetched, FetchResult
from monitor.fetch.http import DEFAULT_MAX_BYTES, HostGate, fetch_page, redact
from monitor.model import RawEntry
from storage import models as m
from storage.db import Database

log = logging.getLogger("newsmon.fetch.article")

# An entry with less text than this is a summary (a teaser of one or two paragraphs); a news
# article runs to several thousand characters. Feeds that carry the whole text stay untouched.
SUMMARY_CHARS = 1000
# Page fetches of one feed in flight at once when there is no shared HostGate.
_UNGATED = 2


async def add_full_text(db: Database, feed: m.Feed, result: FetchResult, client: httpx.AsyncClient | None, *,
                        max_pages: int, gate: HostGate | None = None, allow_private: bool = False,
                        max_bytes: int = DEFAULT_MAX_BYTES) -> FetchResult:
    """The result with `page_text` set on the summary-only entries that are new or changed, for
    at most `max_pages` of them (the oldest); the rest are deferred (see the module)."""
    if not feed.full_text or client is None or not isinstance(result, Fetched):
        return result
    now = datetime.now(UTC)
    summaries = {}
    for raw in result.entries:
        if raw.url and raw.url.startswith(("http://", "https://")):
            article = normalise.normalise(raw, now, sentences=False)
            if len(article.text) < SUMMARY_CHARS:
                summaries[raw.guid] = article
    if not summaries:
        return result
    stored = await asyncio.to_thread(_stored_hashes, db, feed.id, list(summaries))
    wanted = [raw for raw in result.entries
              if raw.guid in summaries and stored.get(raw.guid) != summaries[raw.guid].content_hash]
    # Oldest first, undated last, as polling stores them: the feed catches up in publication
    # order, and the entries closest to dropping off the feed are read before they do.
    wanted.sort(key=lambda raw: raw.published_at or now)
    wanted, deferred = wanted[:max_pages], wanted[max_pages:]
    if deferred:
        result = _defer(result, deferred, max_pages)
    own_limit = asyncio.Semaphore(_UNGATED)
    texts = await asyncio.gather(*(
        _page_text(client, raw, summaries[raw.guid].text, feed.url, gate, own_limit, allow_private, max_bytes)
        for raw in wanted))
    pages = {raw.guid: text for raw, text in zip(wanted, texts, strict=True) if text}
    if not pages:
        return result
    return replace(result, entries=[replace(raw, page_text=pages[raw.guid]) if raw.guid in pages else raw
                                    for raw in result.entries])


def _defer(result: Fetched, deferred: list[RawEntry], max_pages: int) -> Fetched:
    """The result without the deferred entries, remembering none of their digests."""
    waiting = {raw.guid for raw in deferred}
    warning = (f"{len(deferred)} summary-only entries wait for their article pages "
               f"(at most {max_pages} pages a poll); the next polls fetch them, oldest first")
    return replace(result, entries=[raw for raw in result.entries if raw.guid not in waiting],
                   entry_digests=result.unremembered(deferred), deferred=len(deferred),
                   warnings=[*result.warnings, warning])


def _stored_hashes(db: Database, feed_id: int, guids: list[str]) -> dict[str, str]:
    """Each guid's latest stored content hash (the entry as the feed sent it)."""
    latest: dict[str, tuple[int, str]] = {}
    with db.session() as session:
        for start in range(0, len(guids), 500):  # bounded IN lists for every backend
            rows = session.execute(select(m.Article.guid, m.Article.version, m.Article.content_hash)
                                   .where(m.Article.feed_id == feed_id, m.Article.guid.in_(guids[start:start + 500])))
            for guid, version, digest in rows:
                if guid not in latest or version > latest[guid][0]:
                    latest[guid] = (version, digest)
    return {guid: digest for guid, (_, digest) in latest.items()}


async def _page_text(client: httpx.AsyncClient, raw: RawEntry, summary: str, feed_url: str,
                     gate: HostGate | None, own_limit: asyncio.Semaphore, allow_private: bool,
                     max_bytes: int) -> str | None:
    assert raw.url is not None
    page = redact(raw.url)
    try:
        host = httpx.URL(raw.url).host
        async with gate.slot(host) if gate else own_limit:
            final_url, body = await fetch_page(client, raw.url, max_bytes=max_bytes, allow_private=allow_private)
    except FeedError as error:
        return _kept_summary(feed_url, page, error.message)
    except httpx.InvalidURL:
        return _kept_summary(feed_url, page, "not a valid URL")
    try:  # lxml parsing and scoring: CPU work, kept off the event loop
        text = await asyncio.to_thread(extract_main_text, body, final_url)
    except Exception as error:  # an extractor bug on one odd page must not lose the entry
        return _kept_summary(feed_url, page, f"text extraction failed ({type(error).__name__})")
    text = _without_headline(text or "", raw.title)
    if not text:
        return _kept_summary(feed_url, page, "no article text found on the page")
    if len(normalise.clean_text(text)) <= len(summary):
        return _kept_summary(feed_url, page, "the page has no more text than the summary")
    return text


def extract_main_text(html: bytes, url: str | None = None) -> str | None:
    """The page's main text, one paragraph a line, without navigation, comments or boilerplate."""
    import trafilatura  # imported late: only full-text feeds pay for loading it

    return trafilatura.extract(html, url=url, output_format="txt", include_comments=False,
                               include_tables=False, favor_precision=True, deduplicate=False)


def _without_headline(text: str, title: str | None) -> str:
    """The text without a first line that repeats the entry's title (the page's <h1>, usually):
    the title is stored apart, and repeated it would count as a sentence of the story."""
    first, _, rest = text.partition("\n")
    if title and fuzz.ratio(" ".join(first.split()).casefold(), " ".join(title.split()).casefold()) >= 90:
        return rest.strip()
    return text


def _kept_summary(feed_url: str, page: str, why: str) -> None:
    log.warning("feed %s: article page %s: %s; stored with the feed's summary", feed_url, page, why)
    return None
