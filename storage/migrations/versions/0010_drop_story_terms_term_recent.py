"""drop the (term, last_seen) index of story_terms

Only the look-up of dormant candidate stories used it ("the newest older postings of a
term"). Every article rewrote it at about twenty random places — its vector's terms each get
a new last_seen, a delete and an insert in this index — which made it 42 % of the pages a
commit wrote at 100 000 stored articles. The look-up now walks the term's postings in the
primary key (term, story_id), newest story first, checking each story's last_seen in the
stories table (storage/story_index.py, docs/benchmarks.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:45:00
"""

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_story_terms_term_recent', table_name='story_terms')


def downgrade() -> None:
    op.create_index('ix_story_terms_term_recent', 'story_terms', ['term', 'last_seen'], unique=False)
