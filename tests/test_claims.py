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



def test_a_number_word_in_another_alphabet_is_text_not_a_crash():
    """"sıx" (Turkish dotless ı) matches the number-word pattern, which ignores case the
    Unicode way, but is no key of the number words: it raised KeyError, stopping the feed."""
    assert analyse("İstanbul reported sıx deaths and fıve injuries.").numbers == frozenset()
    assert analyse("Istanbul reported six deaths and five injuries.").numbers == {"n:6", "n:5"}

# What follows a sentence's first word, one of each kind of text a pattern reads: dates, years,
# times, amounts, number words, aliases, attribution, names, quotes, commentary, headings.
_RESTS = [
    " 2013 talks in Kyiv ended, the ministry said.",
    " May 5, 2013, US troops left Kiev and the U.K. said so on its website.",
    " 21st of February 2025 at 7:48 am GMT, $500bn and 5 percent were agreed.",
    " one hundred people, twenty-five thousand dollars and 3 million euros, by 2020-03-04.",
    " United States and European Union signed the deal, according to Reuters.",
    " President Donald Trump met Volodymyr Zelensky at the White House in 2019.",
    " “only time will tell,” could perhaps be the key to the broader future.",
    " Police Department",
    " of 12",
    " thousand people fled the 4 towns.",
    " since 1999 the Ukrainian Ministry of Defence had 4,000 staff, officials told reporters.",
]


def test_a_caseless_opener_reads_the_same_capitalised_or_not():
    """stories.read skips analysing "the …" again when it has "The …" (claims.opener_case_is_moot)."""
    from dataclasses import replace

    from monitor import claims

    assert {"the", "he", "a", "but", "it", "police"} <= claims._CASELESS_OPENERS
    assert not {"in", "may", "one", "us", "mr"} & claims._CASELESS_OPENERS
    for word in sorted(claims._CASELESS_OPENERS):
        for rest in _RESTS:
            capitalised = word.capitalize() + rest
            assert claims.opener_case_is_moot(capitalised, word + rest)
            assert replace(analyse(word + rest), text=capitalised) == analyse(capitalised), (word, rest)


def test_only_a_caseless_opener_lower_cased_is_moot():
    from monitor.claims import opener_case_is_moot

    assert opener_case_is_moot("The fire spread.", "the fire spread.")
    assert not opener_case_is_moot("In 2013 the fire spread.", "in 2013 the fire spread.")
    assert not opener_case_is_moot("May 5 was the day.", "may 5 was the day.")
    assert not opener_case_is_moot("The Fire spread.", "the fire spread.")  # more than the opener
    assert not opener_case_is_moot("THE fire spread.", "the fire spread.")
    assert not opener_case_is_moot("The", "the")
    assert not opener_case_is_moot("“The fire spread.”", "“the fire spread.”")
