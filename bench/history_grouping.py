"""Story grouping in bench/throughput.py's synthetic stream, scored: B-cubed over a kept history.

    .venv/bin/python bench/throughput.py --keep DIR             # once: DIR/stored-N.db
    .venv/bin/python bench/history_grouping.py DIR/stored-100000.db [OTHER.db ...]

The stream is made of copies of the ECB+ gold stories (throughput.py's docstring), and each
article's guid names its document and its copy ("<doc_id>#<copy>"): the gold story of an
article is (the document's gold story, the copy). This scores how newsmon grouped a history
of months — with dormant stories and revivals, which the ECB+ figure (one week) never
exercises — the way bench/story_grouping.py scores ECB+: B-cubed precision, recall and F1
over the first version of every article. The copies share the non-name vocabulary of their
gold story, so this is a hard case for precision: its figures are a guard against changes
that merge or split more, not a quality target.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from story_grouping import bcubed  # noqa: E402
from throughput import DATA  # noqa: E402


def score(history: Path, gold_story: dict[str, str]) -> tuple[int, int, int, float, float, float]:
    connection = sqlite3.connect(f"file:{history}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT guid, story_id FROM articles WHERE version = 1").fetchall()
    finally:
        connection.close()
    gold, found = {}, {}
    for guid, story_id in rows:
        doc_id, copy = guid.rsplit("#", 1)
        gold[guid] = f"{gold_story[doc_id]}#{copy}"
        found[guid] = story_id
    precision, recall, f1 = bcubed(gold, found)
    return len(rows), len(set(found.values())), len(set(gold.values())), precision, recall, f1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("histories", type=Path, nargs="+", help="stored-N.db files from bench/throughput.py --keep")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    gold_story = {}
    for line in args.data.read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            gold_story[doc["doc_id"]] = doc["subtopic_id"]
    for history in args.histories:
        articles, stories, golds, precision, recall, f1 = score(history, gold_story)
        print(f"{history}: {articles:,} articles, {stories:,} stories ({golds:,} gold): "
              f"B-cubed P {precision:.4f}  R {recall:.4f}  F1 {f1:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
