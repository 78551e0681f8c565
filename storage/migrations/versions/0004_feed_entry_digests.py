"""feed entry digests

feeds.entry_digests keeps a digest of each entry element of the last fully stored poll, so the
next poll of a changed feed parses only the entries that changed or are new.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entry_digests', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('entry_digests')
