"""Shared fixtures: real SQLite files and the real PostgreSQL on 127.0.0.1:5432.

`db` runs a test on SQLite and again on PostgreSQL. With CI set, PostgreSQL must be
reachable (the test fails otherwise); elsewhere it is skipped with the reason when absent.
Each test session gets its own PostgreSQL schema inside database `test`, dropped at the end,
so parallel runs on one server do not see each other.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
PG_URL = os.environ.get("NEWSMON_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as error:  # any failure to reach it is the reason to report
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_schema():
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({problem})")
    schema = f"newsmon_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield schema
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _pg_database(schema: str) -> Database:
    # A fresh schema per test: drop what the previous test left, then migrate.
    engine = create_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return Database(f"{PG_URL}?options=-csearch_path%3D{schema}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A migrated, empty database: a SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'newsmon.db'}")
    else:
        database = _pg_database(request.getfixturevalue("pg_schema"))
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'newsmon.db'}")
    database.upgrade()
    yield database
    database.dispose()
