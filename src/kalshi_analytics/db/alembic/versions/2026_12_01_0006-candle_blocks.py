"""stored blocks of closed hours of 1-minute candles, rendered and compressed for the history route

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by the recorder's sink as hours close (kalshi_analytics.markets.candle_blocks); a database
    # upgraded with history answers it live until then, as before.
    op.create_table(
        "market_candle_blocks",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("start", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("candles", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("crc", sa.BigInteger(), nullable=False),
        sa.Column("digest", postgresql.BYTEA(), nullable=False),
        sa.Column("deflate", postgresql.BYTEA(), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "start", name=op.f("pk_market_candle_blocks")),
    )
    # Already compressed: PostgreSQL should neither try again nor move a block out of line below ~8 kB.
    op.execute("ALTER TABLE market_candle_blocks ALTER COLUMN deflate SET STORAGE EXTERNAL")
    op.execute("ALTER TABLE market_candle_blocks SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    op.drop_table("market_candle_blocks")
