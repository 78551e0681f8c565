"""normalise: one raw entry → one Article (clean text, sentences, canonical URL, hash)."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from datetime import datetime
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import syntok.segmenter as segmenter
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from monitor.model import Article, RawEntry

# Query parameters that only track who clicked; two URLs that differ in them are one article.
TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|dclid|mc_cid|mc_eid|ref|ref_src|cmpid|ocid|igshid)$", re.I)
BLOCK_TAGS = "p, div, br, li, h1, h2, h3, h4, h5, h6, blockquote, tr, section, article, header, footer, pre"
MAX_SENTENCES = 400  # a longer "article" is a page dump; its tail adds cost, not news
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")


def canonical_url(url: str | None) -> str | None:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port in (None, 80 if parts.scheme == "http" else 443) else f"{host}:{port}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not TRACKING_PARAMS.match(k)])
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment or page, one block per line."""
    tree = HTMLParser(markup)
    for node in tree.css("script, style, noscript, template, iframe, svg, nav, aside, form"):
        node.decompose()
    for node in tree.css(BLOCK_TAGS):
        node.insert_before("\n")
        node.insert_after("\n")
    root = tree.body or tree.root
    return root.text(separator="", deep=True) if root else ""


def clean_text(text: str) -> str:
    """Unicode and entities fixed, whitespace collapsed, one paragraph per line."""
    text = html.unescape(unicodedata.normalize("NFC", text))
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00ad", "")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# A line with none of these before its last character is one sentence: syntok is not asked
# (seven lines in eight of real news; the split costs a fifth of what it did).
_MAYBE_BOUNDARY = re.compile(r"[.!?;…]")


def split_sentences(text: str) -> tuple[str, ...]:
    """Sentences, paragraph by paragraph (a line is never joined to the next one)."""
    sentences: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            sentences.extend(_line_sentences(line))
        if len(sentences) >= MAX_SENTENCES:
            return tuple(sentences[:MAX_SENTENCES])
    return tuple(sentences)


@lru_cache(maxsize=4096)  # an untitled entry's first line is split twice (its title, its text)
def _line_sentences(line: str) -> tuple[str, ...]:
    """syntok finds the boundaries; each sentence is cut from the line itself, from where
    syntok's sentence starts to where the next one starts. Its tokens are not joined back:
    they normalise text ("wasn't" is the tokens "was" and "not")."""
    if not _MAYBE_BOUNDARY.search(line, 0, len(line) - 1):
        return (line,)
    starts = [sentence[0].offset for paragraph in segmenter.process(line) for sentence in paragraph if sentence]
    return tuple(piece for start, end in zip(starts, [*starts[1:], len(line)], strict=True)
                 if (piece := line[start:end].strip()))


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n\n{text}".encode()).hexdigest()


def normalise(raw: RawEntry, fetched_at: datetime, default_source: str = "unknown",
              sentences: bool = True) -> Article:
    """`sentences=False` leaves the costly sentence split out: enough to compare content hashes
    (an unchanged entry, the common case on every poll, costs no more than that)."""
    text = clean_text(html_to_text(raw.body) if raw.body_is_html else raw.body)
    title = clean_text(html_to_text(raw.title) if raw.title and "<" in raw.title else (raw.title or ""))
    if not title:
        first = split_sentences(text.split("\n", 1)[0])  # sentences never span lines
        title = first[0] if first else "(untitled)"
        title = title if len(title) <= 140 else title[:137].rsplit(" ", 1)[0] + "…"
    page_text = clean_text(raw.page_text) if raw.page_text else text
    url = canonical_url(raw.url)
    source = raw.source or (urlsplit(url).hostname if url and url.startswith("http") else None) or default_source
    return Article(
        guid=raw.guid,
        url=url,
        title=title.replace("\n", " "),
        source=source,
        published_at=raw.published_at or fetched_at,
        text=page_text,
        sentences=split_sentences(page_text) if sentences else (),
        content_hash=content_hash(title, text),  # the feed's entry, also for a full-text article
    )
