"""Alembic environment: the engine comes from storage.Database, never from a URL in an ini file."""

from alembic import context

from storage.models import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",  # SQLite can only ALTER through table copies
    )
    with context.begin_transaction():
        context.run_migrations()
