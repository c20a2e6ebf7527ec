"""stored chunks of closed hours of raw snapshots, rendered and compressed for the raw history route

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by the recorder's sink as hours close (kalshi_analytics.markets.snapshot_chunks); until an hour
    # has its chunks the route renders it live, as before.
    op.create_table(
        "market_snapshot_chunks",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("hour", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("last_ts", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("max_spread", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("keys", postgresql.BYTEA(), nullable=False),
        sa.Column("sources", postgresql.BYTEA(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("crc", sa.BigInteger(), nullable=False),
        sa.Column("digest", postgresql.BYTEA(), nullable=False),
        sa.Column("deflate", postgresql.BYTEA(), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "hour", "seq", name=op.f("pk_market_snapshot_chunks")),
    )
    # Already compressed: PostgreSQL should neither try again nor move a chunk out of line below ~8 kB.
    op.execute("ALTER TABLE market_snapshot_chunks ALTER COLUMN deflate SET STORAGE EXTERNAL")
    op.execute("ALTER TABLE market_snapshot_chunks SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    op.drop_table("market_snapshot_chunks")
