"""Story grouping on real news, measured: ECB+ documents through the real pipeline, B-cubed scores.

    .venv/bin/python bench/story_grouping.py            # score, and write docs/quality.md
    .venv/bin/python bench/story_grouping.py --no-docs  # score only
    .venv/bin/python bench/story_grouping.py --orders 5 # also score 5 other arrival orders

What it does, step by step:
1. Reads ../shared/eval/ecbplus-dev.jsonl (one document a line, gold story = `subtopic_id`).
2. Puts the documents in a fixed shuffled order: `random.Random(SEED).shuffle`, SEED = 2014
   (the file itself is sorted by document id, which would hand the grouper each topic's
   documents together). The order is the same on every run and every machine.
3. Writes them as a directory feed (monitor/fetch/directory.py): one .txt file per document
   and a manifest.toml that publishes them in that order, evenly spread over one week
   (the eval README: "all published within one week"). No titles are given, so each
   article's title is its first sentence, as for any feed entry without one.
4. Fetches the folder with the directory fetcher and stores every entry with
   `monitor.polling.poll_feed` into a fresh SQLite database in a temporary directory:
   normalise → story → developments, as `newsmon run` does.
   No rules are loaded (alerts play no part in grouping).
5. Reads each article's story_id back from the database and prints B-cubed precision,
   recall and F1 over documents, the number of stories made vs gold, and the time per article.

Then the same order once more with every story interrupted (`revival_schedule`): the first
half of each gold story's documents over the first week, the rest over the third, so each
story is dormant (quiet for more than the seven-day default) when its later half begins, and
its first later report must revive it. Then again with look-alikes mixed into the later
weeks (`with_lookalikes`: the same kind of event with other people, which must not revive
the original). Steps 4–5 as above. The eval set's documents carry no
dates, so this is the only measure of revival on real text; bench/throughput.py's synthetic
stream has no true revivals (each copy of a story is published within a few days), only
false ones.

`--local-news FEEDS` (100 by default) also scores bench/polling.py's synthetic local news
(see `score_local_news`).

`--orders N` repeats steps 2–5 with seeds 1..N to show how much the figure depends on the
order of arrival (an online grouper sees each article once, in order). Only SEED's figure is
the headline.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from monitor import polling  # noqa: E402
from monitor.config import FeedConfig  # noqa: E402
from monitor.fetch import Fetched  # noqa: E402
from monitor.fetch.directory import fetch_directory  # noqa: E402
from monitor.model import RawEntry  # noqa: E402
from monitor.rules import RuleSet  # noqa: E402
from storage import models as m  # noqa: E402
from storage.db import Database  # noqa: E402

DATA = ROOT.parent / "shared" / "eval" / "ecbplus-dev.jsonl"
SEED = 2014
START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday; the week the feed covers
WEEK = timedelta(days=7)
COMMAND = ".venv/bin/python bench/story_grouping.py"


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def shuffled(docs: list[dict], seed: int) -> list[dict]:
    order = list(docs)
    random.Random(seed).shuffle(order)
    return order


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def write_feed(docs: list[dict], folder: Path, times: list[datetime] | None = None) -> None:
    """One file per document, and a manifest publishing them in list order over one week (or
    at `times`, one per document, in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    step = WEEK / len(docs)
    lines = ['title = "ECB+ dev (odd topics)"', ""]
    for position, doc in enumerate(docs):
        name = f"{position:04d}_{doc['doc_id']}.txt"
        (folder / name).write_text(doc["text"] + "\n", encoding="utf-8")
        host = urlsplit(doc["url"]).hostname if doc.get("url") else None
        lines += ["[[articles]]", f"file = {_toml_string(name)}",
                  f"source = {_toml_string(host or 'ecbplus-' + doc['doc_id'])}"]
        if doc.get("url"):
            lines.append(f"url = {_toml_string(doc['url'])}")
        published = times[position] if times is not None else START + position * step
        lines += [f"published = {published.strftime('%Y-%m-%dT%H:%M:%SZ')}", ""]
    (folder / "manifest.toml").write_text("\n".join(lines), encoding="utf-8")


def run_pipeline(folder: Path, db: Database, now: datetime = START + WEEK + timedelta(hours=1)
                 ) -> tuple[dict[str, int], float]:
    """Feed the folder through the real pipeline (a poll at `now`, after the last
    publication); each file's story id, and seconds taken."""
    polling.sync_config_feeds(db, [FeedConfig(url=str(folder))])
    with db.session() as session:
        feed_id = session.scalar(select(m.Feed.id).where(m.Feed.url == str(folder)))
    result = fetch_directory(folder)
    if not hasattr(result, "entries"):
        raise SystemExit(f"the directory feed failed: {result}")
    started = time.perf_counter()
    report = polling.poll_feed(db, feed_id, RuleSet(folder=ROOT / "rules"), result, now=now)
    seconds = time.perf_counter() - started
    if report.status != "fetched":
        raise SystemExit(f"poll failed: {report.error}")
    with db.session() as session:
        rows = session.execute(select(m.Article.guid, m.Article.story_id)).all()
    return {guid: story_id for guid, story_id in rows}, seconds


def bcubed(gold: dict[str, str], predicted: dict[str, int]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 over items (Bagga & Baldwin 1998; Amigó et al. 2009)."""
    by_gold: dict[str, set[str]] = defaultdict(set)
    by_pred: dict[int, set[str]] = defaultdict(set)
    for item in gold:
        by_gold[gold[item]].add(item)
        by_pred[predicted[item]].add(item)
    precision = recall = 0.0
    for item in gold:
        same_gold, same_pred = by_gold[gold[item]], by_pred[predicted[item]]
        both = len(same_gold & same_pred)
        precision += both / len(same_pred)
        recall += both / len(same_gold)
    precision, recall = precision / len(gold), recall / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def with_lookalikes(early: list[dict], late: list[dict], seed: int) -> list[dict]:
    """`late`, with a look-alike of each of `early`'s documents mixed in (in a fixed shuffled
    order): bench/throughput.py's copy 1 of it, with other names and figures, as a document of
    its own gold story ("<story>#lookalike"). The same kind of event with other people is
    another story; a look-alike that revives its original's dormant story is a false revival."""
    import throughput  # bench/throughput.py, beside this file: its copies of the gold stories

    copies = throughput.Copies(early + late, SEED)
    lookalikes = [{**doc, "doc_id": f"{doc['doc_id']}-lookalike", "url": None,
                   "subtopic_id": f"{doc['subtopic_id']}#lookalike",
                   "text": copies.rewrite(doc["text"], doc["subtopic_id"], 1)} for doc in early]
    mixed = late + lookalikes
    random.Random(seed).shuffle(mixed)
    return mixed


def revival_schedule(order: list[dict], lookalikes: bool = False) -> tuple[list[dict], list[datetime]]:
    """The documents re-ordered so that every gold story goes dormant and comes back: the
    first half (rounded up) of each story's documents, in `order`, over the first week; the
    rest over the third. Between a story's last early report and its first late one lie more
    than seven days, the default quiet period: its first late report must revive it (a
    stronger match than joining an active story), or it starts a new story."""
    total = Counter(doc["subtopic_id"] for doc in order)
    seen: Counter[str] = Counter()
    early, late = [], []
    for doc in order:
        seen[doc["subtopic_id"]] += 1
        (early if seen[doc["subtopic_id"]] <= (total[doc["subtopic_id"]] + 1) // 2 else late).append(doc)
    if lookalikes:
        late = with_lookalikes(early, late, SEED)
    times = [START + i * WEEK / len(early) for i in range(len(early))]
    times += [START + 2 * WEEK + i * WEEK / len(late) for i in range(len(late))]
    return early + late, times


def score_order(docs: list[dict], seed: int, verbose: bool = False, revival: bool = False,
                lookalikes: bool = False) -> dict:
    order = shuffled(docs, seed)
    times, now = None, START + WEEK + timedelta(hours=1)
    if revival:
        order, times = revival_schedule(order, lookalikes)
        now = START + 3 * WEEK + timedelta(hours=1)
    with tempfile.TemporaryDirectory(prefix="newsmon-bench-") as tmp:
        folder = Path(tmp) / "feed"
        write_feed(order, folder, times)
        db = Database(f"sqlite:///{Path(tmp) / 'newsmon.db'}")
        db.upgrade()
        try:
            by_file, seconds = run_pipeline(folder, db, now)
        finally:
            db.dispose()
    gold = {doc["doc_id"]: doc["subtopic_id"] for doc in order}
    predicted = {name.split("_", 1)[1].removesuffix(".txt"): story for name, story in by_file.items()}
    missing = set(gold) - set(predicted)
    if missing:
        raise SystemExit(f"{len(missing)} documents were not stored, e.g. {sorted(missing)[:3]}")
    precision, recall, f1 = bcubed(gold, predicted)
    if verbose:
        _explain(docs, gold, predicted)
    result = {"seed": seed, "precision": precision, "recall": recall, "f1": f1,
              "stories": len(set(predicted.values())), "gold": len(set(gold.values())),
              "ms_per_article": 1000 * seconds / len(docs)}
    if revival:
        result.update(_revivals(order, times, predicted))
    return result


def _revivals(order: list[dict], times: list[datetime], predicted: dict[str, int]) -> dict:
    """Of the gold stories with a later half, how many its first later report revived (joined
    a story of the story's early reports); and how many look-alikes joined a story of their
    original's early reports (false revivals)."""
    early_stories: dict[str, set[int]] = defaultdict(set)
    first_late: dict[str, str] = {}
    false = lookalikes = 0
    for doc, published in zip(order, times, strict=True):
        story, kind = doc["subtopic_id"], predicted[doc["doc_id"]]
        if published < START + WEEK:
            early_stories[story].add(kind)
        elif story.endswith("#lookalike"):
            lookalikes += 1
            false += kind in early_stories[story.removesuffix("#lookalike")]
        else:
            first_late.setdefault(story, doc["doc_id"])
    revived = sum(predicted[doc_id] in early_stories[story] for story, doc_id in first_late.items())
    return {"interrupted": len(first_late), "revived": revived, "false_revivals": false,
            "lookalike_reports": lookalikes}


def score_local_news(feeds: int) -> dict:
    """bench/polling.py's synthetic local news (`feeds` feeds of 50 entries: short items, each
    on its own event, one in five an event two neighbouring feeds also report), stored feed
    by feed through poll_feed; gold = the event an entry was generated from. Unlike ECB+, whose
    42 stories are 42 different kinds of event, this stream is thousands of unrelated events
    of a few kinds sharing towns and surnames: what it measures is whether stories stay apart."""
    import polling as feeds_bench  # bench/polling.py, beside this file

    start = datetime(2025, 3, 1, tzinfo=UTC)
    gold: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="newsmon-bench-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'newsmon.db'}")
        db.upgrade()
        urls = [f"https://news.example/f/{i}" for i in range(feeds)]
        polling.sync_config_feeds(db, [FeedConfig(url=url) for url in urls])
        with db.session() as session:
            ids = dict(session.execute(select(m.Feed.url, m.Feed.id)).all())
        for feed, url in enumerate(urls):
            entries = []
            for k in range(feeds_bench.ENTRIES):
                event = feeds_bench.event_key(feed, k)
                title, text = feeds_bench.event_text(event)
                entries.append(RawEntry(guid=f"f{feed}-e{k}", title=title, body=text, published_at=start + timedelta(hours=k)))
                gold[entries[-1].guid] = event
            polling.poll_feed(db, ids[url], RuleSet(folder=ROOT / "rules"), Fetched(entries=entries),
                              now=start + timedelta(hours=feeds_bench.ENTRIES))
        with db.session() as session:
            predicted = dict(session.execute(select(m.Article.guid, m.Article.story_id)).all())
        db.dispose()
    precision, recall, f1 = bcubed(gold, predicted)
    sizes = Counter(predicted.values())
    return {"feeds": feeds, "articles": len(gold), "precision": precision, "recall": recall, "f1": f1,
            "stories": len(sizes), "events": len(set(gold.values())), "largest": max(sizes.values())}


def _explain(docs: list[dict], gold: dict[str, str], predicted: dict[str, int]) -> None:
    """Per gold story: the stories its documents went to; per story: the gold stories it mixes."""
    names = {doc["subtopic_id"]: doc["subtopic_name"] for doc in docs}
    by_gold: dict[str, Counter] = defaultdict(Counter)
    by_pred: dict[int, Counter] = defaultdict(Counter)
    for item, story in predicted.items():
        by_gold[gold[item]][story] += 1
        by_pred[story][gold[item]] += 1
    print("\nsplit gold stories (gold: story×documents):")
    for subtopic in sorted(by_gold, key=lambda s: (int(s.split("ecb")[0]), s)):
        spread = by_gold[subtopic]
        if len(spread) > 1:
            parts = ", ".join(f"{story}×{n}" for story, n in spread.most_common())
            print(f"  {subtopic:10s} {names[subtopic][:50]:50s} {parts}")
    print("mixed stories (story: gold×documents):")
    for story, mix in sorted(by_pred.items()):
        if len(mix) > 1:
            print(f"  {story:5d} " + ", ".join(f"{s}×{n}" for s, n in mix.most_common()))


def write_docs(result: dict, others: list[dict], path: Path, data: Path, local: dict | None = None,
               revival: dict | None = None) -> None:
    """Replace (or add) the "Story grouping" section of docs/quality.md with these figures."""
    lines = [
        "## Story grouping",
        "",
        f"Measured with `{COMMAND}` on `{_shown(data)}` "
        f"({result['documents']} documents, {result['gold']} gold stories), "
        f"through the real pipeline (directory feed → `poll_feed` → SQLite), "
        f"in the fixed shuffled order `random.Random({SEED})`, one article at a time.",
        "",
        "| B-cubed precision | recall | F1 | stories made | gold stories | ms per article (whole pipeline) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {result['precision']:.3f} | {result['recall']:.3f} | **{result['f1']:.3f}** | {result['stories']} "
        f"| {result['gold']} | {result['ms_per_article']:.1f} |",
        "",
    ]
    if others:
        f1s = [o["f1"] for o in others]
        lines += [
            f"Other arrival orders (`--orders {len(others)}`, seeds 1–{len(others)}): F1 "
            f"min {min(f1s):.3f}, median {statistics.median(f1s):.3f}, max {max(f1s):.3f} "
            f"({', '.join(f'{f:.3f}' for f in f1s)}).",
            "",
        ]
    if revival:
        lines += [
            f"Dormant stories revived (the same order, but each gold story's later half published two "
            f"weeks after its first half, so that every story goes dormant and its first later report "
            f"must revive it, a stronger match than joining an active story): B-cubed precision "
            f"{revival['precision']:.3f}, recall {revival['recall']:.3f}, F1 **{revival['f1']:.3f}**; "
            f"{revival['stories']} stories; {revival['revived']} of the {revival['interrupted']} "
            "interrupted stories revived by their first later report. The gap to the figure above is "
            "what the look-back costs when stories come back after a quiet week. With look-alikes (`with_lookalikes`: a copy of "
            "each early document with other names and figures, the same kind of event with other people, "
            "mixed into the later weeks; a look-alike that revives its original is a false revival): "
            f"precision {revival['lookalikes']['precision']:.3f}, recall {revival['lookalikes']['recall']:.3f}, "
            f"F1 **{revival['lookalikes']['f1']:.3f}**; {revival['lookalikes']['stories']} stories for "
            f"{revival['lookalikes']['gold']}; {revival['lookalikes']['revived']} of "
            f"{revival['lookalikes']['interrupted']} revived; {revival['lookalikes']['false_revivals']} of the "
            f"{revival['lookalikes']['lookalike_reports']} look-alike reports joined their original's story.",
            "",
        ]
    if local:
        lines += [
            f"Synthetic local news (`--local-news {local['feeds']}`, bench/polling.py's feeds: "
            f"{local['articles']:,} short items on {local['events']:,} events, gold = the event): B-cubed "
            f"precision {local['precision']:.3f}, recall {local['recall']:.3f}, F1 {local['f1']:.3f}; "
            f"{local['stories']:,} stories, the largest {local['largest']} items. Not a quality target "
            "(the items are generated), a guard: unrelated events that share a town or a surname must "
            "stay apart, or stories grow without end.",
            "",
        ]
    lines += [
        "References from the eval README (offline, thresholds chosen on the answers): TF-IDF with "
        "average-linkage agglomerative clustering 0.875, single-pass online centroid 0.865.",
        "",
        "<!-- the text below this line up to the next section is kept by the bench script -->",
    ]
    section = "\n".join(lines)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Quality, measured\n\n"
    start = text.find("## Story grouping")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    else:
        marker = text.find("<!-- the text below this line", start)
        end = text.find("\n", marker) + 1 if marker != -1 else _next_section(text, start)
        text = text[:start] + section + "\n" + text[end:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _next_section(text: str, start: int) -> int:
    following = text.find("\n## ", start + 1)
    return len(text) if following == -1 else following + 1


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT.parent).as_posix()).join(["../", ""])
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the JSONL file (default: %(default)s)")
    parser.add_argument("--orders", type=int, default=0, metavar="N",
                        help="also score N other arrival orders (seeds 1..N)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/quality.md")
    parser.add_argument("--verbose", "-v", action="store_true", help="list split and mixed stories")
    parser.add_argument("--local-news", type=int, default=100, metavar="FEEDS",
                        help="also score bench/polling.py's synthetic local news, FEEDS × 50 entries "
                             "(default %(default)s; 0: skip)")
    parser.add_argument("--throughput", action="store_true",
                        help="then run bench/throughput.py in the same run (issue 3: one command)")
    args = parser.parse_args(argv)

    docs = load(args.data)
    result = score_order(docs, SEED, verbose=args.verbose)
    result["documents"] = len(docs)
    print(f"order seed {SEED}: B-cubed P {result['precision']:.3f}  R {result['recall']:.3f}  "
          f"F1 {result['f1']:.3f}   stories {result['stories']} (gold {result['gold']})   "
          f"{result['ms_per_article']:.1f} ms/article")
    others = []
    for seed in range(1, args.orders + 1):
        other = score_order(docs, seed)
        others.append(other)
        print(f"order seed {seed}: B-cubed P {other['precision']:.3f}  R {other['recall']:.3f}  "
              f"F1 {other['f1']:.3f}   stories {other['stories']}")
    revival = score_order(docs, SEED, revival=True)
    revival["lookalikes"] = score_order(docs, SEED, revival=True, lookalikes=True)
    for label, scored in (("", revival), (", with look-alikes", revival["lookalikes"])):
        print(f"revival (order seed {SEED}, each story's later half two weeks later{label}): B-cubed "
              f"P {scored['precision']:.3f}  R {scored['recall']:.3f}  F1 {scored['f1']:.3f}   "
              f"stories {scored['stories']} (gold {scored['gold']}); revived {scored['revived']} of "
              f"{scored['interrupted']}, look-alike reports joined to their original {scored['false_revivals']}")
    local = score_local_news(args.local_news) if args.local_news else None
    if local:
        print(f"local news ({local['feeds']} feeds, {local['articles']} items): B-cubed P {local['precision']:.3f}  "
              f"R {local['recall']:.3f}  F1 {local['f1']:.3f}   stories {local['stories']} "
              f"(events {local['events']}, largest story {local['largest']})")
    if not args.no_docs:
        write_docs(result, others, ROOT / "docs" / "quality.md", args.data, local, revival)
        print(f"wrote {ROOT / 'docs' / 'quality.md'}")
    if args.throughput:
        import throughput  # bench/throughput.py, beside this file

        throughput.main(["--no-docs"] if args.no_docs else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
