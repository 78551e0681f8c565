"""Where an article's CPU time goes, stage by stage, without a profiler's distortion.

    .venv/bin/python bench/pipeline_stages.py            # 3 runs, medians
    .venv/bin/python bench/pipeline_stages.py --runs 5
    .venv/bin/python bench/pipeline_stages.py --db stored-100000.db   # on a copy of a history

With `--db` (a database `bench/throughput.py --keep DIR` left), each run starts from a copy of
it and the documents are published after its newest article, so the look-ups, the indexes and
the document frequencies are those of that history; otherwise from an empty database.

Every ECB+ dev document (../shared/eval/ecbplus-dev.jsonl, 496 reports, in the fixed order
`random.Random(2014)`, 20 minutes apart) goes through `monitor.pipeline.process_entry` into a
fresh SQLite database with the default rules, `store_batch` articles a transaction (25 by
default; `--store-batch 1` for one each), as `poll_feed` does. The stage functions the
pipeline calls are wrapped with a CPU-time counter (`time.process_time`, a few microseconds
per call); what no wrapper covers is reported as "the rest of process_entry" (the
previous-version look-up, the article and claims INSERTs). The text caches (analyse, stem, a
line's sentences) are emptied before each run, so each run reads the text cold, as a stream
of new reports does. cProfile was not used for these shares: it slows Python-heavy code
several times more than code in C (SQLite, regexes), which skews them.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from monitor import claims, pipeline, polling  # noqa: E402
from monitor.config import FeedConfig  # noqa: E402
from monitor.model import RawEntry  # noqa: E402
from monitor.rules import RuleSet, load_rules  # noqa: E402
from storage import models as m  # noqa: E402
from storage.db import Database  # noqa: E402

DATA = ROOT.parent / "shared" / "eval" / "ecbplus-dev.jsonl"
START = datetime(2020, 1, 6, tzinfo=UTC)
# (module, function, label): what process_entry calls, in pipeline order.
STAGES = [
    (pipeline.normalise, "normalise", "normalise (HTML, clean text, hash)"),
    (pipeline.normalise, "split_sentences", "split sentences (syntok)"),
    (pipeline.claims, "analyse", "analyse sentences (claims)"),
    (pipeline.stories, "read", "read the article (stories.read)"),
    (pipeline.story_index, "count_document", "document frequencies (count, read)"),
    (pipeline.story_index, "candidates", "candidate stories (index look-ups)"),
    (pipeline, "_known_claims", "the story's known claims (read)"),
    (pipeline.developments, "diff_article", "diff against the story (diff_article)"),
    (pipeline, "_store_findings", "developments and first sources (write)"),
    (pipeline, "_add_sources", "corroborations (read, write)"),
    (pipeline.story_index, "add_to_story", "story vector (upsert)"),
    (pipeline.alerts, "enqueue_many", "alerts (write)"),
]


def _timed(function: Callable, label: str, spent: Counter) -> Callable:
    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.process_time() - started
    return wrapper


def run_once(entries: list[RawEntry], rules: RuleSet, history: Path | None = None,
             batch: int = polling.STORE_BATCH) -> float:
    with tempfile.TemporaryDirectory(prefix="newsmon-stages-") as tmp:
        if history is not None:
            shutil.copyfile(history, f"{tmp}/newsmon.db")
        db = Database(f"sqlite:///{tmp}/newsmon.db")
        db.upgrade()
        polling.sync_config_feeds(db, [FeedConfig(url="https://stages.example/feed")])
        with db.session() as session:
            feed_id = session.scalar(select(m.Feed.id))
        started = time.process_time()
        for first in range(0, len(entries), batch):
            with db.session() as session:  # commits on leaving: `batch` articles a transaction
                for entry in entries[first:first + batch]:
                    pipeline.process_entry(session, feed_id, entry, rules, entry.published_at, "stages")
        total = time.process_time() - started
        db.dispose()
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--db", type=Path, help="start each run from a copy of this database")
    parser.add_argument("--store-batch", type=int, default=polling.STORE_BATCH, metavar="N",
                        help="articles stored in one transaction (default: the store_batch setting's)")
    args = parser.parse_args(argv)
    start = START
    if args.db is not None:
        history = Database(f"sqlite:///{args.db}")
        with history.session() as session:
            start = session.scalar(select(func.max(m.Article.published_at))) + timedelta(hours=1)
        history.dispose()
    docs = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(2014).shuffle(docs)
    entries = [RawEntry(guid=d["doc_id"], body=d["text"], url=d.get("url"), source=f"outlet-{i % 40}",
                        published_at=start + timedelta(minutes=20 * i)) for i, d in enumerate(docs)]
    rules = load_rules(ROOT / "rules", {"console", "jsonl"})  # as bench/throughput.py: alerts written
    polling.tune_gc()  # as `newsmon run` does

    per_run: list[Counter] = []
    totals: list[float] = []
    originals = [(module, name, getattr(module, name)) for module, name, _ in STAGES]
    commit = Session.commit
    for _ in range(args.runs):
        spent: Counter = Counter()
        claims.analyse.cache_clear()  # before wrapping: the wrapper has no cache_clear
        claims.stem.cache_clear()
        pipeline.normalise._line_sentences.cache_clear()
        for module, name, label in STAGES:
            setattr(module, name, _timed(getattr(module, name), label, spent))
        Session.commit = _timed(commit, "commit", spent)
        try:
            totals.append(run_once(entries, rules, args.db, args.store_batch))
        finally:
            for module, name, function in originals:
                setattr(module, name, function)
            Session.commit = commit
        per_run.append(spent)

    n = len(entries)
    total = statistics.median(totals) / n * 1000
    labels = [label for _, _, label in STAGES] + ["commit"]
    rows = {label: statistics.median(run[label] for run in per_run) / n * 1000 for label in labels}
    rows["the rest of process_entry"] = total - sum(rows.values())
    print(f"{n} articles, {args.runs} runs: {total:.2f} ms CPU an article (median; runs "
          f"{', '.join(f'{t / n * 1000:.2f}' for t in totals)}), {1000 / total:.0f} articles/s")
    print("| stage | ms CPU an article | share |")
    print("| --- | ---: | ---: |")
    for label, ms in sorted(rows.items(), key=lambda item: -item[1]):
        print(f"| {label} | {ms:.2f} | {100 * ms / total:.0f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
