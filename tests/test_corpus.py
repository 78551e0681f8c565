"""Every file of the parser-suite corpus (../shared/corpus) through the real fetch path.

Each file is served by the loopback server (feedparser's tests with the HTTP headers their
index simulates, the rest with a content type from their extension), fetched by fetch_http
over one client in one event loop, parsed, and then normalised. Each must end as entries or
as a one-line error, in bounded time. Required in CI; skipped elsewhere when the corpus is absent.

    .venv/bin/python tests/test_corpus.py      # prints the counts kept in docs/fetching.md
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from feedserver import FeedServer, Reply

from monitor.fetch import Failed, Fetched
from monitor.fetch.http import fetch_http, make_client
from monitor.model import RawEntry

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
CONCURRENCY = 8
PER_FILE_SECONDS = 10.0  # the slowest real file (1.6 MB, 730 entries) takes about 1 s
TOTAL_SECONDS = 150.0
CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/json",
    ".html": "text/html",
}


@dataclass
class Outcome:
    path: str
    seconds: float
    entries: list[RawEntry] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def corpus_files() -> list[tuple[str, dict[str, str]]]:
    """(path relative to the corpus, response headers) for every file."""
    simulated: dict[str, dict[str, str]] = {}
    index = CORPUS / "feedparser_tests" / "index.jsonl"
    for line in index.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        headers = dict(h.split(":", 1) for h in record.get("http_headers", []))
        simulated["feedparser_tests/" + record["path"]] = {k.strip(): v.strip() for k, v in headers.items()}
    files = []
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file()):
        relative = path.relative_to(CORPUS).as_posix()
        # Like feedparser's own test server: the simulated headers, else a type from the extension.
        headers = simulated.get(relative) or {"Content-Type": CONTENT_TYPES.get(path.suffix, "text/plain")}
        files.append((relative, headers))
    return files


async def fetch_all(server: FeedServer, files: list[tuple[str, dict[str, str]]]) -> list[Outcome]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(client, relative: str) -> Outcome:
        async with limit:
            started = time.monotonic()
            result = await fetch_http(client, server.url("/" + quote(relative)), allow_private=True)
            seconds = time.monotonic() - started
        if isinstance(result, Fetched):
            return Outcome(relative, seconds, result.entries, warnings=result.warnings)
        assert isinstance(result, Failed), f"{relative}: {result!r}"
        return Outcome(relative, seconds, error=result.error)

    async with make_client() as client:
        return await asyncio.gather(*(one(client, relative) for relative, _ in files))


def run_corpus() -> tuple[list[Outcome], float]:
    files = corpus_files()
    with FeedServer() as server:
        for relative, headers in files:
            body = (CORPUS / relative).read_bytes()
            server.reply("/" + quote(relative), Reply(200, body, headers))
        started = time.monotonic()
        outcomes = asyncio.run(fetch_all(server, files))
    return outcomes, time.monotonic() - started


def error_kind(error: str) -> str:
    return re.sub(r"line \d+", "line N", error)


def summarise(outcomes: list[Outcome], seconds: float) -> str:
    fed = [o for o in outcomes if o.error is None]
    with_entries = [o for o in fed if o.entries]
    kinds = Counter(error_kind(o.error) for o in outcomes if o.error)
    by_folder = Counter(o.path.split("/")[0] for o in outcomes)
    lines = [
        f"files: {len(outcomes)} ({', '.join(f'{k} {v}' for k, v in sorted(by_folder.items()))})",
        f"feeds with entries: {len(with_entries)}, entries: {sum(len(o.entries) for o in fed)}",
        f"valid feeds with no entries: {len(fed) - len(with_entries)}",
        f"accepted with warnings: {sum(1 for o in fed if o.warnings)}",
        f"errors: {sum(kinds.values())}",
        *[f"  {count:5d}  {kind}" for kind, count in kinds.most_common()],
        f"slowest file: {max(outcomes, key=lambda o: o.seconds).path} "
        f"({max(o.seconds for o in outcomes):.2f} s); wall time {seconds:.1f} s",
    ]
    return "\n".join(lines)


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_run():
    if not CORPUS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the parser corpus is required in CI and is missing at {CORPUS}")
        pytest.skip(f"parser corpus not found at {CORPUS} (it lives in the shared folder beside the repo)")
    return run_corpus()


def test_every_file_ends_as_entries_or_one_line_error_in_bounded_time(corpus_run):
    outcomes, seconds = corpus_run
    assert len(outcomes) == len(corpus_files()) > 2000
    assert seconds < TOTAL_SECONDS
    for outcome in outcomes:
        assert outcome.seconds < PER_FILE_SECONDS, outcome.path
        if outcome.error is not None:
            assert outcome.error.strip() and "\n" not in outcome.error and len(outcome.error) < 200
            assert "Traceback" not in outcome.error
        for entry in outcome.entries:
            assert entry.guid, outcome.path
            assert entry.published_at is None or entry.published_at.tzinfo is not None
            assert entry.url is None or entry.url.startswith(("http://", "https://")), outcome.path
    print("\n" + summarise(outcomes, seconds))


def test_known_files_end_as_a_person_would_expect(corpus_run):
    by_path = {outcome.path: outcome for outcome in corpus_run[0]}

    def entries(path: str) -> int:
        outcome = by_path[path]
        assert outcome.error is None, f"{path}: {outcome.error}"
        return len(outcome.entries)

    assert by_path["node-feedparser/test/feeds/notafeed.html"].error == "not a feed: got an HTML page"
    assert entries("feedparser_tests/json/example.json") == 2
    assert entries("feedjira/spec/sample_feeds/json_feed.json") > 0
    assert entries("rss-parser/test/input/guardian.rss") > 0
    assert entries("node-feedparser/test/feeds/compressed.xml") == 10  # gzip bytes, no Content-Encoding
    assert entries("rss-parser/test/input/giantbomb-podcast.rss") == 730
    heise = by_path["rss-parser/test/input/heise.atom"].entries
    assert any("ü" in (entry.title or "") + entry.body or "ä" in entry.body for entry in heise)  # German text
    assert by_path["SOURCES.txt"].error is not None


def test_every_entry_normalises(corpus_run):
    try:
        from monitor.normalise import normalise
    except ImportError as error:
        pytest.skip(f"monitor/normalise.py is not there yet ({error})")
    fetched_at = datetime(2025, 1, 1, tzinfo=UTC)
    count = 0
    for outcome in corpus_run[0]:
        for entry in outcome.entries:
            article = normalise(entry, fetched_at)
            assert isinstance(article.title, str) and article.title, outcome.path
            count += 1
    assert count > 1000


if __name__ == "__main__":
    if not CORPUS.is_dir():
        sys.exit(f"no corpus at {CORPUS}")
    print(summarise(*run_corpus()))
