"""feed gaps end repaired or unrepairable (with a reason); causes crash and failover

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_CAUSES = "cause IN ('seq_jump', 'disconnect', 'outage', 'startup', 'other')"
NEW_CAUSES = "cause IN ('seq_jump', 'disconnect', 'outage', 'startup', 'crash', 'failover', 'other')"


def upgrade() -> None:
    # A gap that can never be repaired (the exchange forgot the market, the window is past the horizon) is
    # closed with a reason instead of staying open forever; repaired_at stays NULL so it is never mistaken for
    # a repaired one.
    op.add_column("feed_gaps", sa.Column("unrepairable_reason", sa.Text(), nullable=True))
    op.drop_constraint(op.f("ck_feed_gaps_cause"), "feed_gaps", type_="check")
    op.create_check_constraint(op.f("ck_feed_gaps_cause"), "feed_gaps", NEW_CAUSES)


def downgrade() -> None:
    op.execute("UPDATE feed_gaps SET cause = 'other' WHERE cause IN ('crash', 'failover')")
    op.drop_constraint(op.f("ck_feed_gaps_cause"), "feed_gaps", type_="check")
    op.create_check_constraint(op.f("ck_feed_gaps_cause"), "feed_gaps", OLD_CAUSES)
    op.drop_column("feed_gaps", "unrepairable_reason")
