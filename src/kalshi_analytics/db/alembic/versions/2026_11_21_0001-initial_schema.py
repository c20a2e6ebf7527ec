"""initial schema: catalogue, partitioned time series, trades, gaps, recorder state, backtests

Revision ID: 0001
Revises:
Create Date: 2026-11-21 10:01:42.955607
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONED = ("market_snapshots", "orderbook_snapshots")

# Creates the monthly partitions [first_month, first_month + months) of a table range-partitioned on ts.
# Rows of such a month may already sit in the default partition (written before the partition existed);
# they are moved first, so the ATTACH that follows never fails and no row is ever refused.
ENSURE_PARTITIONS_FN = """
CREATE FUNCTION ka_ensure_monthly_partitions(parent regclass, first_month date, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent_name text;
    parent_schema text;
    part text;
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
BEGIN
    SELECT c.relname, n.nspname INTO parent_name, parent_schema
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    FOR i IN 0 .. months - 1 LOOP
        lo := (date_trunc('month', first_month) + make_interval(months => i))::timestamp AT TIME ZONE 'UTC';
        hi := ((date_trunc('month', first_month) + make_interval(months => i + 1))::timestamp) AT TIME ZONE 'UTC';
        part := format('%s_y%sm%s', parent_name, to_char(lo AT TIME ZONE 'UTC', 'YYYY'),
                       to_char(lo AT TIME ZONE 'UTC', 'MM'));
        CONTINUE WHEN to_regclass(format('%I.%I', parent_schema, part)) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       parent_schema, part, parent);
        EXECUTE format('WITH moved AS (DELETE FROM %I.%I WHERE ts >= %L AND ts < %L RETURNING *) '
                       'INSERT INTO %I.%I SELECT * FROM moved',
                       parent_schema, parent_name || '_default', lo, hi, parent_schema, part);
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, parent_schema, part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "backtest_results",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("strategy_name", sa.Text(), nullable=False),
        sa.Column("strategy_version", sa.Text(), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("window_start", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("window_end", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("market_filter", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("finished_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("snapshots_processed", sa.BigInteger(), nullable=True),
        sa.Column("num_trades", sa.Integer(), nullable=True),
        sa.Column("total_pnl", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("fees_paid", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("equity_curve", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("feed_gaps", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_backtest_results_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_results")),
    )
    op.create_index("ix_backtest_results_created_at", "backtest_results", ["created_at"], unique=False)
    op.create_table(
        "events",
        sa.Column("event_ticker", sa.Text(), nullable=False),
        sa.Column("series_ticker", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("sub_title", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("mutually_exclusive", sa.Boolean(), nullable=True),
        sa.Column("strike_date", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("event_ticker", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_series_ticker"), "events", ["series_ticker"], unique=False)
    op.create_table(
        "feed_gaps",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("detected_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("sid", sa.Integer(), nullable=True),
        sa.Column("market_ticker", sa.Text(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("seq_expected", sa.BigInteger(), nullable=True),
        sa.Column("seq_received", sa.BigInteger(), nullable=True),
        sa.Column("gap_start", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("gap_end", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("repaired_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("repair_method", sa.Text(), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint(
            "cause IN ('seq_jump', 'disconnect', 'outage', 'startup', 'other')",
            name=op.f("ck_feed_gaps_cause"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_gaps")),
    )
    op.create_index("ix_feed_gaps_gap_start", "feed_gaps", ["gap_start"], unique=False)
    op.create_table(
        "market_candles_1m",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("minute", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("first_ts", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("last_ts", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("prob_open", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("prob_high", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("prob_low", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("prob_close", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("price_open", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("price_high", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("price_low", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("price_close", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("yes_bid_close", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("yes_ask_close", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("volume", sa.Numeric(), nullable=True),
        sa.Column("open_interest", sa.Numeric(), nullable=True),
        sa.Column("snapshots", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "minute", name=op.f("pk_market_candles_1m")),
    )
    op.create_table(
        "market_snapshots",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("ts", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("received_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("yes_bid", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("yes_ask", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("no_bid", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("no_ask", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("last_price", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("yes_bid_size", sa.Numeric(), nullable=True),
        sa.Column("yes_ask_size", sa.Numeric(), nullable=True),
        sa.Column("volume", sa.Numeric(), nullable=True),
        sa.Column("open_interest", sa.Numeric(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("raw_data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("source IN ('poll', 'websocket', 'backfill')", name=op.f("ck_market_snapshots_source")),
        sa.PrimaryKeyConstraint("ticker", "ts", "source", name=op.f("pk_market_snapshots")),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_table(
        "markets",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("event_ticker", sa.Text(), nullable=False),
        sa.Column("series_ticker", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("subtitle", sa.Text(), nullable=True),
        sa.Column("yes_sub_title", sa.Text(), nullable=True),
        sa.Column("no_sub_title", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("market_type", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("open_time", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("close_time", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("expected_expiration_time", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("settlement_value", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("settled_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("notional_value", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("price_level_structure", sa.Text(), nullable=True),
        sa.Column("price_ranges", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("volume", sa.Numeric(), nullable=True),
        sa.Column("open_interest", sa.Numeric(), nullable=True),
        sa.Column("created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("ticker", name=op.f("pk_markets")),
    )
    op.create_index("ix_markets_event_ticker", "markets", ["event_ticker"], unique=False)
    op.create_index("ix_markets_series_ticker", "markets", ["series_ticker"], unique=False)
    op.create_index("ix_markets_status_close_time", "markets", ["status", "close_time"], unique=False)
    op.create_table(
        "orderbook_snapshots",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("ts", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("received_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("yes_prices", postgresql.ARRAY(sa.Numeric(precision=10, scale=4)), nullable=False),
        sa.Column("yes_sizes", postgresql.ARRAY(sa.Numeric()), nullable=False),
        sa.Column("no_prices", postgresql.ARRAY(sa.Numeric(precision=10, scale=4)), nullable=False),
        sa.Column("no_sizes", postgresql.ARRAY(sa.Numeric()), nullable=False),
        sa.CheckConstraint("source IN ('poll', 'websocket', 'backfill')", name=op.f("ck_orderbook_snapshots_source")),
        sa.PrimaryKeyConstraint("ticker", "ts", "source", name=op.f("pk_orderbook_snapshots")),
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_table(
        "recorder_heartbeats",
        sa.Column("instance_id", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("heartbeat_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("leader_since", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("info", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_recorder_heartbeats")),
    )
    op.create_table(
        "series",
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("frequency", sa.Text(), nullable=True),
        sa.Column("fee_type", sa.Text(), nullable=True),
        sa.Column("fee_multiplier", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("ticker", name=op.f("pk_series")),
    )
    op.create_table(
        "trades",
        sa.Column("trade_id", sa.Text(), nullable=False),
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("ts", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("received_at", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("yes_price", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("no_price", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("count", sa.Numeric(), nullable=False),
        sa.Column("taker_side", sa.Text(), nullable=True),
        sa.Column("is_block_trade", sa.Boolean(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.CheckConstraint("source IN ('websocket', 'poll', 'backfill')", name=op.f("ck_trades_source")),
        sa.PrimaryKeyConstraint("trade_id", name=op.f("pk_trades")),
    )
    op.create_index("ix_trades_ticker_ts", "trades", ["ticker", "ts"], unique=False)
    op.create_table(
        "backtest_executions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("backtest_id", sa.UUID(), nullable=False),
        sa.Column("ticker", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("size", sa.Numeric(), nullable=False),
        sa.Column("entry_ts", postgresql.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("entry_price", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("entry_snapshot_ts", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("entry_snapshot_source", sa.Text(), nullable=True),
        sa.Column("exit_ts", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("exit_price", sa.Numeric(precision=10, scale=4), nullable=True),
        sa.Column("exit_snapshot_ts", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("exit_snapshot_source", sa.Text(), nullable=True),
        sa.Column("exit_reason", sa.Text(), nullable=True),
        sa.Column("fees", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("pnl", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("signal", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("side IN ('yes', 'no')", name=op.f("ck_backtest_executions_side")),
        sa.ForeignKeyConstraint(
            ["backtest_id"],
            ["backtest_results.id"],
            name=op.f("fk_backtest_executions_backtest_id_backtest_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_executions")),
    )
    op.create_index(
        "ix_backtest_executions_backtest_id_entry_ts",
        "backtest_executions",
        ["backtest_id", "entry_ts"],
        unique=False,
    )

    for table in PARTITIONED:
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    op.execute(ENSURE_PARTITIONS_FN)
    for table in PARTITIONED:
        op.execute(f"SELECT ka_ensure_monthly_partitions('{table}', (now() - interval '1 month')::date, 5)")


def downgrade() -> None:
    op.drop_index("ix_backtest_executions_backtest_id_entry_ts", table_name="backtest_executions")
    op.drop_table("backtest_executions")
    op.drop_index("ix_trades_ticker_ts", table_name="trades")
    op.drop_table("trades")
    op.drop_table("series")
    op.drop_table("recorder_heartbeats")
    op.drop_table("orderbook_snapshots")
    op.drop_index("ix_markets_status_close_time", table_name="markets")
    op.drop_index("ix_markets_series_ticker", table_name="markets")
    op.drop_index("ix_markets_event_ticker", table_name="markets")
    op.drop_table("markets")
    op.drop_table("market_snapshots")
    op.drop_table("market_candles_1m")
    op.drop_index("ix_feed_gaps_gap_start", table_name="feed_gaps")
    op.drop_table("feed_gaps")
    op.drop_index(op.f("ix_events_series_ticker"), table_name="events")
    op.drop_table("events")
    op.drop_index("ix_backtest_results_created_at", table_name="backtest_results")
    op.drop_table("backtest_results")
    op.execute("DROP FUNCTION ka_ensure_monthly_partitions(regclass, date, integer)")
