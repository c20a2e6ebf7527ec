"""the history of each market's close time, as the recorder learned it (what a backtest may know when)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_close_times",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("known_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("close_time", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "known_at", name=op.f("pk_market_close_times")),
    )
    # History recorded before this table kept only the latest close time: it is taken as known from when the
    # market was first recorded (an early close announced before the upgrade cannot be told apart).
    op.execute(
        "INSERT INTO market_close_times (ticker, known_at, close_time) "
        "SELECT ticker, created_at, close_time FROM markets WHERE close_time IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("market_close_times")
