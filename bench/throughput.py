"""Whole-pipeline throughput as history grows: articles a second through normalise → story →
developments (and the development, source and alert rows the pipeline writes), with 1 000,
10 000 and 100 000 articles stored in one SQLite database, and the process's peak memory.

    .venv/bin/python bench/throughput.py                        # 1k, 10k, 100k; writes docs/benchmarks.md
    .venv/bin/python bench/throughput.py --sizes 1000 10000 --no-docs
    .venv/bin/python bench/story_grouping.py --throughput       # quality figure, then this, one run

Articles. Real text: the ECB+ dev documents (../shared/eval/ecbplus-dev.jsonl, 42 gold
stories of about 12 reports each). Stored history is made of *copies* of those gold stories:
copy k of a story rewrites every capitalised word after the first of a sentence to a made-up
name (one mapping per copy, so the copy's reports still name the same people and places),
adds k-dependent offsets to its figures and years, and keeps everything else. A copy is thus a
story of realistic size and wording about other people, with other numbers. Copies are
published at PER_DAY articles a day, OPEN stories running at once, so the 7-day quiet period
always holds the same number of recent articles whatever the size of the history.

Pipeline. Everything is stored through `monitor.polling.poll_feed` — the function `newsmon
run` calls for a fetched feed: `store_batch` articles a transaction, default rules loaded (every
development enqueues its console and jsonl alerts), the garbage collector set as `newsmon run`
sets it (`polling.tune_gc`). Nothing is written any other way.

Measure. At each size the same sample is timed: every ECB+ document once (496 articles, in
the fixed order `random.Random(2014)`), as copies with names of their own, in BATCHES polls;
articles a second of each poll (wall clock and process CPU), the median over polls. Peak
memory is the process's RSS high-water mark (getrusage) after the run at that size.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from monitor import lexicon, polling  # noqa: E402
from monitor.config import FeedConfig  # noqa: E402
from monitor.fetch import Fetched  # noqa: E402
from monitor.model import RawEntry  # noqa: E402
from monitor.rules import load_rules  # noqa: E402
from storage import models as m  # noqa: E402
from storage.db import Database  # noqa: E402

DATA = ROOT.parent / "shared" / "eval" / "ecbplus-dev.jsonl"
SIZES = (1_000, 10_000, 100_000)
SEED = 2014
PER_DAY = 100  # articles a day: the 7-day quiet period always holds about 700
OPEN = 16  # stories being reported at once
POLL = 500  # entries per poll while filling
BATCHES = 4  # timed polls at each size (496 articles in all)
START = datetime(2020, 1, 6, tzinfo=UTC)
COMMAND = ".venv/bin/python bench/throughput.py"
HEADING = "## Whole pipeline: throughput as history grows"

# A name, not opening a sentence: capitalised ("Lohan"), in capitals ("AMD") or in camel case
# ("SeaMicro"). Only the first kind was renamed at first: 18 copies of "AMD buys SeaMicro" still
# named AMD and SeaMicro, were one event by construction, and made one 248-article story.
_CAPITAL = re.compile(r"(?<=[\w,;:)] )(?:[A-Z][a-z]{2,}|[A-Z][a-z]*[A-Z][A-Za-z]*)\b")
_NUMBER = re.compile(r"\b\d+\b")
_KEEP = frozenset(
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
     "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
     "The", "This", "That", "These", "They", "There", "Then", "Their", "When", "What", "Where", "Who", "Why",
     "How", "And", "But", "For", "With", "From", "After", "Before", "During", "AM", "PM", "GMT", "EST", "PST",
     "CET", "CEST", "BST", "UTC"]
    + [w.capitalize() for w in lexicon.ORG_WORDS | lexicon.TITLES])  # "Center", "President": not names
_SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "bel", "dri", "sun", "mar", "tek", "zo", "ni", "pra",
              "gul", "hes", "ov", "yan", "cor", "fil"]


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Copies:
    """Copies of the gold stories with other names and figures (see the module's docstring)."""

    def __init__(self, docs: list[dict], seed: int) -> None:
        self.random = random.Random(seed)
        by_story: dict[str, list[dict]] = defaultdict(list)
        for doc in docs:
            by_story[doc["subtopic_id"]].append(doc)
        self.stories = [by_story[k] for k in sorted(by_story)]
        # A story's names: words it writes capitalised inside a sentence, renamed everywhere.
        self.names: dict[str, re.Pattern] = {}
        for story_id, story in by_story.items():
            words = {w for doc in story for w in _CAPITAL.findall(doc["text"])} - _KEEP
            self.names[story_id] = re.compile(r"\b(" + "|".join(sorted(words, key=len, reverse=True)) + r")\b")
        self.copies = 0

    def rewrite(self, text: str, story_id: str, copy: int) -> str:
        offset = copy % 97 + 1

        def name(match: re.Match) -> str:
            rng = random.Random(f"{match.group(0)}/{copy}")  # str seeds are stable across runs
            return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()

        def number(match: re.Match) -> str:
            value = int(match.group(0))
            if 1900 <= value <= 2099:
                return str(1990 + (value - 1990 + copy) % 40)  # a year, still a year
            return str(value + offset) if len(match.group(0)) < 9 else match.group(0)

        return _NUMBER.sub(number, self.names[story_id].sub(name, text))

    def entry(self, doc: dict, copy: int, published: datetime) -> RawEntry:
        outlet = doc["url"].split("/")[2] if doc.get("url") else f"outlet{zlib.crc32(doc['doc_id'].encode()) % 50}.example"
        return RawEntry(guid=f"{doc['doc_id']}#{copy}", body=self.rewrite(doc["text"], doc["subtopic_id"], copy),
                        source=outlet, published_at=published)

    def stream(self, clock: list[datetime]):
        """Reports of OPEN stories at a time, interleaved, at PER_DAY a day, for ever."""
        step = timedelta(days=1) / PER_DAY
        running: list[tuple[int, list[dict]]] = []
        while True:
            while len(running) < OPEN:
                self.copies += 1
                story = list(self.random.choice(self.stories))
                self.random.shuffle(story)
                running.append((self.copies, story))
            index = self.random.randrange(len(running))
            copy, left = running[index]
            yield self.entry(left.pop(), copy, clock[0])
            clock[0] += step
            if not left:
                running.pop(index)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _poll(db: Database, feed_id: int, rules, entries: list[RawEntry], now: datetime,
          batch: int | None = None) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    report = polling.poll_feed(db, feed_id, rules, Fetched(entries=entries), now=now, batch=batch)
    if report.status != "fetched" or report.new_articles != len(entries):
        raise SystemExit(f"poll stored {report.new_articles} of {len(entries)} entries ({report.status})")
    return time.perf_counter() - wall, time.process_time() - cpu


def run(sizes: list[int], data: Path, database: Path, log=print, on_result=None,
        keep: Path | None = None, batch: int | None = None) -> list[dict]:
    docs = load(data)
    sample = list(docs)
    random.Random(SEED).shuffle(sample)
    copies = Copies(docs, SEED)
    db = Database(f"sqlite:///{database}")
    db.upgrade()
    polling.sync_config_feeds(db, [FeedConfig(url="https://bench.example/feed")])
    with db.session() as session:
        feed_id = session.scalar(select(m.Feed.id))
    rules = load_rules(ROOT / "rules", {"console", "jsonl"})
    polling.tune_gc()  # as `newsmon run` does
    clock = [START]
    stream = copies.stream(clock)
    stored, results = 0, []
    started = time.perf_counter()
    for size in sizes:
        while stored < size:
            entries = [next(stream) for _ in range(min(POLL, size - stored))]
            _poll(db, feed_id, rules, entries, clock[0], batch)
            stored += len(entries)
            if stored % 10_000 < POLL:
                log(f"  stored {stored:,} ({time.perf_counter() - started:.0f} s)")
        if keep is not None:  # the history as it stands, to time stages on it (bench/pipeline_stages.py --db)
            keep.mkdir(parents=True, exist_ok=True)
            db.dispose()
            shutil.copyfile(database, keep / f"stored-{size}.db")
        # The sample: every ECB+ document once, as copies of their own, at the stream's pace.
        copy = 1_000_000 + size
        step = timedelta(days=1) / PER_DAY
        per_batch = -(-len(sample) // BATCHES)
        batches = []
        before = resource.getrusage(resource.RUSAGE_SELF)
        for b in range(BATCHES):
            entries = []
            for doc in sample[b * per_batch:(b + 1) * per_batch]:
                story = 2 * int(doc["topic_id"]) + doc["subtopic_id"].endswith("plus")
                entries.append(copies.entry(doc, copy + story, clock[0]))
                clock[0] += step
            wall, cpu = _poll(db, feed_id, rules, entries, clock[0], batch)
            batches.append((len(entries) / wall, len(entries) / cpu))
        after = resource.getrusage(resource.RUSAGE_SELF)
        stored += len(sample)
        with db.session() as session:
            counts = {name: session.scalar(select(func.count()).select_from(table)) for name, table in
                      (("stories", m.Story), ("claims", m.Claim), ("developments", m.Development),
                       ("alerts", m.Alert))}
            sizes_ = [n for (n,) in session.execute(select(m.Story.article_count))]
        result = {"stored": size, "rate": statistics.median(b[0] for b in batches),
                  "cpu_rate": statistics.median(b[1] for b in batches), "batches": batches,
                  "peak_mb": _peak_mb(), "mean_story": statistics.mean(sizes_), "largest_story": max(sizes_),
                  # Where the sample's CPU went (kernel: SQLite's page reads and writes) and
                  # what it read from disk, not from the page cache (blocks of 512 bytes).
                  "user_s": after.ru_utime - before.ru_utime, "sys_s": after.ru_stime - before.ru_stime,
                  "disk_reads": after.ru_inblock - before.ru_inblock,
                  **counts}
        results.append(result)
        if on_result is not None:
            on_result(results)  # written at each size: a long run that stops keeps what it measured
        log(f"N={size:>7,}: {result['rate']:.1f} articles/s wall (CPU {result['cpu_rate']:.1f}/s), "
            f"polls {', '.join(f'{w:.0f}' for w, _ in batches)}; peak RSS {result['peak_mb']:.0f} MB; "
            f"{counts['stories']:,} stories (mean {result['mean_story']:.1f} articles, largest {max(sizes_)}); "
            f"sample CPU user {result['user_s']:.2f} s, kernel {result['sys_s']:.2f} s, "
            f"{result['disk_reads']:,} blocks read from disk")
    db.dispose()
    return results


def table(results: list[dict]) -> list[str]:
    base = results[0]["cpu_rate"]
    lines = ["| stored articles | articles/s, CPU (median poll) | ms CPU per article | × cost vs first "
             "| articles/s, wall | polls (CPU articles/s) | peak RSS | stories (mean size, largest) "
             "| developments | alerts |",
             "| ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |"]
    for r in results:
        lines.append(
            f"| {r['stored']:,} | **{r['cpu_rate']:.1f}** | {1000 / r['cpu_rate']:.1f} | {base / r['cpu_rate']:.2f} "
            f"| {r['rate']:.1f} | {', '.join(f'{c:.0f}' for _, c in r['batches'])} | {r['peak_mb']:.0f} MB "
            f"| {r['stories']:,} ({r['mean_story']:.1f}, {r['largest_story']}) | {r['developments']:,} "
            f"| {r['alerts']:,} |")
    return lines


def verdict(results: list[dict]) -> list[str]:
    """The issue's targets against these figures, in words."""
    last, first = results[-1], results[0]
    growth = first["cpu_rate"] / last["cpu_rate"]
    peak = max(r["peak_mb"] for r in results)
    return [
        f"Targets (issue 3), at {last['stored']:,} stored: ≥ 200 articles/s on one core — "
        f"{'met' if last['cpu_rate'] >= 200 else '**not met**'} ({last['cpu_rate']:.1f}); cost per article "
        f"growing ≤ 1.5× from {first['stored']:,} — {'met' if growth <= 1.5 else '**not met**'} ({growth:.2f}×); "
        f"peak memory ≤ 500 MB — {'met' if peak <= 500 else '**not met**'} ({peak:.0f} MB).",
    ]


NOTES = [
    "CPU time is the figure: the machine is shared, and other work on it stretches the wall clock "
    "(the wall column) far more than the process's own CPU time. Both are one core: the pipeline is "
    "single-threaded, and BLAS is held to one thread (monitor/developments.py).",
    "",
    "Where an article's time goes, stage by stage: `bench/pipeline_stages.py`, in the section after "
    "this one.",
    "",
]


# Ends the part of the section a run rewrites: what follows it (earlier runs, what each
# session changed and measured, written by hand) is kept.
LATEST_END = "<!-- bench/throughput.py rewrites the section down to here -->"


def write_docs(results: list[dict], path: Path, notes: list[str] = NOTES) -> None:
    sizes = [r["stored"] for r in results]
    command = COMMAND if sizes == list(SIZES) else f"{COMMAND} --sizes {' '.join(map(str, sizes))}"
    lines = [HEADING, "", f"Measured with `{command}` (method: the script's docstring).", "", *table(results), "",
             *verdict(results), "", *notes, LATEST_END]
    section = "\n".join(lines).rstrip("\n") + "\n"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    start = text.find(HEADING)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        marker = text.find(LATEST_END, start)
        following = text.find("\n## ", start + 1)
        if marker != -1 and (following == -1 or marker < following):
            text = text[:start] + section + text[marker + len(LATEST_END) + 1:]
        else:
            text = text[:start] + section + ("" if following == -1 else "\n" + text[following + 1:])
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="stored articles")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="copy the database to DIR/stored-N.db at each size, before the timed sample")
    parser.add_argument("--store-batch", type=int, default=None, metavar="N",
                        help=f"entries stored in one transaction (the store_batch setting; default {polling.STORE_BATCH})")
    args = parser.parse_args(argv)
    docs = ROOT / "docs" / "benchmarks.md"

    def written(results: list[dict]) -> None:
        if not args.no_docs:
            write_docs(results, docs)

    with tempfile.TemporaryDirectory(prefix="newsmon-throughput-") as tmp:
        results = run(sorted(args.sizes), args.data, Path(tmp) / "newsmon.db", on_result=written,
                      keep=args.keep)
    print("\n".join(table(results)))
    if not args.no_docs:
        print(f"wrote {docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
