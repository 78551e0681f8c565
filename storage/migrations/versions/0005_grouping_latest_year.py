"""grouping: the newest year a story's articles wrote

stories.latest_year lets the grouper tell a later event of the same kind from the story it
resembles ("another year is another story", monitor/stories.py). Stories stored before this
migration have none, and are compared as before until an article adds one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latest_year', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_column('latest_year')
