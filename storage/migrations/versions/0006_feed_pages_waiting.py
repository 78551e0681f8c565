"""feed pages waiting

feeds.pages_waiting counts the summary-only entries of a full-text feed that wait for their
article pages (full_text_pages_per_poll was reached); `feeds list` shows it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pages_waiting', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('pages_waiting')
