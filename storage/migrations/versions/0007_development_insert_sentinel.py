"""development insert sentinel

developments._sentinel: a column SQLAlchemy fills while inserting several developments in one
statement, so that SQLite's RETURNING ids can be matched to their rows (storage/models.py).
Nothing reads it; rows inserted before it exist have NULL there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 17:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('developments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('_sentinel', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('developments', schema=None) as batch_op:
        batch_op.drop_column('_sentinel')
