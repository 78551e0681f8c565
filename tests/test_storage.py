from sqlalchemy import inspect

from storage.db import Database


def test_upgrade_creates_every_table_and_is_idempotent(db):
    tables = set(inspect(db.engine).get_table_names())
    assert {"feeds", "articles", "stories", "story_terms", "claims", "developments", "alerts"} <= tables
    assert db.current_revision() == db.head_revision()
    db.upgrade()  # a second upgrade is a no-op, not an error
    assert db.current_revision() == db.head_revision()


def test_sqlite_file_and_folder_are_created(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'deep' / 'er' / 'n.db'}")
    database.ensure_schema()
    assert (tmp_path / "deep" / "er" / "n.db").exists()
    database.dispose()


def test_the_migrations_build_the_indexes_the_models_declare_and_go_back_down(db):
    """Every index of the models exists after upgrade (with its columns), so the hot
    look-ups run on what the code was written for, and no other: an index nothing reads still
    costs every insert. The last migration goes down and up."""
    from alembic import command

    from storage.models import Base

    inspector = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        built = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(table.name)
                 if not ix.get("duplicates_constraint")}
        declared = {index.name: [c.name for c in index.columns] for index in table.indexes}
        assert built == declared, table.name
    config = db._alembic_config()
    command.downgrade(config, "-1")
    assert "ix_story_terms_term_recent" in {ix["name"] for ix in inspect(db.engine).get_indexes("story_terms")}
    db.upgrade()
    assert db.current_revision() == db.head_revision()
    assert "ix_story_terms_term_recent" not in {ix["name"] for ix in inspect(db.engine).get_indexes("story_terms")}


def test_dormant_stories_are_read_newest_first_from_the_primary_key_without_sorting(tmp_path):
    """The dormant look-up walks each term's postings backwards in the primary key and stops
    at its limit: no sort of all a term's postings, no scan of the stories table."""
    from storage import story_index

    database = Database(f"sqlite:///{tmp_path / 'n.db'}")
    database.upgrade()
    try:
        with database.engine.connect() as connection:
            plan = [row[-1] for row in connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + story_index._dormant(2), ("a", "2026-01-01", "b", "2026-01-01"))]
        assert sum("sqlite_autoindex_story_terms_1 (term=?)" in step for step in plan) == 2, plan
        assert sum("stories USING INTEGER PRIMARY KEY" in step for step in plan) == 2, plan
        assert not any("TEMP B-TREE" in step or step.startswith("SCAN stories") for step in plan), plan
    finally:
        database.dispose()


def test_core_actors_are_read_through_the_partial_index_of_actor_rows(tmp_path):
    """The partial index serves only a query that repeats its condition word for word."""
    from storage import driver, story_index

    database = Database(f"sqlite:///{tmp_path / 'n.db'}")
    database.upgrade()
    try:
        with database.engine.connect() as connection:
            # As the driver expands and runs it (storage/driver.py)
            plan = " ".join(str(row) for row in driver.query(
                connection, "EXPLAIN QUERY PLAN " + story_index._CORE_ACTORS, [[1, 2]]))
        assert "ix_story_terms_actors" in plan, plan
    finally:
        database.dispose()


def test_after_two_sessions_at_once_the_last_used_connection_serves_the_next_ones(tmp_path):
    """A SQLite connection keeps its page cache only while no other connection writes: once
    the pool holds two connections, one session after another must keep getting the same one
    (the last used), not each in turn."""
    from sqlalchemy import text

    database = Database(f"sqlite:///{tmp_path / 'n.db'}")
    database.upgrade()
    try:
        with database.session() as first, database.session() as second:  # the pool now holds two
            assert first.connection().connection.dbapi_connection is not \
                second.connection().connection.dbapi_connection
        used = []
        for _ in range(4):
            with database.session() as session:
                session.execute(text("SELECT 1"))
                used.append(session.connection().connection.dbapi_connection)
        assert all(connection is used[0] for connection in used)
    finally:
        database.dispose()
