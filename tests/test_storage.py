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
