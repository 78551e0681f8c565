"""The directory feed: a folder of article files (.txt, .md, .html), one article each.

An optional `manifest.toml` in the folder gives each file's title, source, URL and published
time, in reporting order. Files it does not list still count: their title is their first
sentence and their published time the file's modification time.

    [[articles]]
    file = "003_922b7d489b1430c1.txt"
    title = "…"
    source = "…"
    url = "https://…"          # optional
    published = 2025-02-22T09:00:00Z
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from monitor.fetch import Failed, Fetched
from monitor.model import RawEntry

MANIFEST = "manifest.toml"
SUFFIXES = {".txt": False, ".md": False, ".markdown": False, ".html": True, ".htm": True}
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+)|(\*\*|__|`)", re.M)


def _markdown_to_text(text: str) -> str:
    # Enough Markdown for article files: links keep their words, marks go.
    return _MD_MARKS.sub("", _MD_LINK.sub(r"\1", text))


def _as_datetime(value, where: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"{where}: published must be a date-time like 2025-02-22T09:00:00Z")


def _read_manifest(folder: Path) -> tuple[str | None, list[dict]]:
    path = folder / MANIFEST
    if not path.exists():
        return None, []
    with path.open("rb") as handle:
        data = tomllib.load(handle)  # TOMLDecodeError names the line and column
    articles = data.get("articles", [])
    if not isinstance(articles, list) or not all(isinstance(a, dict) and "file" in a for a in articles):
        raise ValueError("every [[articles]] entry needs a file = \"…\"")
    return data.get("title"), articles


def fetch_directory(folder: str | Path) -> Fetched | Failed:
    folder = Path(folder)
    if not folder.is_dir():
        return Failed(f"not a directory: {folder}")
    try:
        title, listed = _read_manifest(folder)
    except (tomllib.TOMLDecodeError, ValueError) as error:
        return Failed(f"{folder / MANIFEST}: {error}")
    entries: list[RawEntry] = []
    warnings: list[str] = []
    seen: set[str] = set()
    try:
        for number, item in enumerate(listed, 1):
            path = folder / item["file"]
            if not path.is_file():
                warnings.append(f"{folder / MANIFEST}: article {number}: no file {item['file']!r}")
                continue
            seen.add(path.name)
            published = _as_datetime(item["published"], f"{folder / MANIFEST}: article {number}") \
                if "published" in item else None
            entries.append(_entry(path, item.get("title"), item.get("source"), item.get("url"), published))
        rest = sorted((p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.name not in seen),
                      key=lambda p: (p.stat().st_mtime, p.name))
        entries.extend(_entry(p, None, None, None, None) for p in rest)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return Failed(str(error))
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry.guid}\0{entry.title}\0{entry.published_at}\0{entry.body}\0".encode())
    return Fetched(entries=entries, title=title or folder.name, body_hash=digest.hexdigest(), warnings=warnings)


def _entry(path: Path, title, source, url, published) -> RawEntry:
    raw = path.read_text(encoding="utf-8-sig")
    is_html = SUFFIXES[path.suffix.lower()]
    if path.suffix.lower() in (".md", ".markdown"):
        raw = _markdown_to_text(raw)
    if published is None:
        published = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return RawEntry(
        guid=path.name,
        body=raw,
        body_is_html=is_html,
        url=url or path.resolve().as_uri(),
        title=title,
        source=source or path.parent.name,
        published_at=published,
    )
