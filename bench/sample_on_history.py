"""bench/throughput.py's timed sample, alone, in a fresh process, on a copy of a kept history.

    .venv/bin/python bench/throughput.py --keep DIR                     # once: DIR/stored-N.db
    .venv/bin/python bench/sample_on_history.py DIR/stored-100000.db    # the sample on it
    .venv/bin/python bench/sample_on_history.py DIR/stored-1000.db --code ../other-checkout

Why: a full throughput run fills 100 000 articles for half an hour before it times anything,
so two versions of the code cannot be compared side by side with it. This copies a history
`throughput.py --keep` left, publishes the same sample (every ECB+ document once, as fresh
copies, in 4 polls through `poll_feed`) after its newest article, and prints CPU articles a
second (median poll), user and kernel CPU, and peak memory. `--code DIR` runs another
checkout's pipeline (and its throughput.py's sample) on the same history: run the two
alternately. `--warm N` stores N other articles first, untimed (caches warm, as in a
long-running process). Figures are not comparable with throughput.py's own: its process
has stored the whole history before the sample.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import sys
import tempfile
from datetime import timedelta
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("history", type=Path, help="a stored-N.db from bench/throughput.py --keep")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose pipeline runs (default: this one)")
    parser.add_argument("--warm", type=int, default=0, metavar="N", help="store N other articles first, untimed")
    parser.add_argument("--store-batch", type=int, metavar="N", help="entries a transaction (default: the code's)")
    args = parser.parse_args(argv)
    code = args.code.resolve()
    sys.path[:0] = [str(code), str(code / "bench")]
    import throughput  # from the checkout chosen above
    from sqlalchemy import func, select

    from monitor.rules import load_rules
    from storage import models as m
    from storage.db import Database

    with tempfile.TemporaryDirectory(prefix="newsmon-sample-") as tmp:
        shutil.copyfile(args.history, f"{tmp}/newsmon.db")
        db = Database(f"sqlite:///{tmp}/newsmon.db")
        db.ensure_schema()  # the checkout's own schema (a history from a newer one cannot run on older code)
        with db.session() as session:
            feed_id = session.scalar(select(m.Feed.id))
            clock = [session.scalar(select(func.max(m.Article.published_at))) + timedelta(hours=1)]
        docs = throughput.load(throughput.DATA)
        sample = list(docs)
        random.Random(throughput.SEED).shuffle(sample)
        copies = throughput.Copies(docs, throughput.SEED)
        rules = load_rules(code / "rules", {"console", "jsonl"})
        from monitor import polling
        if hasattr(polling, "tune_gc"):  # older checkouts left the collector at Python's default
            polling.tune_gc()
        extra = [args.store_batch] if args.store_batch else []  # older checkouts' _poll takes no batch
        if args.warm:
            copies.copies = 3_000_000  # copy numbers no history uses
            stream = copies.stream(clock)
            for start in range(0, args.warm, 500):
                entries = [next(stream) for _ in range(min(500, args.warm - start))]
                throughput._poll(db, feed_id, rules, entries, clock[0], *extra)
        step = timedelta(days=1) / throughput.PER_DAY
        per_poll = -(-len(sample) // throughput.BATCHES)
        before = resource.getrusage(resource.RUSAGE_SELF)
        rates = []
        for b in range(throughput.BATCHES):
            entries = []
            for doc in sample[b * per_poll:(b + 1) * per_poll]:
                story = 2 * int(doc["topic_id"]) + doc["subtopic_id"].endswith("plus")
                entries.append(copies.entry(doc, 2_000_000 + story, clock[0]))
                clock[0] += step
            _wall, cpu = throughput._poll(db, feed_id, rules, entries, clock[0], *extra)
            rates.append(len(entries) / cpu)
        after = resource.getrusage(resource.RUSAGE_SELF)
        db.dispose()
    print(f"{args.history.name} with {code}: {statistics.median(rates):.1f} articles/s CPU (median poll; polls "
          f"{', '.join(f'{r:.0f}' for r in rates)}); user {after.ru_utime - before.ru_utime:.2f} s, kernel "
          f"{after.ru_stime - before.ru_stime:.2f} s; peak RSS {after.ru_maxrss // 1024} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
