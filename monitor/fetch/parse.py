"""Parse a feed document (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, JSON Feed 1.0/1.1) into raw entries.

`parse_feed(body, url, headers)` returns a `ParsedFeed` or raises `FeedError(url, sentence)`.
It never touches the network: XML goes through feedparser from an in-memory stream, JSON
through the pydantic models of `jsonfeed.py`.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import itertools
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser

from monitor.errors import FeedError
from monitor.fetch.jsonfeed import read_json_feed
from monitor.model import RawEntry

DEFAULT_MAX_ENTRIES = 1000
# A feed gzipped twice (once as a file, once in transit) is unpacked here; this bounds it.
MAX_UNPACKED_BYTES = 20_000_000
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# feedparser flags these but still decodes the document correctly; the entries are good.
_HARMLESS_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
_ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]")
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
DIGEST_LENGTH = 16  # hex digits of an entry digest: 64 bits, unique enough within one feed
# An HTML page: a doctype or a first element html/head/body, after any XML declaration or comments.
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>]", re.I | re.S
)
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    entries: list[RawEntry]
    ttl_seconds: int | None = None  # from RSS <ttl> (minutes in the document)
    format: str = ""  # feedparser's version ("rss20", "atom10", ...) or "json10" / "json11"
    warnings: list[str] = field(default_factory=list)
    # A digest of every entry element in the document, in order (see `entry_digests`); empty
    # when the document could not be cut into entries (JSON, odd XML): then all were parsed.
    entry_digests: tuple[str, ...] = ()


def parse_feed(
    body: bytes, url: str, headers: Mapping[str, str] | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES,
    known: frozenset[str] | set[str] = frozenset(),
) -> ParsedFeed:
    """Turn a fetched document into raw entries; `url` is where it came from (the base for links).

    `headers` are the HTTP response headers (any case); their charset wins over the document's
    own declaration where RFC 3023 says so. At most `max_entries` are kept, the newest.
    `known` holds entry digests of an earlier poll whose entries are stored: those entries are
    not parsed at all, and are absent from `entries` (see `entry_digests`).
    """
    headers = {key.lower(): value for key, value in (headers or {}).items()}
    body = _unpack_gzip(body, url)
    if not body.strip():
        raise FeedError(url, "empty response")
    if _looks_like_json(body, headers.get("content-type", "")):
        return _parse_json(body, url, headers, max_entries)
    pieces = _split_entries(body, max_entries)
    digests = tuple(digest for digest, _ in pieces[1]) if pieces else ()
    if pieces is not None and known:
        head, chunks, tail = pieces
        fresh = [(digest, chunk) for digest, chunk in chunks if digest not in known]
        if len(fresh) < len(chunks):
            parsed = _parse_xml(head + b"".join(chunk for _, chunk in fresh) + tail, url, headers, max_entries,
                                read=len(fresh), digests=[digest for digest, _ in fresh])
            if parsed is not None:  # the cut document read as expected
                return replace(parsed, entry_digests=digests)
    parsed = _parse_xml(body, url, headers, max_entries, digests=digests)
    assert parsed is not None
    return replace(parsed, entry_digests=digests) if pieces else parsed


def _split_entries(body: bytes, max_entries: int) -> tuple[bytes, list[tuple[str, bytes]], bytes] | None:
    """The document as (head, [(digest, entry element)], tail), or None if it cannot be cut safely.

    Parsing is most of a changed feed's cost (feedparser, ~0.5 ms an entry) while most of its
    entries are the ones stored last time: an entry element whose bytes hash to a known digest
    says nothing new, so it is left out before feedparser runs. Entry i runs from its start tag
    to the next entry's; the last one to its end tag. The digest also covers the XML
    declaration, so a changed encoding makes every entry new again.
    """
    starts = [match.start() for match in _ENTRY_START.finditer(body)]
    if not starts or len(starts) > 2 * max_entries:
        return None
    ends = [match.end() for match in _ENTRY_END.finditer(body, starts[-1])]
    if len(ends) != 1 or len(_ENTRY_END.findall(body)) != len(starts):
        return None  # nested or self-closed entry elements: read the whole document
    declaration = body[: body.find(b"?>") + 2] if body.startswith(b"<?xml") else b""
    bounds = [*starts, ends[0]]
    chunks = []
    for begin, end in itertools.pairwise(bounds):
        chunk = body[begin:end]
        chunks.append((hashlib.sha256(declaration + chunk).hexdigest()[:DIGEST_LENGTH], chunk))
    return body[: starts[0]], chunks, body[ends[0]:]


def _parse_xml(
    body: bytes, url: str, headers: dict[str, str], max_entries: int, read: int | None = None,
    digests: Sequence[str] = (),
) -> ParsedFeed | None:
    """The parsed document; with `read` (a document cut by `_split_entries`), None unless it
    still reads as a feed with exactly that many entries. `digests`, one per entry element in
    order, are set on the entries when feedparser found exactly that many (else it is unsure
    which element an entry came from, and the entries carry none)."""
    body, skipped_unread = _trim_entries(body, max_entries)
    # Sanitising and resolving URIs inside entry HTML cost about 40% of feedparser's time
    # (1.3 → 0.9 ms/entry on a news feed, 6.0 → 2.3 on an HTML-heavy one; see docs/fetching.md).
    # newsmon never renders that HTML: normalise turns it into plain text, so neither helps.
    # No base URL is given either: feedparser would resolve ids like links, and a guid "1234"
    # would become "https://host/1234", changing (duplicating every entry) when the feed moves.
    # Links are made absolute below (feedparser still applies any xml:base first).
    result = feedparser.parse(
        io.BytesIO(body),  # a stream, never a str/bytes: feedparser would treat those as a URL or path
        response_headers={name: value for name, value in headers.items() if name != "content-location"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    bozo = result.get("bozo_exception") if result.get("bozo") else None
    version = result.get("version") or ""
    if read is not None and (len(result.entries) != read or not version
                             or not (bozo is None or isinstance(bozo, _HARMLESS_BOZO))):
        return None
    if not result.entries:
        problem = _why_not_a_feed(body, headers, version, bozo)
        if problem:
            raise FeedError(url, problem)
    warnings = (
        [f"{_describe_bozo(bozo, body, headers)}; read leniently"] if _worth_a_warning(bozo, headers) else []
    )
    title = _clean(result.feed.get("title"))
    source = title or urlsplit(url).hostname or url
    entries: list[RawEntry] = []
    empty = 0
    paired = len(digests) == len(result.entries)
    for index, item in enumerate(result.entries):
        entry = _raw_entry(item, url, source, digests[index] if paired else None)
        if entry is None:
            empty += 1
        else:
            entries.append(entry)
    if empty:
        warnings.append(f"skipped {empty} entries with no title, link or text")
    entries, more_warnings = _bound_entries(entries, max_entries, skipped_unread)
    return ParsedFeed(title, entries, _ttl_seconds(result.feed.get("ttl")), version, warnings + more_warnings)


def _parse_json(body: bytes, url: str, headers: dict[str, str], max_entries: int) -> ParsedFeed:
    document = read_json_feed(body, url, _charset(headers.get("content-type", "")), max_entries)
    entries, warnings = _bound_entries(document.entries, max_entries, document.skipped_unread)
    return ParsedFeed(document.title, entries, None, document.format_name, document.warnings + warnings)


def _why_not_a_feed(
    body: bytes, headers: dict[str, str], version: str, bozo: BaseException | None
) -> str | None:
    """The sentence for a document that yielded no entries, or None if it is a valid empty feed."""
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if version:
        # A recognised feed without entries is valid; a broken one says where it broke.
        return (
            None if bozo is None or isinstance(bozo, _HARMLESS_BOZO) else _describe_bozo(bozo, body, headers)
        )
    if media_type == "text/html" or _HTML_START.match(body[:4096]):
        return "not a feed: got an HTML page"
    if not body.removeprefix(_UTF8_BOM).lstrip().startswith(b"<"):
        return "not a feed: the response is neither XML nor JSON"
    if bozo is None or isinstance(bozo, _HARMLESS_BOZO):
        return "not a feed: no RSS, Atom or JSON Feed document found"
    return _describe_bozo(bozo, body, headers)


def _worth_a_warning(bozo: BaseException | None, headers: dict[str, str]) -> bool:
    # feedparser flags a missing Content-Type as "not XML"; that is common and says nothing.
    if isinstance(bozo, feedparser.NonXMLContentType) and "content-type" not in headers:
        return False
    return bozo is not None


def _describe_bozo(error: BaseException, body: bytes, headers: dict[str, str]) -> str:
    if isinstance(error, SAXParseException):
        # feedparser puts an XML declaration on a line of its own before a document without one.
        added_line = not body.removeprefix(_UTF8_BOM).startswith((b"<?xml", b"\xff\xfe", b"\xfe\xff", b"\0"))
        return f"XML error at line {error.getLineNumber() - added_line}: {error.getMessage()}"
    if isinstance(error, feedparser.NonXMLContentType):
        return f"served as {headers.get('content-type', 'no content type')}, not as XML"
    if isinstance(error, feedparser.CharacterEncodingUnknown):
        return "unknown character encoding"
    message = str(error).strip().splitlines()
    return message[0] if message else type(error).__name__


def _raw_entry(item: Mapping, feed_url: str, source: str, digest: str | None = None) -> RawEntry | None:
    url = _absolute_url(item.get("link"), feed_url)
    title = _clean(item.get("title"))
    body, body_is_html = _longest_body(item)
    if not (title or body.strip() or url):
        return None
    guid = _clean(item.get("id")) or url or content_guid(title, body)
    # "x in item" rather than item.get(): FeedParserDict maps "updated" to "published" silently.
    stamp = None
    for key in ("published_parsed", "updated_parsed"):
        if stamp is None and key in item:
            stamp = item[key]
    return RawEntry(
        guid=guid,
        body=body,
        body_is_html=body_is_html,
        url=url,
        title=title,
        source=source,
        published_at=_from_struct_time(stamp),
        digest=digest,
    )


def _longest_body(item: Mapping) -> tuple[str, bool]:
    """The longest of the entry's contents and its summary, with whether it is HTML."""
    candidates = [(part.get("value") or "", part.get("type") or "") for part in item.get("content") or ()]
    if item.get("summary"):
        detail = item.get("summary_detail") or {}
        candidates.append((item["summary"], detail.get("type") or "text/html"))
    if not candidates:
        return "", False
    value, media_type = max(candidates, key=lambda candidate: len(candidate[0]))
    return value, media_type.lower() in _HTML_TYPES


def _bound_entries(
    entries: list[RawEntry], max_entries: int, skipped: int
) -> tuple[list[RawEntry], list[str]]:
    """Drop repeated guids (the first wins), then keep the `max_entries` newest, in document order.

    Undated entries count as older than dated ones; among equals the document order decides,
    so a feed without dates keeps its first entries (feeds list the newest first).
    """
    warnings = []
    seen: set[str] = set()
    unique = []
    for entry in entries:
        if entry.guid not in seen:
            seen.add(entry.guid)
            unique.append(entry)
    if len(unique) < len(entries):
        warnings.append(f"dropped {len(entries) - len(unique)} entries that repeat an earlier id")
    total = len(unique) + skipped
    if total > max_entries:
        by_age = sorted(range(len(unique)), key=lambda i: _newest_first(unique[i]))
        keep = set(by_age[:max_entries])
        unique = [entry for i, entry in enumerate(unique) if i in keep]
        warnings.append(f"kept the newest {max_entries} of {total} entries")
    return unique, warnings


def _newest_first(entry: RawEntry) -> tuple[bool, float]:
    return (entry.published_at is None, -entry.published_at.timestamp() if entry.published_at else 0.0)


def _trim_entries(body: bytes, max_entries: int) -> tuple[bytes, int]:
    """Cut a huge feed down before feedparser sees it, so its time and memory stay bounded.

    feedparser builds every entry (~1 ms each), so a 100 000-entry feed would take minutes.
    When there are more than twice `max_entries` entry elements, only the first and the last
    `max_entries` are kept (feeds are sorted one way or the other; `_bound_entries` then keeps
    the newest). Entries are siblings, so removing a run of them keeps the XML well formed.
    Returns the body and how many entries were cut unread.
    """
    starts = [match.start() for match in _ENTRY_START.finditer(body)]
    if len(starts) <= 2 * max_entries:
        return body, 0
    cut_from, cut_to = starts[max_entries], starts[len(starts) - max_entries]
    return body[:cut_from] + body[cut_to:], len(starts) - 2 * max_entries


def _unpack_gzip(body: bytes, url: str) -> bytes:
    """Some servers send a .gz file without Content-Encoding; unpack it, within a bound."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    try:
        unpacker = zlib.decompressobj(wbits=31)
        unpacked = unpacker.decompress(body, MAX_UNPACKED_BYTES)
    except zlib.error:
        raise FeedError(url, "not a feed: a damaged gzip file") from None
    if not unpacked:
        raise FeedError(url, "not a feed: a damaged gzip file")
    if unpacker.unconsumed_tail:
        raise FeedError(url, f"response larger than {MAX_UNPACKED_BYTES // 1_000_000} MB once unpacked")
    return unpacked


def _looks_like_json(body: bytes, content_type: str) -> bool:
    start = body.removeprefix(_UTF8_BOM).lstrip()[:1]
    if start == b"{":
        return True
    if start == b"<":
        return False
    return "json" in content_type.lower()


def _charset(content_type: str) -> str | None:
    match = re.search(r"charset\s*=\s*['\"]?([\w.:-]+)", content_type, re.I)
    return match.group(1) if match else None


def _ttl_seconds(minutes: object) -> int | None:
    try:
        value = int(str(minutes).strip())
    except (TypeError, ValueError):
        return None
    return value * 60 if value > 0 else None


def _from_struct_time(stamp) -> datetime | None:
    if not stamp:
        return None
    try:  # feedparser's struct_times are UTC
        return datetime.fromtimestamp(calendar.timegm(stamp), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _absolute_url(link: object, base: str) -> str | None:
    """`link` made absolute against `base`; None unless it ends as an http(s) URL."""
    if not isinstance(link, str) or not link.strip():
        return None
    url = urljoin(base, link.strip())
    return url if urlsplit(url).scheme in ("http", "https") else None


def content_guid(title: str | None, body: str) -> str:
    """A stable id for an entry that has neither id nor link: a hash of what it says."""
    digest = hashlib.sha256(f"{title or ''}\n{body}".encode()).hexdigest()
    return f"sha256:{digest[:40]}"
