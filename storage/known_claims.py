"""What a story already said: its latest distinct claims, kept in the process between articles.

Every article that joins a story is compared with the story's latest MAX_KNOWN_CLAIMS distinct
claims. Reading them afresh for each article made that read the largest cost that grows with
story size (12 ms an article on 1 000-article stories in bench/polling.py's data). Claims are
never updated, so a story's claims once read stay right: a later read asks only for the rows
added since (id above the newest held), then counts the story's rows up to that id. The count
catches what the id cannot: a row committed out of id order by another worker (PostgreSQL
sequences hand out ids before commit) or rows deleted with a removed feed. On a mismatch the
story is read afresh, so the cache is exact with any number of workers; it only saves work.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine

from monitor.developments import StoryKeys
from monitor.model import KnownClaim
from storage import driver
from storage import models as m

# A story is compared with at most this many of its latest distinct claims. Long-running
# stories (weeks of live coverage, syndicated copies) would otherwise make each new article
# cost more than the last; what was said 5 000 sentences ago is rarely what a report repeats.
MAX_KNOWN_CLAIMS = 3000
# Once the cap is reached, the oldest are dropped this many at a time (a story is compared with
# MAX_KNOWN_CLAIMS to MAX_KNOWN_CLAIMS + TRIM_SLACK claims), so that the StoryKeys index is
# rebuilt once every few hundred claims rather than for every article.
TRIM_SLACK = MAX_KNOWN_CLAIMS // 4
# Claims kept in memory across stories, least recently used story out first (~30 MB).
CACHED_CLAIMS = 60_000

# Through the driver (storage/driver.py): run for every article that joins a story.
_COLUMNS = (f"SELECT c.id, c.text, c.norm, a.source, c.development_id FROM {m.Claim.__tablename__} c "
            f"JOIN {m.Article.__tablename__} a ON a.id = c.article_id WHERE c.story_id = ?")
_LATEST = _COLUMNS + " ORDER BY c.id DESC LIMIT ?"  # a story read afresh: its newest rows
_SINCE = _COLUMNS + " AND c.id > ? ORDER BY c.id"  # the rows added since the newest held
_COUNT_ALL = f"SELECT count(*), max(id) FROM {m.Claim.__tablename__} WHERE story_id = ?"
_COUNT = _COUNT_ALL + " AND id <= ?"


class Known(NamedTuple):
    """A story's latest distinct claims, oldest first, and their StoryKeys (for the diff)."""

    claims: list[KnownClaim]
    keys: StoryKeys


@dataclass
class _Held:
    # By norm (the first report of a sentence wins), in id order: rows are added oldest first.
    claims: dict[str, KnownClaim] = field(default_factory=dict)
    keys: StoryKeys = field(default_factory=StoryKeys)  # of `claims`, in the same order
    newest: int = 0  # the highest claim id read
    rows: int = 0  # the story's rows with id <= newest, as counted (never more than were read)
    _latest: list[KnownClaim] | None = None

    def add(self, rows) -> None:
        fresh = []
        for r in rows:  # in id order
            if r[2] not in self.claims:
                claim = KnownClaim(id=r[0], text=r[1], norm=r[2], source=r[3], development_id=r[4])
                self.claims[r[2]] = claim
                fresh.append(claim)
            self.newest = max(self.newest, r[0])
        if len(self.claims) > MAX_KNOWN_CLAIMS + TRIM_SLACK:
            kept = list(self.claims.values())[-MAX_KNOWN_CLAIMS:]
            self.claims = {k.norm: k for k in kept}
            self.keys = StoryKeys(kept)
        elif fresh:
            self.keys.extend(fresh)
        if fresh:
            self._latest = None

    def known(self) -> Known:
        if self._latest is None:  # listed once per change, not once per article
            self._latest = list(self.claims.values())
        return Known(self._latest, self.keys)


class KnownClaims:
    """The known claims of recently joined stories, for one database."""

    def __init__(self, budget: int = CACHED_CLAIMS) -> None:
        self.budget = budget
        self._stories: OrderedDict[int, _Held] = OrderedDict()
        self._size = 0
        self.reads = {"held": 0, "since": 0, "afresh": 0}  # how each read was served (benchmarks)

    def read(self, connection: Connection, story_id: int) -> Known:
        """The story's known claims (the list is shared: callers must not change it)."""
        held = self._stories.pop(story_id, None)
        if held is not None:
            self._size -= len(held.claims)
            held = self._refresh(connection, story_id, held)
        if held is None:
            held = self._afresh(connection, story_id)
        self._stories[story_id] = held
        self._size += len(held.claims)
        while self._size > self.budget and len(self._stories) > 1:
            _, out = self._stories.popitem(last=False)
            self._size -= len(out.claims)
        return held.known()

    def _refresh(self, connection: Connection, story_id: int, held: _Held) -> _Held | None:
        """`held` brought up to date, or None when the story must be read afresh."""
        new = driver.query(connection, _SINCE, [story_id, held.newest])
        upto = max([held.newest, *(r[0] for r in new)])
        # Counted after the rows were read: a row committed in between with a higher id is
        # left out of both; one with a lower id makes the count disagree.
        [(count, _)] = driver.query(connection, _COUNT, [story_id, upto])
        if count != held.rows + len(new):
            return None
        self.reads["since" if new else "held"] += 1
        held.add(new)
        held.rows = count
        return held

    def _afresh(self, connection: Connection, story_id: int) -> _Held:
        self.reads["afresh"] += 1
        # Counted before the rows are read: a row committed in between is then read but not
        # counted, which the next read's count notices (it reads afresh again) — never the reverse.
        [(count, newest)] = driver.query(connection, _COUNT_ALL, [story_id])
        held = _Held()
        # Twice the cap: repeated sentences fold.
        held.add(reversed(driver.query(connection, _LATEST, [story_id, 2 * MAX_KNOWN_CLAIMS])))
        held.rows = count if (newest or 0) <= held.newest else 0
        return held


_CACHES: WeakKeyDictionary[Engine, KnownClaims] = WeakKeyDictionary()


def known_claims(connection: Connection) -> KnownClaims:
    """The cache of the database `connection` belongs to (one per engine, gone with it)."""
    engine = connection.engine
    cache = _CACHES.get(engine)
    if cache is None:
        cache = _CACHES[engine] = KnownClaims()
    return cache


def forget_known_claims(engine: Engine) -> None:
    """Drop what is held for `engine`'s database: after a rollback, rows read inside the
    transaction may never have existed (and their ids may be handed out again)."""
    _CACHES.pop(engine, None)
