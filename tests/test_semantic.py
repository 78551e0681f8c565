"""The optional semantic extra (newsmon[semantic]): real embeddings from the packaged model.

Skipped, with the reason, where the extra is not installed; .ci/run installs it in a second
environment and runs this file there, so CI always runs it.
"""

from __future__ import annotations

import os

import pytest

from monitor import semantic

if os.environ.get("NEWSMON_REQUIRE_SEMANTIC") and not semantic.available():
    raise RuntimeError("NEWSMON_REQUIRE_SEMANTIC is set but the semantic extra is not installed")
pytestmark = pytest.mark.skipif(
    not semantic.available(), reason="the semantic extra is not installed (pip install 'newsmon[semantic]')"
)


@pytest.fixture(scope="module")
def embedder():
    return semantic.default_embedder()


def test_paraphrases_are_closer_than_unrelated_sentences(embedder):
    sims = embedder.similarity(
        ["National Security Advisor Mike Waltz stated his belief that President Zelenskyy would ultimately sign the minerals deal."],
        ["Waltz further noted that Zelensky is expected to sign this agreement.",
         "Only time will tell how this critical chapter in international diplomacy will unfold."],
    )
    assert sims[0, 0] > 0.6 > sims[0, 1]


def test_a_paraphrase_with_other_words_is_not_new_with_the_extra(embedder):
    from monitor.claims import analyse
    from monitor.developments import Semantic, diff_article
    from monitor.model import KnownClaim

    earlier = "Referee Tony Weeks called a halt to the fight in the ninth round."
    later = "Weeks stepped in to wave the fight off in the ninth round."
    known = [KnownClaim(id=1, text=earlier, norm=analyse(earlier).norm, source="a")]
    plain = diff_article([analyse(later)], known, "b", "t")
    with_extra = diff_article([analyse(later)], known, "b", "t",
                              Semantic(known=embedder.similarity([later], [earlier]),
                                       within=embedder.similarity([later], [later])))
    assert not with_extra.findings
    assert plain.matches[0].similarity < 0.7  # the words alone are not enough here


def test_the_seeds_still_hold_with_the_extra(db, tmp_path):
    from sqlalchemy import select

    from storage import models as m
    from tests.pipeline_helpers import FIRST, SECOND, developments_of, run_once, seed_folder, settings_for

    settings = settings_for(seed_folder(tmp_path), tmp_path, db).model_copy(update={"semantic_matching": True})
    run_once(db, settings)
    texts = [d.text for d in developments_of(db, SECOND)]
    assert any("updated version of the agreement" in t for t in texts)
    assert any("February 10" in t and "$500 billion" in t for t in texts)
    assert not any("would ultimately sign" in t for t in texts)
    with db.session() as session:
        assert len(session.scalars(select(m.Story)).all()) == 1
    assert developments_of(db, FIRST)[0].kind == "new_story"
