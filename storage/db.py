"""The database: engine, sessions and schema migrations (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the CLI read while the daemon writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 32 MB of page cache instead of SQLite's 2 MB: a 100 000-article history's indexes are
    # read and dirtied at scattered pages, and at 2 MB most of them were read again from the
    # OS and dirty ones spilled to the WAL before commit (3.5x the reads, 1.3x the writes;
    # docs/benchmarks.md). The cache fills only as pages are read.
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        path = self.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Last in, first out: the connection used last is used next. A SQLite connection's page
        # cache is dropped whenever another connection wrote, and the default (first in, first
        # out) hands a daemon that once had two sessions open each connection in turn. (An
        # in-memory SQLite database has one connection a thread, and no such pool.)
        in_memory = path is None and make_url(url).get_backend_name() == "sqlite"
        self.engine: Engine = create_engine(url, future=True, **({} if in_memory else {"pool_use_lifo": True}))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def sqlite_path(self) -> Path | None:
        """The file of an SQLite database (None for PostgreSQL or an in-memory one)."""
        url = make_url(self.url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = self.engine
        return config

    def upgrade(self, revision: str = "head") -> None:
        command.upgrade(self._alembic_config(), revision)

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def ensure_schema(self) -> None:
        """Bring the schema to head: new databases are created, old ones migrated."""
        if self.current_revision() != self.head_revision():
            self.upgrade()

    def vacuum(self) -> None:
        """Rebuild the database file compactly, then refresh the planner's statistics.

        On SQLite, VACUUM rewrites every table and index in key order: the random inserts of
        the index tables (story_terms, term_stats) leave their B-tree pages scattered, and a
        history of 100 000 articles stored runs about 10 % faster once rebuilt
        (docs/benchmarks.md). It needs free disk space about the size of the file and holds
        the write lock while it runs (about half a minute per 2 GB): a daemon's polls wait
        for it (up to the 30 s busy timeout; an entry that gives up is stored by the next
        poll). On PostgreSQL, VACUUM (ANALYZE), which does not block writers."""
        if self.dialect == "sqlite":
            with self.engine.connect() as connection:
                connection.exec_driver_sql("VACUUM")
                connection.exec_driver_sql("PRAGMA optimize")
                # In WAL mode the rebuilt pages sit in the log until a checkpoint copies them
                # back; only then is the file itself rewritten and cut to its new size.
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM (ANALYZE)")

    def dispose(self) -> None:
        self.engine.dispose()
