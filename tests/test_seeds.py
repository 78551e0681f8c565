"""The first proof that newsmon works: the two seed reports become one story, and what the
later report added is found — in the manifest's order and in reverse."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from storage import models as m
from tests.pipeline_helpers import FIRST, SECOND, developments_of, run_once, seed_folder, settings_for


def _texts(developments) -> list[str]:
    return [d.text for d in developments]


def _matching(texts: list[str], *needles: str) -> list[str]:
    return [t for t in texts if all(n.lower() in t.lower() for n in needles)]


@pytest.fixture
def forward(db, tmp_path):
    run_once(db, settings_for(seed_folder(tmp_path, (FIRST, SECOND)), tmp_path, db))
    return db


@pytest.fixture
def reverse(db, tmp_path):
    run_once(db, settings_for(seed_folder(tmp_path, (SECOND, FIRST)), tmp_path, db))
    return db


@pytest.mark.parametrize("order", [(FIRST, SECOND), (SECOND, FIRST)], ids=["forward", "reverse"])
def test_the_two_seeds_make_one_story_opened_by_the_first(order, db, tmp_path):
    run_once(db, settings_for(seed_folder(tmp_path, order), tmp_path, db))
    first = order[0]
    with db.session() as session:
        stories = session.scalars(select(m.Story)).all()
        assert len(stories) == 1
        assert session.scalar(select(func.count()).select_from(m.Article).where(
            m.Article.story_id == stories[0].id)) == 2
    opening = developments_of(db, first)
    assert [d.kind for d in opening] == ["new_story"]


def test_forward_000_adds_the_five_developments(forward):
    devs = developments_of(forward, SECOND)
    texts = _texts(devs)
    assert {d.kind for d in devs} <= {"new_fact", "new_date", "changed_figure"}
    assert _matching(texts, "updated version of the agreement", "sent to Kyiv")
    marathon = _matching(texts, "marathon") + _matching(texts, "through the night")
    assert len(set(marathon)) == 1, f"the overnight session must be one development: {marathon}"
    assert _matching(texts, "critical security issues")
    assert _matching(texts, "February 10", "$500 billion")
    assert _matching(texts, "February 14", "revised draft memorandum")


def test_forward_000_does_not_repeat_what_003_said(forward):
    texts = _texts(developments_of(forward, SECOND))
    # 003: "Waltz further noted that Zelensky is expected to sign this agreement."
    assert not _matching(texts, "would ultimately sign")
    # 003: "Zelensky had stated that the agreement lacked “security guarantees” …"
    assert not _matching(texts, "decision not to sign")
    for commentary in ("evolving nature of the negotiations", "hopes for a mutually beneficial",
                       "world watches closely", "stakes are high", "Only time will tell"):
        assert not _matching(texts, commentary), commentary


def test_reverse_003_adds_its_own_developments(reverse):
    texts = _texts(developments_of(reverse, FIRST))
    assert _matching(texts, "video address on February 21", "practical provisions", "a fair outcome")
    assert _matching(texts, "Conservative Political Action Conference", "September 2024")
    assert _matching(texts, "February 19", "simplified mineral agreement")
    assert _matching(texts, "a long-term security shield")
    assert _matching(texts, "joint extraction of these minerals")


def test_reverse_003_does_not_repeat_what_000_said(reverse):
    texts = _texts(developments_of(reverse, FIRST))
    assert not _matching(texts, "is expected to sign this agreement")
    assert not _matching(texts, "lacked “security guarantees”")


def test_every_development_says_why_it_is_new(forward):
    for dev in developments_of(forward, SECOND):
        assert dev.closest_text, dev.text
        assert 0.0 <= dev.closest_similarity < 1.0
    with forward.session() as session:
        sources = session.scalars(select(m.DevelopmentSource.source)).all()
    assert "outlet-000" in sources
