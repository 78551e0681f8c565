"""The labelled new-fact cases (tests/cases/*_new_facts.yaml) are well formed, the seeds pass,
and development detection on ECB+ has not collapsed. The ECB+ scores are measured by
bench/quality.py and written to docs/quality.md, not asserted here beyond a loose floor."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_quality", ROOT / "bench" / "quality.py")
quality = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = quality  # dataclasses look their module up while it loads
_spec.loader.exec_module(quality)

ECB_SOURCE = ROOT.parent / "shared" / "eval" / "ecbplus-dev.jsonl"
ECB = quality.load_ecb()
SEEDS = quality.load_seeds()

# Floors that catch a collapse, far below what was measured when they were set (precision
# 0.69, recall 0.90; docs/quality.md has the current figures). Reporting every sentence as new
# scores precision 0.51 on these labels (168 new of 331), so the precision floor sits above
# that; reporting nothing, or only a few, fails the recall floor. Tuning may move the figures
# within them; they only catch a breakage.
PRECISION_FLOOR = 0.55
RECALL_FLOOR = 0.60

# Required seed sentences that newsmon does not yet get right (strict: fix one, delete it here).
# 000 #9 "The original deal … was met with resistance by Zelenskyy, who emphasized the need for
# security guarantees" repeats 003's "the agreement lacked “security guarantees” …, preventing
# it from being signed" (issue 2: the refusal for lack of security guarantees is not new);
# coverage 0.29, pair 0.47, union 0.54 — all below the thresholds, so it is reported new.
KNOWN_GAPS = {("000 after 003", 9)}


def _all_cases():
    return [pytest.param(case, id=case.name) for case in ECB + SEEDS]


@pytest.mark.parametrize("case", _all_cases())
def test_every_later_sentence_is_labelled_as_the_splitter_splits_it(case):
    keys = [doc.key for doc in case.docs]
    sentences = {doc.key: quality.sentences_of(doc.entry.body) for doc in case.docs}
    assert case.docs[0].labels is None, "the first document opens the story and is not labelled"
    for k, doc in enumerate(case.docs[1:], 1):
        assert doc.labels, f"{doc.key}: a later document without labels"
        assert [row["i"] for row in doc.labels] == list(range(len(sentences[doc.key]))), doc.key
        for row in doc.labels:
            where = f"{case.name} {doc.key} #{row['i']}"
            assert row["label"] in quality.LABELS, where
            assert row["text"] == sentences[doc.key][row["i"]], where
            assert set(row) <= {"i", "label", "text", "paraphrase_of", "borderline", "required"}, where
            earlier = row.get("paraphrase_of")
            assert (earlier is not None) == (row["label"] == "known"), f"{where}: known ⇔ paraphrase_of"
            if earlier:
                assert earlier["doc"] in keys[:k], f"{where}: paraphrase of a later document"
                assert sentences[earlier["doc"]][earlier["i"]] == earlier["text"], where


def test_the_ecb_set_is_what_the_issue_asks_for():
    assert len(ECB) >= 10
    assert len({case.name for case in ECB}) == len(ECB)
    assert all(3 <= len(case.docs) <= 6 for case in ECB)
    header = (ROOT / "tests" / "cases" / "ecb_new_facts.yaml").read_text(encoding="utf-8")[:600]
    assert "LABELS ARE THE NEWSMON TEAM'S OWN" in header
    labels = {row["label"] for case in ECB for doc in case.docs[1:] for row in doc.labels}
    assert labels == set(quality.LABELS)
    assert [case.name for case in SEEDS] == ["000 after 003", "003 after 000"]


@pytest.mark.skipif(not ECB_SOURCE.exists(), reason=f"{ECB_SOURCE} is not here (the cases carry their texts)")
def test_the_ecb_texts_are_the_corpus_texts():
    source = {}
    with ECB_SOURCE.open(encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            source[doc["doc_id"]] = doc
    data = yaml.safe_load((ROOT / "tests" / "cases" / "ecb_new_facts.yaml").read_text(encoding="utf-8"))
    for story in data["stories"]:
        for doc in story["documents"]:
            original = source[doc["doc_id"]]
            assert original["subtopic_id"] == story["story"], doc["doc_id"]
            assert doc["text"].rstrip("\n") == original["text"].rstrip("\n"), doc["doc_id"]


def _required():
    for case in SEEDS:
        for doc in case.docs[1:]:
            for row in doc.labels:
                if row.get("required"):
                    marks = [pytest.mark.xfail(strict=True, reason="known gap, see KNOWN_GAPS")] \
                        if (case.name, row["i"]) in KNOWN_GAPS else []
                    yield pytest.param(case.name, row["i"], row["label"], marks=marks,
                                       id=f"{case.name}-{row['i']}-{row['label']}")


@pytest.fixture(scope="module")
def seed_answers():
    """The seeds through the real pipeline (process_entry, SQLite), once for the module."""
    return {case.name: quality.detect_pipeline(case) for case in SEEDS}


@pytest.mark.parametrize(("case_name", "position", "label"), list(_required()))
def test_seed_required_sentences(case_name, position, label, seed_answers):
    answer = seed_answers[case_name]
    assert not answer.split, f"{case_name}: the seeds must make one story"
    reported = position in answer.reported[1]
    case = next(c for c in SEEDS if c.name == case_name)
    text = case.docs[1].labels[position]["text"]
    if label == "new":
        assert reported, f"not reported new: {text}"
    else:
        assert not reported, f"reported new, but labelled {label}: {text}"


def test_ecb_detection_has_not_collapsed():
    total = quality.Tally()
    for case in ECB:
        total += quality.tally(case, quality.detect_gold_grouping(case))
    assert total.precision >= PRECISION_FLOOR, f"precision {total.precision:.3f}"
    assert total.recall >= RECALL_FLOOR, f"recall {total.recall:.3f}"
