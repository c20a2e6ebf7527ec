"""stream events: a journal of committed changes with database-wide ids, for the live stream and its resume

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The journal: one row per committing transaction, its events' fields as arrays (ids first_id … last_id).
    # An event about a stored row names it (ticker + ts + source, or ref = trade id) and is rendered from it when
    # read; other events carry their JSON payload (text: never parsed by the database).
    op.create_table(
        "stream_batches",
        sa.Column("last_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "committed_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("kinds", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("tickers", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("ts", postgresql.ARRAY(postgresql.TIMESTAMP(timezone=True)), nullable=False),
        sa.Column("sources", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("refs", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("payloads", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("last_id", name=op.f("pk_stream_batches")),
    )
    # One event per row, for people reading the journal by hand (the stream reads the batches).
    op.execute(
        """
        CREATE VIEW stream_events AS
        SELECT b.first_id + u.ord - 1 AS id, b.committed_at, u.kind, u.ticker, u.ts, u.source, u.ref, u.payload
        FROM stream_batches b
        CROSS JOIN LATERAL unnest(b.kinds, b.tickers, b.ts, b.sources, b.refs, b.payloads) WITH ORDINALITY
            AS u(kind, ticker, ts, source, ref, payload, ord)
        """
    )
    # One row: the last id handed out. Writers take ids by updating it, which also orders their commits.
    op.create_table(
        "stream_head",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), autoincrement=False, nullable=False),
        sa.Column("last_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_stream_head_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_head")),
    )
    op.execute("INSERT INTO stream_head (id, last_id) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("stream_head")
    op.execute("DROP VIEW stream_events")
    op.drop_table("stream_batches")
