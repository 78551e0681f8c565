"""Document frequencies kept in the process, written once a transaction.

Every article reads the document frequency of each of its terms (a hundred or more) and adds
one to each. Read and written row by row, that was the largest database cost of an article
that grows with history (scattered rows of a large table, each its own B-tree path, each a
dirty page at commit). Here the counts an article needs are read once and kept; the
increments of a transaction are summed per term and written when it commits, as one
executemany of relative upserts (`df = df + n`, in term order: two writers wait for each
other instead of deadlocking).

Right with other writers, as a read at the start of each transaction would be: every
article also counts one more in the `#documents` row, in the same transaction as its other
counts. So when a transaction starts, the kept counts are right if and only if `#documents`
still reads what this process last committed; if another writer counted articles since,
the kept counts are dropped and read afresh. A transaction that rolls back drops them too
(they held its increments).
"""

from __future__ import annotations

from collections import Counter
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from storage import driver
from storage.models import TermStat

DOCUMENTS = "#documents"  # term_stats row that counts articles (no term starts with "#")
# Terms kept (about 100 bytes each); past this the counts are dropped and read again as needed.
MAX_TERMS = 400_000

_PENDING = "newsmon.document_counts"  # session.info: this transaction's increments
_READ = f"SELECT term, df FROM {TermStat.__tablename__} WHERE term IN [?]"  # through the driver
_ADD = (f"INSERT INTO {TermStat.__tablename__} (term, df) VALUES (?, ?) "
        f"ON CONFLICT (term) DO UPDATE SET df = {TermStat.__tablename__}.df + excluded.df")


class _Kept:
    def __init__(self) -> None:
        self.dfs: dict[str, int] = {}  # term → articles using it, this transaction's included
        self.documents: int | None = None  # articles counted, as this process last saw them
        self.generation = 0  # one more each time the counts are dropped

    def drop(self) -> None:
        self.dfs.clear()
        self.documents = None
        self.generation += 1


_KEPT: WeakKeyDictionary[Engine, _Kept] = WeakKeyDictionary()


def read(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    """The document frequencies of `terms` (terms no article used left out) and the number of
    articles, this transaction's own counts included."""
    kept, unique = _kept(session, terms)
    return {t: kept.dfs[t] for t in unique if kept.dfs[t] > 0}, kept.documents or 0


def count(session: Session, terms: list[str]) -> tuple[dict[str, int], int]:
    """One more article uses each of `terms` (written when the session commits). Returns what
    `read` gave just before: the counts the article's own IDF weights are computed from."""
    kept, unique = _kept(session, terms)
    before = {t: kept.dfs[t] for t in unique if kept.dfs[t] > 0}
    documents = kept.documents or 0
    for term in unique:
        kept.dfs[term] += 1
    kept.documents = documents + 1
    pending: Counter[str] = session.info[_PENDING]
    pending.update(unique)
    pending[DOCUMENTS] += 1
    return before, documents


def generation(session: Session) -> int:
    """Checks, once a transaction, that nobody else counted articles since this process last
    did (as every read and count does); returns a number that changes whenever that check, or
    a rollback, dropped what the process kept. What else a process keeps of the index
    (storage/active_stories.py) is right as long as this number stays the same: every writer
    of the index counts its articles in the same transaction."""
    return _kept(session, [])[0].generation


def _kept(session: Session, terms: list[str]) -> tuple[_Kept, set[str]]:
    """The kept counts, right for this transaction and holding every one of `terms`; and the
    terms without repeats."""
    connection = session.connection()
    kept = _KEPT.setdefault(connection.engine, _Kept())
    if _PENDING not in session.info:  # the transaction's first use: are the kept counts still right?
        session.info[_PENDING] = Counter()
        row = driver.query(connection, _READ, [[DOCUMENTS]])
        documents = row[0][1] if row else 0
        if documents != kept.documents or len(kept.dfs) > MAX_TERMS:
            kept.drop()
            kept.documents = documents
    unique = set(terms)
    missing = [t for t in unique if t not in kept.dfs]
    if missing:
        found = dict(driver.query_each(connection, _READ, missing))
        for term in missing:
            kept.dfs[term] = found.get(term, 0)
    return kept, unique


def _write(session: Session) -> None:
    pending: Counter[str] | None = session.info.pop(_PENDING, None)
    if pending:  # (empty when the transaction only read)
        driver.executemany_sql(session.connection(), _ADD, [(term, pending[term]) for term in sorted(pending)])


def _forget(session: Session) -> None:
    """The transaction's increments are gone with it, and the kept counts held them."""
    if session.info.pop(_PENDING, None) is not None:
        kept = _KEPT.get(session.get_bind())
        if kept is not None:
            kept.drop()


# On every Session (a few dictionary look-ups for those that never count): whoever opened it,
# the counts it made are written by its commit, and forgotten by its rollback.
event.listen(Session, "before_commit", _write)
event.listen(Session, "after_rollback", _forget)
