"""fetch: poll one feed and hand on raw entries.

A fetcher returns one of three results; "not modified" is a normal state, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.model import RawEntry


@dataclass(frozen=True)
class Fetched:
    entries: list[RawEntry]
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    new_url: str | None = None  # set after a permanent redirect
    ttl_seconds: int | None = None  # the feed's own floor (<ttl>, Cache-Control, Expires)
    warnings: list[str] = field(default_factory=list)
    # Digests of every entry in the document; `entries` leaves out those an earlier poll stored.
    # A full-text feed's deferred entries are left out of both (see `deferred`).
    entry_digests: tuple[str, ...] = ()
    # Summary-only entries of a full-text feed left for the next polls (fetch/article.py): the
    # poll must not remember this document as stored (validators, body hash), or they are lost.
    deferred: int = 0

    def unremembered(self, entries: list[RawEntry]) -> tuple[str, ...]:
        """The digests to remember when `entries` are not stored this poll (deferred, or
        failed): all but theirs, so the next poll parses them again; none when one of them
        has no digest of its own (the next poll then parses the whole document)."""
        digests = {raw.digest for raw in entries}
        return () if None in digests else tuple(d for d in self.entry_digests if d not in digests)


@dataclass(frozen=True)
class NotModified:
    etag: str | None = None
    last_modified: str | None = None
    ttl_seconds: int | None = None
    new_url: str | None = None  # set after a permanent redirect, as on Fetched


@dataclass(frozen=True)
class Failed:
    error: str  # one human sentence: "HTTP 404", "not a feed: got an HTML page", ...
    retry_after_seconds: float | None = None
    gone: bool = False  # 410: disable the feed


FetchResult = Fetched | NotModified | Failed
