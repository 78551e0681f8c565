"""Development detection on real news, measured: labelled sentences, newsmon's answers, scores.

    .venv/bin/python bench/quality.py            # score, and write docs/quality.md
    .venv/bin/python bench/quality.py --no-docs  # score only
    .venv/bin/python bench/quality.py --errors   # also list every miss and false alarm

The cases are the team's labels (read their headers):
  tests/cases/ecb_new_facts.yaml   13 ECB+ dev stories, every sentence of every later report
                                   labelled new / known (with the sentence it repeats) / other
  tests/cases/seed_new_facts.yaml  the two seed reports, in both orders, the same way

For each story it measures two things, and says which is which:
1. **Detection, gold grouping** (the headline, the figure to tune monitor/developments.py by):
   each later document's sentences go through `monitor.claims.analyse` and
   `monitor.developments.diff_article`, with every sentence of the earlier documents as the
   story's known claims. A sentence is *reported new* when it is part of a development.
2. **Through the pipeline**: every document, in order, through `monitor.pipeline.process_entry`
   (normalise → story → developments → storage) into a fresh SQLite database, one outlet per
   document, published an hour apart. When the story grouper puts a later document in a story
   of its own, that is counted and the document is put into the story anyway (the grouper's
   choice is overridden, nothing else), so that its developments are measured. A sentence is
   *reported new* when its stored claim has a development_id. With the grouping forced, the
   two figures should agree; a difference means the pipeline decides differently from the
   pure function on the same input.

Scores, over labelled sentences: precision and recall of `new`, their F1; the false-alarm rate
on `known` sentences (all are paraphrases or repeats of a named earlier sentence) and on
`other` sentences (datelines, commentary, background). Overall, per story, without the
borderline labels, and for the seeds separately.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from monitor import claims as claims_mod  # noqa: E402
from monitor import developments, normalise, pipeline, stories  # noqa: E402
from monitor.fetch.directory import fetch_directory  # noqa: E402
from monitor.model import KnownClaim, RawEntry  # noqa: E402
from monitor.rules import RuleSet  # noqa: E402
from storage import models as m  # noqa: E402
from storage.db import Database  # noqa: E402

ECB_CASES = ROOT / "tests" / "cases" / "ecb_new_facts.yaml"
SEED_CASES = ROOT / "tests" / "cases" / "seed_new_facts.yaml"
DOCS = ROOT / "docs" / "quality.md"
COMMAND = ".venv/bin/python bench/quality.py"
LABELS = ("new", "known", "other")
START = datetime(2024, 3, 4, 6, tzinfo=UTC)
MARK_START = "<!-- development-detection:start -->"
MARK_END = "<!-- development-detection:end -->"
HEADING = "## Development detection"


# --- the cases -------------------------------------------------------------------------------
@dataclass
class Doc:
    key: str  # ECB+ doc_id, or the seed's path
    entry: RawEntry
    labels: list[dict] | None  # None for the document that opens the story


@dataclass
class Case:
    name: str
    group: str  # "ecb" | "seeds"
    docs: list[Doc]


def sentences_of(text: str) -> list[str]:
    """The sentences newsmon stores for a text (the labels' `i` indexes these)."""
    return list(normalise.split_sentences(normalise.clean_text(text)))


def load_ecb(path: Path = ECB_CASES) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = []
    for story in data["stories"]:
        docs = []
        for k, doc in enumerate(story["documents"]):
            entry = RawEntry(guid=doc["doc_id"], body=doc["text"], url=doc.get("url"), source=f"outlet-{k}",
                             published_at=START + timedelta(hours=k))
            docs.append(Doc(doc["doc_id"], entry, doc.get("sentences") if k else None))
        cases.append(Case(story["story"], "ecb", docs))
    return cases


def load_seeds(path: Path = SEED_CASES) -> list[Case]:
    """The seed cases; each document as the directory feed reads it (manifest title, source)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fetched = fetch_directory(str(ROOT / "seeds"))
    by_name = {entry.guid: entry for entry in fetched.entries}
    cases = []
    for case in data["cases"]:
        docs = []
        for k, doc in enumerate(case["documents"]):
            raw = by_name[Path(doc["file"]).name]
            entry = RawEntry(guid=raw.guid, body=raw.body, url=raw.url, title=raw.title, source=raw.source,
                             published_at=START + timedelta(hours=12 * k))
            docs.append(Doc(doc["file"], entry, doc.get("sentences") if k else None))
        cases.append(Case(case["case"], "seeds", docs))
    return cases


# --- newsmon's answers ---------------------------------------------------------------------
@dataclass
class Answer:
    """Which sentence positions of each later document newsmon reported as new."""

    reported: dict[int, set[int]] = field(default_factory=dict)  # doc index → positions
    matches: dict[int, list] = field(default_factory=dict)  # doc index → SentenceMatch list
    split: list[int] = field(default_factory=list)  # later docs the grouper put elsewhere


EMBEDDER = None  # set by --semantic: the optional extra's sentence embeddings (gold grouping only)


def detect_gold_grouping(case: Case) -> Answer:
    """diff_article on each later document, the earlier documents' sentences as known claims."""
    answer = Answer()
    known: list[KnownClaim] = []
    for k, doc in enumerate(case.docs):
        article = normalise.normalise(doc.entry, doc.entry.published_at, default_source=doc.entry.source)
        analysed = [claims_mod.analyse(s) for s in article.sentences]
        if k:
            semantic = None
            if EMBEDDER is not None:
                texts = list(article.sentences)
                semantic = developments.Semantic(known=EMBEDDER.similarity(texts, [c.text for c in known]),
                                                 within=EMBEDDER.similarity(texts, texts))
            diff = developments.diff_article(analysed, known, article.source, article.title, semantic)
            answer.reported[k] = {p for f in diff.findings for p in f.claim_positions}
            answer.matches[k] = diff.matches
        known += [KnownClaim(id=len(known) + i + 1, text=c.text, norm=c.norm, source=article.source)
                  for i, c in enumerate(analysed)]
    return answer


@contextmanager
def _forced_story(target: int | None, chosen: list) -> Iterator[None]:
    """Record the grouper's own choice in `chosen`; put the article in story `target` if set."""
    real = stories.choose_story

    def choose(found, *args, **kwargs):
        result = real(found, *args, **kwargs)
        chosen.append(result[0])
        return result if target is None else (target, *result[1:])

    with mock.patch.object(stories, "choose_story", choose):
        yield


def detect_pipeline(case: Case) -> Answer:
    """Every document through process_entry into a fresh SQLite database; read the claims back."""
    answer = Answer()
    with tempfile.TemporaryDirectory(prefix="newsmon-quality-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'newsmon.db'}")
        db.upgrade()
        try:
            with db.session() as session:
                feed = m.Feed(url=f"quality:{case.name}", kind="directory", title=case.name)
                session.add(feed)
                session.flush()
                feed_id = feed.id
            ruleset = RuleSet(folder=ROOT / "rules")  # no rules: alerts play no part here
            story_id = None
            for k, doc in enumerate(case.docs):
                chosen: list = []
                with _forced_story(story_id, chosen), db.session() as session:
                    outcome = pipeline.process_entry(session, feed_id, doc.entry, ruleset,
                                                     doc.entry.published_at, "bench")
                if k == 0:
                    story_id = outcome.story_id
                    continue
                if chosen and chosen[-1] != story_id:
                    answer.split.append(k)
                with db.session() as session:
                    rows = session.execute(select(m.Claim.position, m.Claim.development_id)
                                           .where(m.Claim.article_id == outcome.article_id)).all()
                answer.reported[k] = {position for position, dev in rows if dev is not None}
        finally:
            db.dispose()
    return answer


# --- scores --------------------------------------------------------------------------------
@dataclass
class Tally:
    new: int = 0
    hit: int = 0  # labelled new, reported new
    reported: int = 0  # labelled sentences reported new
    known: int = 0
    known_alarm: int = 0
    other: int = 0
    other_alarm: int = 0

    def add(self, label: str, reported: bool) -> None:
        self.reported += reported
        if label == "new":
            self.new += 1
            self.hit += reported
        elif label == "known":
            self.known += 1
            self.known_alarm += reported
        else:
            self.other += 1
            self.other_alarm += reported

    def __iadd__(self, other: Tally) -> Tally:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    @property
    def precision(self) -> float:
        return self.hit / self.reported if self.reported else 0.0

    @property
    def recall(self) -> float:
        return self.hit / self.new if self.new else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def known_rate(self) -> float:
        return self.known_alarm / self.known if self.known else 0.0

    @property
    def other_rate(self) -> float:
        return self.other_alarm / self.other if self.other else 0.0


def tally(case: Case, answer: Answer, borderline: bool = True) -> Tally:
    result = Tally()
    for k, doc in enumerate(case.docs):
        if not doc.labels:
            continue
        reported = answer.reported.get(k, set())
        for row in doc.labels:
            if row.get("borderline") and not borderline:
                continue
            result.add(row["label"], row["i"] in reported)
        # a sentence the labels do not have (they always have all) would be a loader error
    return result


def errors(case: Case, answer: Answer) -> list[dict]:
    """Every miss (new, not reported) and false alarm (known/other, reported), with the reason."""
    found = []
    for k, doc in enumerate(case.docs):
        if not doc.labels:
            continue
        reported = answer.reported.get(k, set())
        matches = {match.position: match for match in answer.matches.get(k, [])}
        for row in doc.labels:
            is_reported = row["i"] in reported
            if (row["label"] == "new") == is_reported:
                continue
            match = matches.get(row["i"])
            found.append({
                "case": case.name, "doc": doc.key, "i": row["i"], "label": row["label"],
                "kind": "miss" if row["label"] == "new" else "false alarm",
                "borderline": bool(row.get("borderline")), "text": row["text"],
                "paraphrase_of": (row.get("paraphrase_of") or {}).get("text"),
                "closest": match.closest.text if match and match.closest else None,
                "similarity": round(match.similarity, 2) if match else None,
                "pair": round(match.pair, 2) if match else None,
                "union": round(match.union, 2) if match else None,
            })
    return found


@dataclass
class Results:
    ecb: list[tuple[Case, Answer, Answer]]  # (case, gold grouping, pipeline)
    seeds: list[tuple[Case, Answer, Answer]]

    def total(self, group: str, which: int, borderline: bool = True, everything: bool = False) -> Tally:
        result = Tally()
        for case, *answers in getattr(self, group):
            answer = answers[which]
            if everything:
                answer = Answer(reported={k: {row["i"] for row in doc.labels}
                                          for k, doc in enumerate(case.docs) if doc.labels})
            result += tally(case, answer, borderline)
        return result

    def splits(self, group: str) -> tuple[int, int]:
        later = sum(len(case.docs) - 1 for case, _, _ in getattr(self, group))
        return sum(len(p.split) for _, _, p in getattr(self, group)), later

    def split_docs(self, group: str) -> list[str]:
        return [f"{case.docs[k].key} ({case.name})" for case, _, p in getattr(self, group) for k in p.split]

    def everything_new(self, group: str) -> Tally:
        """The trivial detector that reports every sentence: the floor precision has to beat."""
        return self.total(group, 0, everything=True)


def measure() -> Results:
    def run(cases: list[Case]) -> list[tuple[Case, Answer, Answer]]:
        return [(case, detect_gold_grouping(case), detect_pipeline(case)) for case in cases]

    return Results(ecb=run(load_ecb()), seeds=run(load_seeds()))


# --- output --------------------------------------------------------------------------------
def _row(name: str, t: Tally) -> str:
    return (f"| {name} | {t.new} | {t.precision:.2f} | {t.recall:.2f} | **{t.f1:.2f}** "
            f"| {t.known_rate:.2f} ({t.known_alarm}/{t.known}) | {t.other_rate:.2f} ({t.other_alarm}/{t.other}) |")


TABLE_HEAD = [
    "| cases | `new` sentences | precision | recall | F1 | false alarms on paraphrases (`known`) "
    "| false alarms on `other` |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def section(results: Results, today: date) -> str:
    ecb_gold, ecb_pipe = results.total("ecb", 0), results.total("ecb", 1)
    split, later = results.splits("ecb")
    seed_split, seed_later = results.splits("seeds")
    n_sent = ecb_gold.new + ecb_gold.known + ecb_gold.other
    lines = [
        f"Measured on {today.isoformat()} with `{COMMAND}`: {len(results.ecb)} ECB+ dev stories "
        f"({sum(len(c.docs) for c, _, _ in results.ecb)} documents; {later} later documents, "
        f"{n_sent} sentences labelled) from `tests/cases/ecb_new_facts.yaml`, and the two seed "
        "reports in both orders from `tests/cases/seed_new_facts.yaml`. The labels are the team's, "
        "made by reading before the detector was run on these texts; the rules are in the files' "
        "headers.",
        "",
        "A sentence counts as *reported new* when it is part of a development of its document. "
        "**Gold grouping** is `monitor.developments.diff_article` on each later document with all "
        "sentences of the earlier documents as the story's claims: the figure for tuning "
        "`monitor/developments.py`. **Pipeline** is every document through "
        "`monitor.pipeline.process_entry` into a fresh SQLite database (one outlet per document, an "
        "hour apart), reading each stored claim's development_id; where the story grouper put a "
        "later document in a story of its own, the document was put into the story anyway.",
        "",
        *TABLE_HEAD,
        _row("ECB+, gold grouping", ecb_gold),
        _row("ECB+, pipeline", ecb_pipe),
        _row("ECB+, gold grouping, borderline labels left out", results.total("ecb", 0, borderline=False)),
        _row("ECB+, every sentence reported new (trivial baseline)", results.everything_new("ecb")),
    ]
    for case, gold, _ in results.seeds:
        lines.append(_row(f"seeds, {case.name}", tally(case, gold)))
    lines += [
        "",
        f"The story grouper put {split} of the {later} later ECB+ documents in a story of their own"
        f"{': ' + ', '.join(results.split_docs('ecb')) if split else ''} "
        f"(forced back into their story for the pipeline row), and {seed_split} of {seed_later} seed "
        f"documents. {_agreement(results)} "
        "Precision counts every labelled sentence reported new (`known` and `other` "
        "ones are its false positives); the false-alarm rates are the share of `known` (all are "
        "paraphrases or repeats of a named earlier sentence) and of `other` sentences reported new.",
        "",
        "Per ECB+ story, gold grouping:",
        "",
        *TABLE_HEAD,
    ]
    for case, gold, _ in results.ecb:
        lines.append(_row(case.name, tally(case, gold)))
    lines += ["", f"`{COMMAND} --errors` lists every miss and false alarm with the closest earlier "
              "sentence and its coverage."]
    return "\n".join(lines)


def _agreement(results: Results) -> str:
    differ = [case.name for case, gold, pipe in results.seeds + results.ecb if tally(case, gold) != tally(case, pipe)]
    if not differ:
        return "Gold grouping and pipeline agree on every case (seed rows: either)."
    return f"Gold grouping and pipeline differ on {', '.join(differ)} (seed rows: gold grouping)."


def write_docs(text: str, path: Path = DOCS) -> None:
    """Replace what lies between our markers (adding the section if it is missing)."""
    block = f"{MARK_START}\n{text}\n{MARK_END}"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Quality, measured\n"
    start, end = current.find(MARK_START), current.find(MARK_END)
    if start != -1 and end > start:
        updated = current[:start] + block + current[end + len(MARK_END):]
    else:
        updated = current.rstrip("\n") + f"\n\n{HEADING}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated, encoding="utf-8")


def print_summary(results: Results) -> None:
    def show(name: str, t: Tally) -> None:
        print(f"{name:48s} new {t.new:3d}  P {t.precision:.3f}  R {t.recall:.3f}  F1 {t.f1:.3f}  "
              f"known→new {t.known_rate:.3f} ({t.known_alarm}/{t.known})  "
              f"other→new {t.other_rate:.3f} ({t.other_alarm}/{t.other})")

    show("ECB+ gold grouping (diff_article)", results.total("ecb", 0))
    show("ECB+ pipeline (process_entry)", results.total("ecb", 1))
    show("ECB+ gold grouping, no borderline", results.total("ecb", 0, borderline=False))
    show("ECB+ every sentence reported new (baseline)", results.everything_new("ecb"))
    split, later = results.splits("ecb")
    print(f"grouper split {split} of {later} later ECB+ documents off their story (forced back): "
          f"{', '.join(results.split_docs('ecb'))}")
    for case, gold, pipe in results.seeds:
        show(f"seeds {case.name} (gold grouping)", tally(case, gold))
        show(f"seeds {case.name} (pipeline)", tally(case, pipe))
    for case, gold, _ in results.ecb:
        show(f"  {case.name}", tally(case, gold))


def print_errors(results: Results) -> None:
    for case, gold, _ in results.seeds + results.ecb:
        for e in errors(case, gold):
            flag = " (borderline)" if e["borderline"] else ""
            print(f"\n[{e['kind']}{flag}] {e['case']} {e['doc']} #{e['i']} labelled {e['label']}")
            print(f"  text:    {_short(e['text'])}")
            if e["paraphrase_of"]:
                print(f"  repeats: {_short(e['paraphrase_of'])}")
            print(f"  closest: {_short(e['closest'] or '-')}  cov {e['similarity']} pair {e['pair']} "
                  f"union {e['union']}")


def _short(text: str, width: int = 160) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/quality.md")
    parser.add_argument("--errors", action="store_true", help="list every miss and false alarm")
    parser.add_argument("--semantic", action="store_true",
                        help="also use sentence embeddings (needs newsmon[semantic]); implies --no-docs")
    args = parser.parse_args(argv)
    if args.semantic:
        from monitor.semantic import Embedder

        global EMBEDDER
        EMBEDDER = Embedder()
        args.no_docs = True
    results = measure()
    print_summary(results)
    if args.errors:
        print_errors(results)
    if not args.no_docs:
        write_docs(section(results, datetime.now(UTC).date()))
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
