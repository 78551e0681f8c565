"""Which tables and indexes a poll writes, on a copy of a kept history: WAL pages an article.

    .venv/bin/python bench/throughput.py --keep DIR             # once: DIR/stored-N.db
    .venv/bin/python bench/history_pages.py DIR/stored-100000.db
    .venv/bin/python bench/history_pages.py DIR/stored-100000.db --articles 500

Why: on a large history what an article costs beyond its text is mostly pages — index pages
read from the OS and dirtied at scattered places, each written to the WAL at commit. Timing
cannot tell which index is to blame on a noisy machine; this counts. The history is copied
and brought to this checkout's schema (migrations run, WAL checkpointed), the pages of every
table and index are mapped with SQLite's `dbstat`, automatic checkpoints are turned off, and
`--articles` new copies of throughput.py's stories (names of their own) are stored through
`poll_feed` as `newsmon run` does. Then every frame of the WAL is read: its page number names
the table or index it belongs to ("new page" for pages the file did not have). A page written
by two commits counts twice, as it costs twice.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import struct
import sys
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import throughput  # noqa: E402
from sqlalchemy import event, func, select  # noqa: E402

from monitor import polling  # noqa: E402
from monitor.rules import load_rules  # noqa: E402
from storage import models as m  # noqa: E402
from storage.db import Database  # noqa: E402

_WAL_HEADER, _FRAME_HEADER = 32, 24


def wal_pages(wal: bytes) -> list[int]:
    """The page number of each frame of a WAL file, in order."""
    page_size = struct.unpack(">I", wal[8:12])[0]
    frames = (len(wal) - _WAL_HEADER) // (_FRAME_HEADER + page_size)
    return [struct.unpack(">I", wal[_WAL_HEADER + i * (_FRAME_HEADER + page_size):][:4])[0] for i in range(frames)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("history", type=Path, help="a stored-N.db from bench/throughput.py --keep")
    parser.add_argument("--articles", type=int, default=200, help="articles stored (default 200)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="newsmon-pages-") as tmp:
        path = f"{tmp}/newsmon.db"
        shutil.copyfile(args.history, path)
        migrated = Database(f"sqlite:///{path}")
        migrated.ensure_schema()
        migrated.dispose()
        keeper = sqlite3.connect(path)  # open to the end: the last connection to close would checkpoint
        keeper.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        owner = dict(keeper.execute("SELECT pageno, name FROM dbstat"))

        db = Database(f"sqlite:///{path}")
        event.listen(db.engine, "connect", lambda dbapi, _record: dbapi.execute("PRAGMA wal_autocheckpoint=0"))
        with db.session() as session:
            feed_id = session.scalar(select(m.Feed.id))
            clock = [session.scalar(select(func.max(m.Article.published_at))) + timedelta(hours=1)]
        copies = throughput.Copies(throughput.load(throughput.DATA), throughput.SEED)
        copies.copies = 3_000_000  # copy numbers no history uses
        stream = copies.stream(clock)
        polling.tune_gc()
        rules = load_rules(ROOT / "rules", {"console", "jsonl"})
        throughput._poll(db, feed_id, rules, [next(stream) for _ in range(args.articles)], clock[0])
        pages = wal_pages(Path(f"{path}-wal").read_bytes())
        db.dispose()
        keeper.close()
    counts = Counter(owner.get(page, "(new page)") for page in pages)
    print(f"{args.history.name}: {args.articles} articles, {len(pages):,} WAL pages, "
          f"{len(pages) / args.articles:.1f} an article")
    print("| table or index | pages an article | share |")
    print("| --- | ---: | ---: |")
    for name, n in counts.most_common():
        if n / args.articles >= 0.1:
            print(f"| {name} | {n / args.articles:.1f} | {100 * n / len(pages):.0f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
