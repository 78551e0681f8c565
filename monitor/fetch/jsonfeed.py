"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1), validated by pydantic models.

The models are lenient where the spec asks readers to be: unknown keys are ignored, a bad date
is no date, an item without a usable id is discarded (the spec: "any item without an id must be
discarded"), and one bad item never sinks the feed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError, WrapValidator, field_validator

from monitor.errors import FeedError
from monitor.model import RawEntry

_VERSION_PREFIX = "https://jsonfeed.org/version/"
_FORMAT_NAMES = {f"{_VERSION_PREFIX}1": "json10", f"{_VERSION_PREFIX}1.1": "json11"}


def _none_if_invalid(value: Any, handler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


LenientDate = Annotated[datetime | None, WrapValidator(_none_if_invalid)]
LenientText = Annotated[str | None, WrapValidator(_none_if_invalid)]


class JsonFeedItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    url: LenientText = None
    external_url: LenientText = None
    title: LenientText = None
    content_html: LenientText = None
    content_text: LenientText = None
    summary: LenientText = None
    date_published: LenientDate = None
    date_modified: LenientDate = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> str:
        # The spec: an id given as a number is coerced to a string; a blank one is no id.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("id must be a string")
        text = str(value).strip()
        if not text:
            raise ValueError("id is blank")
        return text

    def to_raw_entry(self, feed_url: str, source: str) -> RawEntry:
        link = self.url or self.external_url
        url = urljoin(feed_url, link.strip()) if link and link.strip() else None
        if url and urlsplit(url).scheme not in ("http", "https"):
            url = None
        candidates = [(self.content_html, True), (self.content_text, False), (self.summary, False)]
        present = [(text, is_html) for text, is_html in candidates if text]
        body, body_is_html = max(present, key=lambda c: len(c[0]), default=("", False))
        return RawEntry(
            guid=self.id,
            body=body,
            body_is_html=body_is_html,
            url=url,
            title=(self.title or "").strip() or None,
            source=source,
            published_at=_aware_utc(self.date_published or self.date_modified),
        )


class JsonFeed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str
    title: LenientText = None
    home_page_url: LenientText = None
    feed_url: LenientText = None
    items: list[Any] = []  # validated one by one, so one bad item costs only itself

    @field_validator("version")
    @classmethod
    def _is_json_feed(cls, value: str) -> str:
        if not value.lower().startswith(_VERSION_PREFIX):
            raise ValueError(f"not a JSON Feed version: {value!r}")
        return value

    @property
    def format_name(self) -> str:
        return _FORMAT_NAMES.get(self.version.lower().rstrip("/"), "json")


@dataclass
class JsonFeedDocument:
    title: str | None
    format_name: str
    entries: list[RawEntry]
    skipped_unread: int = 0  # items cut before validation because the feed was huge
    warnings: list[str] = field(default_factory=list)


def read_json_feed(body: bytes, url: str, charset: str | None, max_entries: int) -> JsonFeedDocument:
    """Validate a JSON Feed and turn its items into raw entries, or raise FeedError(url, sentence)."""
    try:
        document = json.loads(_decode(body, charset))
    except UnicodeDecodeError:
        raise FeedError(url, "not a feed: JSON that is not UTF-8 and declares no charset") from None
    except json.JSONDecodeError as error:
        raise FeedError(url, f"not a feed: invalid JSON at line {error.lineno}") from None
    try:
        feed = JsonFeed.model_validate(document)
    except ValidationError:
        raise FeedError(url, "not a feed: JSON without a JSON Feed version") from None
    items, skipped = _first_and_last(feed.items, max_entries)
    source = (feed.title or "").strip() or urlsplit(url).hostname or url
    entries, invalid = [], 0
    for item in items:
        try:
            entries.append(JsonFeedItem.model_validate(item).to_raw_entry(url, source))
        except ValidationError:
            invalid += 1
    warnings = [f"skipped {invalid} items without a usable id"] if invalid else []
    title = (feed.title or "").strip() or None
    return JsonFeedDocument(title, feed.format_name, entries, skipped, warnings)


def _decode(body: bytes, charset: str | None) -> str:
    # JSON is UTF-8 (RFC 8259); a different HTTP charset is honoured, a BOM is dropped.
    declared = (charset or "utf-8").lower().replace("_", "-")
    encoding = "utf-8-sig" if declared in ("utf-8", "utf8") else declared
    try:
        return body.decode(encoding)
    except LookupError:  # an unknown charset name: fall back to the standard
        return body.decode("utf-8-sig")


def _first_and_last(items: list[Any], max_entries: int) -> tuple[list[Any], int]:
    """Like the XML path: of a huge feed only the first and the last `max_entries` items are read."""
    if len(items) <= 2 * max_entries:
        return items, 0
    return items[:max_entries] + items[-max_entries:], len(items) - 2 * max_entries
