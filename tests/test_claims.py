"""Table-driven cases for claim matching (tests/cases/claims.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.claims import analyse
from monitor.developments import diff_article
from monitor.model import KnownClaim

CASES = yaml.safe_load((Path(__file__).parent / "cases" / "claims.yaml").read_text())


def _known(sentences: list[str]) -> list[KnownClaim]:
    return [KnownClaim(id=i, text=s, norm=analyse(s).norm, source="earlier-outlet") for i, s in enumerate(sentences)]


ROWS = [(group, row) for group, rows in CASES.items()
        if group not in ("near_duplicates_in_one_article", "kinds") for row in rows]


@pytest.mark.parametrize(("group", "row"), ROWS, ids=[f"{g}-{i}" for i, (g, _) in enumerate(ROWS)])
def test_is_it_new(group, row):
    diff = diff_article([analyse(row["later"])], _known(row["earlier"]), "later-outlet", "title")
    found = [f.text for f in diff.findings]
    match = diff.matches[0]
    why = f"similarity {match.similarity:.2f}, pair {match.pair:.2f}, union {match.union:.2f}"
    assert bool(found) == row["new"], f"{group}: {row['later']!r} ({why})"


@pytest.mark.parametrize("row", CASES["near_duplicates_in_one_article"])
def test_one_development_per_new_thing(row):
    diff = diff_article([analyse(s) for s in row["article"]], _known(row["earlier"]), "later-outlet", "title")
    assert len(diff.findings) == row["developments"], [f.text for f in diff.findings]


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("worth $500 billion", "n:usd:500000000000"),
        ("worth $500bn", "n:usd:500000000000"),
        ("worth 500 billion dollars", "n:usd:500000000000"),
        ("up 5 per cent", "n:pct:5"),
        ("twenty-four dead", "n:24"),
        ("on February 21", "d:02-21"),
        ("on 21 Feb 2025", "d:02-21"),
        ("on 2025-02-21", "d:02-21"),
        ("in September 2024", "d:2024-09"),
        ("U.S. officials", "e:united_states"),
        ("officials of the United States", "e:united_states"),
        ("Zelenskyy spoke", "e:zelensky"),
    ],
)
def test_canonical_units(text, token):
    assert token in analyse(text).terms


@pytest.mark.parametrize("row", CASES["kinds"], ids=[r["kind"] + "-" + str(i) for i, r in enumerate(CASES["kinds"])])
def test_kind_of_development(row):
    diff = diff_article([analyse(row["later"])], _known(row["earlier"]), "later-outlet", "title")
    assert [f.kind for f in diff.findings] == [row["kind"]]
    if "figures" in row:
        assert diff.findings[0].details["figures"] == row["figures"]
        assert diff.findings[0].details["earlier"] == row["earlier"][0]


def test_a_huge_figure_is_one_token_and_reads_back():
    """A figure of 10^15 or more used to come out cut in two ("n:usd:6.84e+" and "n:15"),
    and the changed-figure finding then failed on the cut token, stopping the feed's poll."""
    claim = analyse("The debt reached $6,840 trillion last year.")
    assert claim.numbers == {"n:usd:6.84e15"}
    diff = diff_article([analyse("The debt reached $7,000 trillion last year.")],
                        _known(["The debt reached $6,840 trillion last year."]), "later-outlet", "title")
    assert [f.kind for f in diff.findings] == ["changed_figure"]
    assert diff.findings[0].details["figures"] == [{"old": "$6840 trillion", "new": "$7000 trillion"}]
