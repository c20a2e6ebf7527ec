"""feed gaps get a client-generated key, so a gap can be opened and repaired while PostgreSQL is down

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("feed_gaps", sa.Column("key", sa.Text(), nullable=True))
    # Gaps recorded before keys existed get a stable key derived from their id.
    op.execute("UPDATE feed_gaps SET key = 'legacy-' || id::text WHERE key IS NULL")
    op.alter_column("feed_gaps", "key", nullable=False)
    op.create_unique_constraint(op.f("uq_feed_gaps_key"), "feed_gaps", ["key"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_feed_gaps_key"), "feed_gaps", type_="unique")
    op.drop_column("feed_gaps", "key")
