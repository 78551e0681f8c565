"""indexes for reading a story's claims and actors

claims (story_id, id) replaces claims (story_id): storage/known_claims.py asks for a story's
rows above an id and counts them up to one. story_terms gets a partial index on the actor rows
("h:<name>") only, so a story's core actors are read without reading all its terms.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ACTOR_ROWS = sa.text("term LIKE 'h:%'")


def upgrade() -> None:
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('ix_claims_story_id')
        batch_op.create_index('ix_claims_story_id_id', ['story_id', 'id'], unique=False)
    op.create_index('ix_story_terms_actors', 'story_terms', ['story_id'], unique=False,
                    sqlite_where=ACTOR_ROWS, postgresql_where=ACTOR_ROWS)


def downgrade() -> None:
    op.drop_index('ix_story_terms_actors', table_name='story_terms')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('ix_claims_story_id_id')
        batch_op.create_index('ix_claims_story_id', ['story_id'], unique=False)
