"""normalise and the directory feed, from tables of cases and real files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from monitor.fetch import Failed, Fetched
from monitor.fetch.directory import fetch_directory
from monitor.model import RawEntry
from monitor.normalise import canonical_url, clean_text, html_to_text, normalise, split_sentences

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "normalise.yaml").read_text())
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.mark.parametrize("case", CASES["canonical_url"], ids=lambda c: c["in"][:40])
def test_canonical_url(case):
    assert canonical_url(case["in"]) == case["out"]


@pytest.mark.parametrize("case", CASES["html_to_text"], ids=lambda c: c["in"][:30])
def test_html_to_text(case):
    assert clean_text(html_to_text(case["in"])) == case["out"]


@pytest.mark.parametrize("case", CASES["sentences"], ids=lambda c: c["in"][:30])
def test_sentences(case):
    assert list(split_sentences(case["in"])) == case["out"]


def test_same_entry_same_hash_changed_body_other_hash():
    now = datetime(2025, 2, 22, tzinfo=UTC)
    raw = RawEntry(guid="1", body="<p>Kyiv agreed.</p>", body_is_html=True, title="Deal", url="https://e.org/a")
    a, b = normalise(raw, now), normalise(raw, now)
    assert a.content_hash == b.content_hash and a.text == "Kyiv agreed." and a.source == "e.org"
    changed = normalise(RawEntry(guid="1", body="<p>Kyiv agreed today.</p>", body_is_html=True, title="Deal"), now)
    assert changed.content_hash != a.content_hash
    assert normalise(RawEntry(guid="2", body="No title here. Second."), now).title == "No title here."


def test_the_seeds_feed_reads_the_manifest_in_reporting_order():
    result = fetch_directory(SEEDS)
    assert isinstance(result, Fetched)
    assert [e.guid for e in result.entries] == ["003_922b7d489b1430c1.txt", "000_05ca3c854a4f2115.txt"]
    assert result.entries[0].published_at < result.entries[1].published_at
    assert all(e.source and e.title for e in result.entries)


def test_a_broken_manifest_names_the_file_and_line(tmp_path):
    (tmp_path / "a.txt").write_text("Kyiv agreed.")
    (tmp_path / "manifest.toml").write_text('[[articles]]\nfile = "a.txt"\npublished = soon\n')
    result = fetch_directory(tmp_path)
    assert isinstance(result, Failed)
    assert "manifest.toml" in result.error and "line 3" in result.error


def test_a_listed_file_that_is_missing_is_a_warning_not_a_failure(tmp_path):
    (tmp_path / "a.txt").write_text("Kyiv agreed.")
    (tmp_path / "manifest.toml").write_text('[[articles]]\nfile = "gone.txt"\n')
    result = fetch_directory(tmp_path)
    assert isinstance(result, Fetched) and [e.guid for e in result.entries] == ["a.txt"]
    assert "gone.txt" in result.warnings[0]


def test_a_missing_folder_fails_with_its_path(tmp_path):
    result = fetch_directory(tmp_path / "nope")
    assert isinstance(result, Failed) and "nope" in result.error
