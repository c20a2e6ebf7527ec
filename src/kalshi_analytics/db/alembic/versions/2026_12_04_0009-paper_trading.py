"""paper trading: sessions, fills, positions, equity points, session events; the live runner's lease and heartbeats

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = postgresql.TIMESTAMP(timezone=True)
_MONEY = sa.Numeric(precision=18, scale=4)
_PRICE = sa.Numeric(precision=10, scale=4)


def upgrade() -> None:
    op.create_table(
        "paper_sessions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("strategy_name", sa.Text(), nullable=False),
        sa.Column("strategy_version", sa.Text(), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("market_filter", postgresql.JSONB(), nullable=False),
        sa.Column("tickers", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("config", postgresql.JSONB(), nullable=False),
        sa.Column("initial_capital", _MONEY, nullable=False),
        sa.Column("restart_policy", sa.Text(), server_default=sa.text("'resume'"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("stopped_at", _TS, nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("reset_of", sa.UUID(), nullable=True),
        sa.Column("cash", _MONEY, nullable=False),
        sa.Column("realised_pnl", _MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("fees_paid", _MONEY, server_default=sa.text("0"), nullable=False),
        sa.Column("num_fills", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("skipped", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("processed_until", _TS, nullable=True),
        sa.Column("last_active_at", _TS, nullable=True),
        sa.Column("runner", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'stopped', 'failed')", name=op.f("ck_paper_sessions_status")),
        sa.CheckConstraint("restart_policy IN ('resume', 'reset')", name=op.f("ck_paper_sessions_restart_policy")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_sessions")),
    )
    op.create_index("ix_paper_sessions_strategy_name", "paper_sessions", ["strategy_name"])
    op.create_table(
        "paper_fills",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("price", _PRICE, nullable=False),
        sa.Column("count", sa.Numeric(), nullable=False),
        sa.Column("fee", _MONEY, nullable=False),
        sa.Column("cash_after", _MONEY, nullable=False),
        sa.Column("snapshot_ts", _TS, nullable=False),
        sa.Column("snapshot_source", sa.Text(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("signal", postgresql.JSONB(), nullable=True),
        sa.Column("committed_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("side IN ('yes', 'no')", name=op.f("ck_paper_fills_side")),
        sa.CheckConstraint("action IN ('buy', 'sell')", name=op.f("ck_paper_fills_action")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["paper_sessions.id"],
            name=op.f("fk_paper_fills_session_id_paper_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_fills")),
    )
    # Idempotent by the event that caused a fill: the snapshot it filled on and its place among that one's fills.
    op.create_index(
        "uq_paper_fills_cause",
        "paper_fills",
        ["session_id", "ticker", "snapshot_ts", "snapshot_source", "seq"],
        unique=True,
    )
    op.create_table(
        "paper_positions",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("contracts", sa.Numeric(), nullable=False),
        sa.Column("avg_price", _MONEY, nullable=True),
        sa.Column("mark", _PRICE, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["paper_sessions.id"],
            name=op.f("fk_paper_positions_session_id_paper_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "ticker", "side", name=op.f("pk_paper_positions")),
    )
    op.create_table(
        "paper_equity",
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("ts", _TS, nullable=False),
        sa.Column("equity", _MONEY, nullable=False),
        sa.Column("cash", _MONEY, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["paper_sessions.id"],
            name=op.f("fk_paper_equity_session_id_paper_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "ts", name=op.f("pk_paper_equity")),
    )
    op.create_table(
        "paper_session_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ticker", sa.Text(), nullable=True),
        sa.Column("until", _TS, nullable=True),
        sa.Column("details", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("recorded_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["paper_sessions.id"],
            name=op.f("fk_paper_session_events_session_id_paper_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_session_events")),
    )
    op.create_index("ix_paper_session_events_session_id_id", "paper_session_events", ["session_id", "id"])
    op.create_table(
        "live_runner_lease",
        sa.Column("lock_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("backend_pid", sa.Integer(), nullable=True),
        sa.Column("acquired_at", _TS, nullable=False),
        sa.Column("renewed_at", _TS, nullable=False),
        sa.Column("lease_until", _TS, nullable=False),
        sa.PrimaryKeyConstraint("lock_key", name=op.f("pk_live_runner_lease")),
    )
    op.create_table(
        "live_runner_heartbeats",
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("heartbeat_at", _TS, nullable=False),
        sa.Column("leader_since", _TS, nullable=True),
        sa.Column("info", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_live_runner_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("live_runner_heartbeats")
    op.drop_table("live_runner_lease")
    op.drop_table("paper_session_events")
    op.drop_table("paper_equity")
    op.drop_table("paper_positions")
    op.drop_table("paper_fills")
    op.drop_table("paper_sessions")
