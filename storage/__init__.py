"""storage: SQLAlchemy 2 models, the engine, queries and Alembic migrations."""

from storage.db import Database

__all__ = ["Database"]
