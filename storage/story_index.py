"""The inverted index of story terms and the document frequencies behind IDF weights.

story_terms holds, per (term, story), the summed weight of the term over the story's article
vectors and when an article last added to it; rows "h:<name>" count how many of the story's
articles have <name> as an actor (not part of the vector). term_stats counts, per term, the
articles that used it, plus one row (`#documents`) counting all articles; the counts are kept
in the process and written once a transaction (storage/document_counts.py).

Look-ups never scan all stories: candidates come from the postings of the article's own
terms — those of active stories from what the process holds (storage/active_stories.py);
for dormant ones, the newest few dormant stories in the postings of the article's rarest
terms, read through the primary key (term, story_id). Their cost follows how many stories
were active in the quiet period, not how many were ever stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import cache, lru_cache

from sqlalchemy import Update, bindparam, func, insert, literal_column, update
from sqlalchemy.orm import Session

from monitor.stories import ACTOR, CORE_SHARE, REVIVE, SAME_STORY, Candidate, Profile, query_terms
from storage import active_stories, document_counts, driver
from storage.models import ACTOR_ROWS, Story, StoryTerm

CANDIDATES = 20  # active stories considered per article: those sharing the most terms
REVIVAL_TERMS = 5  # the first of the article's look-up terms (its rarest) used for dormant stories …
REVIVAL_POSTINGS = 10  # … reading at most this many older postings of each


def document_frequencies(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    """How many articles used each of `terms` (those no article used are left out), and how
    many articles there are (storage/document_counts.py)."""
    return document_counts.read(session, terms)


def count_document(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    """One more article uses each of `terms`. Returns what document_frequencies would have
    returned just before: the counts an article's own IDF weights are computed from. The
    counts are kept in the process and written when the session commits
    (storage/document_counts.py)."""
    return document_counts.count(session, terms)


# The look-ups of `candidates` for stories the process does not hold (dormant ones): SQL both
# SQLite and PostgreSQL accept,
# handed to the driver (storage/driver.py: `[?]` is an IN list). Core's handling of their IN
# lists cost more than the look-ups themselves.
# A dormant story as _dormant returns it, as candidates() reads a held one: (id, term_mass,
# article_count, dormant, latest_year). Whether it is dormant is the query's own condition.
_DORMANT_COLUMNS = "stories.term_mass, stories.article_count, 1, stories.latest_year"
_SHARED = "SELECT story_id, term, weight FROM story_terms WHERE story_id IN [?] AND term IN [?]"
_CORE_ACTORS = (  # the partial index's own condition, as written there
    f"SELECT story_terms.story_id, story_terms.term, story_terms.weight FROM story_terms "
    f"JOIN stories ON stories.id = story_terms.story_id "
    f"WHERE story_terms.story_id IN [?] AND {ACTOR_ROWS.text} "
    f"AND story_terms.weight >= stories.article_count * {CORE_SHARE}"
)


@lru_cache(maxsize=REVIVAL_TERMS)
def _dormant(n_terms: int) -> str:
    """The newest dormant stories holding each of n terms, in one statement (a UNION ALL of
    per-term look-ups). Each walks its term's postings in the primary key (term, story_id)
    backwards, newest story first, and stops at REVIVAL_POSTINGS stories quiet since `since`;
    the stories row it checks is a primary-key look-up in a small table. Parameters: (term,
    since) for each term.

    Newest by story id (creation), not by when the story last used the term: that needed an
    index on (term, last_seen), which every article rewrote at twenty random places (its
    vector's terms get a new last_seen) — 42 % of the pages a commit wrote at 100 000 stored
    (docs/benchmarks.md). The postings between a term's newest and its first dormant story
    are those of active stories: what this walks past is bounded by the look-back, not by
    history.

    Each row also carries what the decision needs of the story (_DORMANT_COLUMNS): the
    stories row is read here anyway, and a second statement for the same rows cost 0.13 ms
    an article at 100 000 stored."""
    per_term = (f"SELECT * FROM (SELECT story_terms.story_id, {_DORMANT_COLUMNS} FROM story_terms JOIN stories "
                f"ON stories.id = story_terms.story_id WHERE story_terms.term = ? AND stories.last_seen < ? "
                f"ORDER BY story_terms.story_id DESC LIMIT {REVIVAL_POSTINGS}) AS term{i}" for i in range(n_terms))
    return " UNION ALL ".join(per_term)


def candidates(session: Session, profile: Profile, since: datetime) -> list[Candidate]:
    """Stories sharing the article's terms: active since `since`, or dormant but recent in
    the postings of its rarest terms. The active ones, and what the decision needs of them,
    come from what the process holds (storage/active_stories.py); the rest from the index."""
    terms = query_terms(profile)
    if not terms:
        return []
    connection = session.connection()
    since_value = driver.bound(StoryTerm.__table__.c.last_seen, connection.dialect, since)
    held = active_stories.held(session, since)
    active = held.active(terms, since_value, CANDIDATES)
    rarest = terms[:REVIVAL_TERMS]
    dormant = {row[0]: row for row in driver.query(connection, _dormant(len(rarest)),
                                                   [value for term in rarest for value in (term, since_value)])}
    story_ids = list(dict.fromkeys([*active, *dormant]))
    if not story_ids:
        return []

    # Each once, as an IN list takes them (an actor's name is often a vector term too).
    wanted = list(dict.fromkeys([*profile.vector, *profile.actors, *(ACTOR + name for name in profile.actors)]))
    stories: dict[int, tuple] = {}
    shared: list[tuple[int, str, float]] = []
    unheld = [sid for sid in story_ids if sid not in held.stories]
    for sid in story_ids:
        story = held.stories.get(sid)
        if story is not None:
            stories[sid] = (sid, story.mass, story.articles, story.last_seen < since_value, story.latest_year)
            shared += [(sid, term, story.terms[term][0]) for term in wanted if term in story.terms]
        else:  # not held, so not active: found by the dormant look-up, which read its row
            stories[sid] = dormant[sid]
    if unheld:
        shared += driver.query(connection, _SHARED, [unheld, wanted])

    dots: dict[int, float] = dict.fromkeys(story_ids, 0.0)
    known: dict[int, set[str]] = {sid: set() for sid in story_ids}
    has_lead: set[int] = set()
    names: dict[int, set[str]] = {sid: set() for sid in story_ids}
    top: dict[int, tuple[float, str]] = {}
    for story_id, term, weight in shared:
        if term in profile.vector:
            part = profile.vector[term] * weight
            dots[story_id] += part
            if part > top.get(story_id, (0.0, ""))[0]:
                top[story_id] = (part, term)
            if term == profile.lead:
                has_lead.add(story_id)
            if term in profile.names:
                names[story_id].add(term)
        known[story_id].add(term.removeprefix(ACTOR))
    found = [
        Candidate(story_id=sid, dot=dots[sid], mass=stories[sid][1] or 0.0,
                  articles=stories[sid][2] or 1, dormant=bool(stories[sid][3]),
                  known=frozenset(known[sid] & profile.actors),
                  lead_known=profile.lead is None or sid in has_lead, latest=stories[sid][4],
                  shared_names=frozenset(names[sid]), top=top.get(sid, (0.0, None)))
        for sid in story_ids if sid in stories
    ]
    # Core actors (named as actors by at least half a story's articles), read only for the
    # stories similar enough to be chosen: it means reading the story's rows.
    close = [c.story_id for c in found if c.cosine >= (REVIVE if c.dormant else SAME_STORY)]
    if not close:
        return found
    actors: dict[int, dict[str, float]] = {sid: {} for sid in close}
    for sid in close:
        story = held.stories.get(sid)
        if story is not None:
            floor = story.articles * CORE_SHARE
            actors[sid] = {name: weight for name, weight in story.actors.items() if weight >= floor}
    unheld = [sid for sid in close if sid not in held.stories]
    if unheld:
        for story_id, term, weight in driver.query(connection, _CORE_ACTORS, [unheld]):
            actors[story_id][term.removeprefix(ACTOR)] = weight
    return [replace(c, actors=actors[c.story_id]) if c.story_id in actors else c for c in found]


def new_story(session: Session, title: str, published: datetime) -> int:
    """A story for an article that joins none (its vector comes with add_to_story)."""
    [(story_id,)] = driver.execute(session.connection(), _NEW_STORY, {
        "title": title, "first_seen": published, "last_seen": published, "article_count": 0, "term_mass": 0.0,
        "status": "active"})
    active_stories.new_story(session, story_id, published)
    return story_id


def add_to_story(session: Session, story_id: int, profile: Profile, published: datetime) -> str:
    """Add an article to its story: its vector (and actors) to the story's terms, one to the
    story's count, its date to the story's span, the latest year it wrote; the story's title.

    Two statements, whatever the article: an upsert that adds the weights in SQL (so two
    writers cannot lose each other's update) and returns the new ones, from which the change
    of the squared norm follows; then one UPDATE of the story row, also relative."""
    actor_rows = {ACTOR + name for name in profile.actors}
    wanted = {**profile.vector, **dict.fromkeys(actor_rows, 1.0)}
    connection = session.connection()
    dialect = connection.dialect
    published_value = driver.bound(StoryTerm.__table__.c.last_seen, dialect, published)
    # In term order, as count_document, for the same reason.
    rows = [(term, story_id, wanted[term], published_value) for term in sorted(wanted)]
    delta = 0.0
    weights = driver.values(connection, _ADD_HEAD, "(?, ?, ?, ?)", _add_tail(dialect.name), rows)
    for term, new in weights:
        if term not in actor_rows:
            added = wanted[term]
            delta += new * new - (new - added) ** 2  # (old + w)² − old², old = new − w
    [(title,)] = driver.execute(connection, _update_story(dialect.name), {
        "story": story_id, "published": published, "delta": delta, "latest": profile.latest,
    })
    held = active_stories.holding(session, story_id)
    if held is not None:
        held.apply(story_id, weights, published_value, profile.latest, delta)
    else:
        active_stories.hold_if_active(session, story_id)
    return title


_ADD_HEAD = f"INSERT INTO {StoryTerm.__tablename__} (term, story_id, weight, last_seen) VALUES "


@cache
def _add_tail(dialect: str) -> str:
    """The upsert adds the weights in SQL (two writers cannot lose each other's update) and
    returns the new ones. SQLite's two-argument max is PostgreSQL's GREATEST."""
    greatest = _greatest_least(dialect)[0]
    table = StoryTerm.__tablename__
    return (f" ON CONFLICT (term, story_id) DO UPDATE SET weight = {table}.weight + excluded.weight, "
            f"last_seen = {greatest}({table}.last_seen, excluded.last_seen) RETURNING term, weight")


def _greatest_least(dialect: str) -> tuple[str, str]:
    if dialect == "postgresql":
        return "greatest", "least"
    if dialect == "sqlite":
        return "max", "min"
    raise RuntimeError(f"newsmon stores to SQLite or PostgreSQL, not {dialect}")


@cache
def _update_story(dialect: str) -> Update:
    """One more article in the story: its count, span, squared norm and latest year, all
    relative to the row as it is (no read first)."""
    greatest, least = (getattr(func, name) for name in _greatest_least(dialect))
    story = Story.__table__
    published = bindparam("published", type_=story.c.first_seen.type)
    latest = bindparam("latest", type_=story.c.latest_year.type)
    return (
        update(story)
        .where(story.c.id == bindparam("story"))
        # Constants as SQL, not bound values: storage/driver.py binds only what the caller gives.
        .values(article_count=story.c.article_count + literal_column("1"),
                first_seen=least(story.c.first_seen, published),
                last_seen=greatest(story.c.last_seen, published),
                term_mass=func.coalesce(story.c.term_mass, literal_column("0.0")) + bindparam("delta"),
                # NULL-safe: SQLite's max(a, NULL) is NULL; PostgreSQL's GREATEST skips NULLs.
                latest_year=greatest(func.coalesce(story.c.latest_year, latest),
                                     func.coalesce(latest, story.c.latest_year)))
        .returning(story.c.title)
    )


_NEW_STORY = insert(Story.__table__).returning(Story.__table__.c.id)
