"""Story grouping: the pure decisions, as tables (tests/cases/stories.yaml), and the reading
of an article (headline case, actors, years) that they rest on."""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import yaml

from monitor import stories
from monitor.claims import analyse
from monitor.normalise import split_sentences
from monitor.stories import Candidate, Profile

ROOT = Path(__file__).resolve().parent.parent
CASES = yaml.safe_load((ROOT / "tests" / "cases" / "stories.yaml").read_text(encoding="utf-8"))
SEED_TITLES = {a["file"]: a["title"] for a in tomllib.loads(
    (ROOT / "seeds" / "manifest.toml").read_text(encoding="utf-8"))["articles"]}


def _article(spec: dict) -> tuple[str, list]:
    if "seed" in spec:
        title, text = SEED_TITLES[spec["seed"]], (ROOT / "seeds" / spec["seed"]).read_text(encoding="utf-8")
    else:
        title, text = spec["title"], spec["text"]
    return title, [analyse(s) for s in split_sentences(text)]


def _profiles(readings: list[stories.Reading]) -> list[Profile]:
    """Profiles in arrival order, each with IDF from the articles before it and itself."""
    dfs: Counter[str] = Counter()
    out = []
    for number, reading in enumerate(readings):
        out.append(stories.profile(reading, dfs, number + 1))
        dfs.update(reading.counts.keys())
    return out


def _case_id(case: dict) -> str:
    return case["case"]


def _article_params():
    # A known limitation is an expected failure, strictly: the day it passes, the test says so.
    for case in CASES["articles"]:
        marks = [pytest.mark.xfail(strict=True, reason=case["known_limitation"])] \
            if case.get("known_limitation") else []
        yield pytest.param(case, id=case["case"], marks=marks)


@pytest.mark.parametrize("case", list(_article_params()))
def test_article_cases(case):
    others = [stories.read(*_article(a)) for a in case.get("others", [])]
    members = [stories.read(*_article(a)) for a in case["story"]]
    new = stories.read(*_article(case["article"]))
    profiles = _profiles([*others, *members, new])
    story_profiles, article = profiles[len(others):-1], profiles[-1]
    candidate = stories.as_candidate(1, story_profiles, article)
    choice = stories.choose_story(article, [candidate])
    got = "same" if choice.story_id == 1 else "new"
    assert got == case["expect"], f"{choice.reason} (similarity {choice.similarity:.3f})"


def _candidate(spec: dict) -> Candidate:
    return Candidate(story_id=spec["story"], dot=spec["cosine"], mass=1.0, articles=spec.get("articles", 1),
                     dormant=spec.get("dormant", False), known=frozenset(spec.get("known", [])),
                     actors=spec.get("actors", {}), lead_known=spec.get("lead_known", True),
                     latest=spec.get("latest"), shared_names=frozenset(spec.get("shared_names", [])),
                     top=(spec["top"][1], spec["top"][0]) if "top" in spec else (0.0, None))


@pytest.mark.parametrize("case", CASES["decisions"], ids=_case_id)
def test_decision_cases(case):
    profile = Profile(vector={}, terms=frozenset(case.get("article_terms", [])),
                      actors=frozenset(case.get("article_actors", [])), lead=case.get("article_lead"),
                      dated=case.get("article_dated"), names=frozenset(case.get("article_names", [])))
    choice = stories.choose_story(profile, [_candidate(c) for c in case["candidates"]])
    assert choice.story_id == case["expect"], choice.reason


def test_decision_says_why():
    profile = Profile(vector={}, terms=frozenset({"ravens"}), actors=frozenset({"pryce"}))
    refused = stories.choose_story(profile, [Candidate(1, 0.7, 1.0, articles=2, actors={"dorsey": 2})])
    assert refused.story_id is None and "other actors (pryce vs dorsey)" in refused.reason
    assert "no candidate" in stories.choose_story(profile, []).reason
    assert stories.choose_story(profile, [Candidate(3, 0.9, 1.0, dormant=True)]).reason == "revives story 3"
    later = Profile(vector={}, terms=frozenset({"rey"}), actors=frozenset(), lead="rey", dated=2013)
    assert "a later event (rey, 2013; the story's newest year is 2009)" in \
        stories.choose_story(later, [Candidate(4, 0.5, 1.0, latest=2009, lead_known=False)]).reason


# --- reading an article -----------------------------------------------------------------------
def _read(title: str, text: str) -> stories.Reading:
    return stories.read(title, [analyse(s) for s in split_sentences(text)])


def test_a_year_after_publication_is_a_plan_not_the_date():
    text = ("Nordwind Energy opened a wind farm in Esbjerg on Monday. "
            "The company plans to double its output by 2030, chief executive Anna Berg said in 2024.")
    undated = _read("Wind farm opens", text)
    assert (undated.dated, undated.latest) == (2030, 2030)  # without a publication year, every year counts
    published = stories.read("Wind farm opens", [analyse(s) for s in split_sentences(text)], until_year=2025)
    assert (published.dated, published.latest) == (2024, 2024)


def test_candidates_are_looked_up_by_the_rarest_terms_other_articles_used():
    counts = Counter({"police": 9.0, "city": 8.0, "berg": 6.0, "quarry": 3.0, "zyxt": 2.0, **{f"w{i}": 1.0 for i in range(20)}})
    dfs = {"police": 900, "city": 700, "berg": 3, "quarry": 12, **{f"w{i}": 50 + i for i in range(20)}}
    profile = stories.profile(stories.Reading(counts, frozenset()), dfs, 1000)
    terms = stories.query_terms(profile)
    assert len(terms) == stories.LOOKUP_TERMS
    assert terms[:2] == ["berg", "quarry"]  # fewest articles first; "zyxt" (no other article) finds nothing
    assert "police" not in terms and "zyxt" not in terms


def test_a_shouted_headline_is_read_in_the_article_case():
    reading = _read("CHARGERS' WILLIAMS ARRESTED ON SUSPICION OF DUI",
                    "San Diego Chargers tackle Jamal Williams was arrested on suspicion of DUI, police said. "
                    "Williams was stopped after midnight. The Chargers said Williams would be disciplined. "
                    "Williams was released in the morning. Williams has played nine seasons.")
    # "Williams" and "Chargers" are names in the body; "arrested" and "suspicion" are not.
    assert reading.counts["william"] > reading.counts["arrest"]
    assert reading.counts["william"] >= stories.ENTITY_WEIGHT * stories.TITLE_WEIGHT
    assert reading.counts["suspicion"] < stories.ENTITY_WEIGHT * stories.TITLE_WEIGHT
    assert reading.actors == {"william"}


def test_headline_words_that_the_body_writes_in_lower_case_are_not_names():
    lower, upper = stories._case_evidence(["The fire destroyed the historic building overnight."])
    assert stories._recased("Overnight Fire Destroys Historic Building", lower, upper) == \
        "overnight fire destroys historic building"
    assert stories._recased("A plain sentence about nothing", lower, upper) is None


def test_weekdays_months_and_time_zones_are_not_names():
    reading = _read("Storm hits coast", "On Sunday, March 3, the storm hit Brixton at 11:06 PM GMT, police said. "
                                        "Brixton police said the storm passed on Sunday. Brixton was flooded. "
                                        "Schools in Brixton closed on Monday. Brixton expects more rain.")
    assert reading.counts["brixton"] >= 3 * stories.ENTITY_WEIGHT
    for word in ("sunday", "gmt", "pm"):
        assert reading.counts.get(word, 0) < stories.ENTITY_WEIGHT * 2, word
    assert reading.actors == {"brixton"}


def test_a_year_in_the_text_is_a_term_of_its_own():
    reading = _read("Election held", "Voters went to the polls on 27 / 09 / 2013 after the 2008 vote was annulled. "
                                     "The budget was $2013 million.")
    assert reading.counts["y:2013"] == stories.YEAR_WEIGHT * stories.LEAD_WEIGHT
    assert reading.counts["y:2008"] > 0


def test_an_article_is_dated_by_the_years_of_its_first_sentences():
    reading = _read("Harbour reopens", "Posted: Apr 02, 2013. The harbour of Valport reopened on Monday. "
                                       "Valport was closed for a week. The harbour was built in 1890. "
                                       "A similar strike in 2008 lasted a month.")
    assert (reading.dated, reading.latest) == (2013, 2013)
    undated = _read("Harbour reopens", "The harbour of Valport reopened on Monday. Valport was closed for a "
                                       "week. Workers cheered. A similar strike in 2008 lasted a month.")
    assert (undated.dated, undated.latest) == (None, 2008)
    # the lead name: the strongest name of the article's vector
    assert stories.profile(reading, {}, 1).lead == "valport"


def test_the_lead_is_the_first_sentence_that_says_something():
    reading = _read("Dateline", "Posted: Apr 02, 2009 11: 06 PM\n"
                                "Harbour workers in Valport walked out on Monday over pay cuts.\n"
                                "The strike closed the harbour.")
    assert reading.counts["harbour"] == stories.LEAD_WEIGHT + 1


def test_profile_keeps_the_strongest_terms_at_unit_length():
    counts = Counter({f"w{i}": i + 1 for i in range(50)})
    profile = stories.profile(stories.Reading(counts, frozenset()), {}, 10)
    assert len(profile.vector) == stories.MAX_TERMS
    assert set(profile.vector) == {f"w{i}" for i in range(50 - stories.MAX_TERMS, 50)}
    assert math.isclose(sum(w * w for w in profile.vector.values()), 1.0)
    assert profile.terms == frozenset(counts)


# --- the index (storage/story_index.py), on SQLite and PostgreSQL ------------------------------
def _stored_story(session, profile: Profile, seen, title="s"):
    from storage import story_index

    story_id = story_index.new_story(session, title, seen)
    assert story_index.add_to_story(session, story_id, profile, seen) == title
    story_index.count_document(session, list(profile.terms))
    return story_id


def test_index_finds_active_and_dormant_stories_and_the_decision_revives_only_on_a_strong_match(db):
    from datetime import UTC, datetime, timedelta

    from storage import models as m
    from storage import story_index

    now = datetime(2026, 3, 1, tzinfo=UTC)
    quake = Profile(vector={"sulawesi": 0.8, "poso": 0.5, "quak": 0.33}, terms=frozenset({"sulawesi", "poso", "quak"}),
                    actors=frozenset({"sulawesi"}))
    strike = Profile(vector={"harbour": 0.8, "strike": 0.6}, terms=frozenset({"harbour", "strike"}), actors=frozenset())
    with db.session() as session:
        old = _stored_story(session, quake, now - timedelta(days=30))
        recent = _stored_story(session, strike, now - timedelta(days=1))
        row = session.get(m.Story, old)
        # "h:sulawesi" counts the story's articles naming Sulawesi as an actor; not part of the vector
        assert math.isclose(row.term_mass, sum(w * w for w in quake.vector.values()))
        assert session.get(m.StoryTerm, ("h:sulawesi", old)).weight == 1.0
        dfs, documents = story_index.document_frequencies(session, ["sulawesi", "harbour", "nothing"])
        assert (dfs, documents) == ({"sulawesi": 1, "harbour": 1}, 2)

    since = now - timedelta(days=7)  # the default quiet period
    with db.session() as session:
        same_quake = story_index.candidates(session, quake, since)
        assert [(c.story_id, c.dormant) for c in same_quake] == [(old, True)]
        assert same_quake[0].known == {"sulawesi"} and dict(same_quake[0].actors) == {"sulawesi": 1.0}
        assert stories.choose_story(quake, same_quake).story_id == old  # cosine 1: revived
        weak = Profile(vector={"sulawesi": 0.3, "flood": 0.95}, terms=frozenset({"sulawesi", "flood"}),
                       actors=frozenset())
        found = story_index.candidates(session, weak, since)
        assert [c.story_id for c in found] == [old]
        assert stories.choose_story(weak, found).story_id is None  # dormant needs REVIVE
        assert [c.story_id for c in story_index.candidates(session, strike, since)] == [recent]
        assert story_index.candidates(session, Profile({"nothing": 1.0}, frozenset(), frozenset()), since) == []


def test_index_reports_the_story_s_newest_year_and_whether_it_has_the_article_s_lead_name(db):
    from datetime import UTC, datetime, timedelta

    from storage import models as m
    from storage import story_index

    now = datetime(2026, 3, 1, tzinfo=UTC)
    first = Profile(vector={"berg": 0.8, "vane": 0.6}, terms=frozenset({"berg", "vane", "y:2009"}),
                    actors=frozenset({"berg"}), lead="berg", dated=2009, latest=2009)
    background = Profile(vector={"berg": 0.6, "vane": 0.8}, terms=frozenset({"berg", "vane", "y:2004"}),
                         actors=frozenset(), lead="berg", latest=2004)
    recast = Profile(vector={"reyes": 0.8, "vane": 0.6}, terms=frozenset({"reyes", "vane", "berg"}),
                     actors=frozenset({"reyes"}), lead="reyes", dated=2013, latest=2013)
    with db.session() as session:
        story = _stored_story(session, first, now)
        story_index.add_to_story(session, story, background, now - timedelta(days=2))  # an older year
        no_year = Profile(vector={"vane": 1.0}, terms=frozenset({"vane"}), actors=frozenset())
        story_index.add_to_story(session, story, no_year, now + timedelta(hours=5))
    with db.session() as session:
        row = session.get(m.Story, story)
        # each article counted once, the span widened both ways, the newest year kept through NULL
        assert (row.article_count, row.first_seen, row.last_seen, row.latest_year) == \
            (3, now - timedelta(days=2), now + timedelta(hours=5), 2009)
        assert math.isclose(row.term_mass, sum(w * w for w in {"berg": 1.4, "vane": 2.4}.values()))
    with db.session() as session:
        [found] = story_index.candidates(session, recast, now)
        assert (found.latest, found.lead_known) == (2009, False)
        assert "a later event" in stories.choose_story(recast, [found]).reason
        [same] = story_index.candidates(session, first, now)
        assert (same.latest, same.lead_known) == (2009, True)


def test_index_reports_which_of_the_article_s_names_the_story_has(db):
    from datetime import UTC, datetime

    from storage import story_index

    now = datetime(2026, 3, 1, tzinfo=UTC)
    cook = Profile(vector={"vinar": 0.6, "cook": 0.6, "climber": 0.5}, terms=frozenset({"vinar", "cook", "climber"}),
                   actors=frozenset(), names=frozenset({"vinar", "cook"}))
    eiger = Profile(vector={"moser": 0.6, "eiger": 0.6, "climber": 0.5}, terms=frozenset({"moser", "eiger", "climber"}),
                    actors=frozenset(), names=frozenset({"moser", "eiger"}))
    with db.session() as session:
        story = _stored_story(session, cook, now)
    with db.session() as session:
        [same] = story_index.candidates(session, cook, now)
        assert same.shared_names == {"vinar", "cook"}
        [other] = story_index.candidates(session, eiger, now)  # found by "climber", names none
        assert other.story_id == story and other.shared_names == frozenset()
        assert "no name in common (eiger, moser are new to the story)" in stories.choose_story(eiger, [other]).reason


def test_index_reports_the_shared_term_that_adds_most_to_the_similarity(db):
    from datetime import UTC, datetime

    from storage import story_index

    now = datetime(2026, 3, 1, tzinfo=UTC)
    fire = Profile(vector={"quimper": 0.8, "warehous": 0.5, "fire": 0.33}, terms=frozenset({"quimper", "warehous", "fire"}),
                   actors=frozenset())
    budget = Profile(vector={"quimper": 0.8, "budget": 0.6}, terms=frozenset({"quimper", "budget"}), actors=frozenset())
    with db.session() as session:
        _stored_story(session, fire, now)
    with db.session() as session:
        [same] = story_index.candidates(session, fire, now)
        assert same.top[1] == "quimper" and math.isclose(same.top[0], 0.64)
        assert math.isclose(same.cosine_beyond_top, (0.5 * 0.5 + 0.33 * 0.33) / math.sqrt(same.mass), rel_tol=1e-6)
        [other] = story_index.candidates(session, budget, now)  # similar by the city alone
        assert other.cosine >= stories.SAME_STORY and other.cosine_beyond_top == 0.0
        assert "only quimper in common" in stories.choose_story(budget, [other]).reason


def test_counting_documents_twice_adds_up(db):
    from storage import story_index

    with db.session() as session:
        story_index.count_document(session, ["a", "b"])
    with db.session() as session:
        story_index.count_document(session, ["b", "c", "c"])
    with db.session() as session:
        assert story_index.document_frequencies(session, ["a", "b", "c"]) == ({"a": 1, "b": 2, "c": 1}, 2)


# --- the quiet period (setting quiet_period), through the real pipeline ------------------------
_STRIKE = ("Dock workers in Valport walked out on Monday over pay cuts. The Valport harbour strike closed "
           "all twelve berths. The Valport Dockers Union said 2,400 members joined the strike. Ferries to "
           "Marrow Island were cancelled. Harbour master Ilse Brandt said cargo ships were queuing offshore. "
           "The union wants the 6 percent pay cut withdrawn.")
_PAPERS = {
    # day 0: the strike
    "a_strike.txt": (0, _STRIKE),
    # day 10, first: the same harbour, a new angle; close enough to join an active story, not
    # to revive a dormant one
    "b_ferries.txt": (10, "Ferries to Marrow Island resumed on Thursday after weeks of disruption at Valport "
                          "harbour. The island council said tourism had lost 3 million euros. Ferry operator "
                          "Nordlys added two sailings a day. Shops on Marrow Island restocked."),
    # day 10, later: another report of the strike itself; a strong match revives its story
    "c_strike_again.txt": (10, _STRIKE.replace("walked out on Monday", "stayed out for a tenth day")
                           + " Talks with the port authority broke down again."),
}


def _quiet_feed(tmp_path):
    folder = tmp_path / "feed"
    folder.mkdir()
    lines = []
    for hour, (name, (day, text)) in enumerate(_PAPERS.items()):
        (folder / name).write_text(text)
        lines += ["[[articles]]", f'file = "{name}"', f'source = "outlet-{name[0]}"',
                  f"published = 2025-03-{1 + day:02d}T{8 + hour:02d}:00:00Z", ""]
    (folder / "manifest.toml").write_text("\n".join(lines))
    return folder


def _stories_by_file(db) -> dict[str, int]:
    from sqlalchemy import select

    from storage import models as m

    with db.session() as session:
        return {guid.rsplit("/", 1)[-1]: story for guid, story in session.execute(
            select(m.Article.guid, m.Article.story_id))}


@pytest.mark.parametrize("quiet_period, ferries_join", [("7d", False), ("30d", True)])
def test_a_story_goes_dormant_after_the_configured_quiet_period_and_a_strong_match_revives_it(
        db, tmp_path, quiet_period, ferries_join):
    from monitor.config import Settings
    from tests.pipeline_helpers import run_once, settings_for

    settings = Settings(**{**settings_for(_quiet_feed(tmp_path), tmp_path, db).model_dump(),
                           "quiet_period": quiet_period})
    run_once(db, settings)
    story = _stories_by_file(db)
    # Ten days after the strike story's last article: dormant with a 7-day quiet period, so the
    # ferries report (a weak match) starts a story of its own; with 30 days it joins.
    assert (story["b_ferries.txt"] == story["a_strike.txt"]) is ferries_join
    # A strong match revives the dormant story (and joins the active one) either way.
    assert story["c_strike_again.txt"] == story["a_strike.txt"]


def test_quiet_period_is_a_duration_setting(monkeypatch):
    from monitor.config import Settings, load_settings

    assert Settings().quiet_period == 7 * 86400
    monkeypatch.setenv("NEWSMON_QUIET_PERIOD", "36h")
    assert load_settings().quiet_period == 36 * 3600


def test_two_postgresql_writers_counting_the_same_terms_never_deadlock(pg_schema):
    """Workers on one PostgreSQL upsert shared rows (term_stats, a story's terms) in one
    transaction per article; taken in different orders, the row locks deadlock and one
    article's transaction fails. Each writer here counts the same terms in its own shuffled
    order, many times, at the same time as the other."""
    import random
    import threading
    from datetime import UTC, datetime

    from conftest import _pg_database

    from storage import story_index

    database = _pg_database(pg_schema)
    database.upgrade()
    terms = [f"t{i}" for i in range(60)]
    with database.session() as session:
        story = story_index.new_story(session, "s", datetime(2026, 3, 1, tzinfo=UTC))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(seed: int) -> None:
        shuffle = random.Random(seed)
        start.wait()
        for _ in range(40):
            order = shuffle.sample(terms, len(terms))
            try:
                with database.session() as session:
                    story_index.count_document(session, order)
                    vector = {term: 0.1 for term in order[:20]}
                    story_index.add_to_story(session, story, Profile(vector, frozenset(vector), frozenset()),
                                             datetime(2026, 3, 1, tzinfo=UTC))
            except Exception as error:  # a deadlock: PostgreSQL aborts one of the two transactions
                errors.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.dispose()
    assert errors == []
