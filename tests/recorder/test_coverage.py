"""The gaps/coverage report: the query on hand-made gaps and snapshots, and the ``gaps`` command."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kalshi_analytics.recorder.bulk import write_snapshots
from kalshi_analytics.recorder.coverage import coverage
from kalshi_analytics.recorder.rows import SnapshotRow
from tests.test_cli import run_cli

W0 = datetime(2025, 1, 5, 12, 0, tzinfo=UTC)  # a (past) window no other test writes into


async def _gap(conn: AsyncConnection, ticker: str | None, start: datetime, end: datetime | None, **kw: Any) -> None:
    row = {
        "key": uuid.uuid4().hex,
        "detected_at": start,
        "channel": kw.get("channel", "orderbook_delta"),
        "sid": kw.get("sid", 3),
        "market_ticker": ticker,
        "cause": kw.get("cause", "seq_jump"),
        "gap_start": start,
        "gap_end": end,
        "repaired_at": end + timedelta(seconds=1) if end and kw.get("method") else None,
        "repair_method": kw.get("method"),
        "details": json.dumps({}),
        "unrepairable_reason": kw.get("unrepairable"),
    }
    await conn.execute(
        text(
            "INSERT INTO feed_gaps (key, detected_at, channel, sid, market_ticker, cause, gap_start, gap_end, "
            "repaired_at, repair_method, details, unrepairable_reason) VALUES (:key, :detected_at, :channel, :sid, "
            ":market_ticker, :cause, :gap_start, :gap_end, :repaired_at, :repair_method, CAST(:details AS jsonb), "
            ":unrepairable_reason)"
        ),
        row,
    )


async def _fixture_data(conn: AsyncConnection, a: str, b: str) -> None:
    s = timedelta(seconds=1)
    await _gap(conn, a, W0, W0 + 30 * s, method="get_snapshot")
    await _gap(conn, a, W0 + 600 * s, None, cause="disconnect")  # still open: runs to the window's end
    await _gap(conn, a, W0 - 10 * s, W0 + 10 * s, method="rest_backfill")  # straddles the start: 10 s inside
    await _gap(conn, a, W0 + 3600 * s, W0 + 3700 * s, method="get_snapshot")  # after the window
    await _gap(
        conn, None, W0 + 300 * s, W0 + 305 * s, channel="ticker", sid=1, cause="disconnect", method="resubscribe"
    )
    snaps = [SnapshotRow(a, W0 + 40 * s, "backfill", W0)]
    snaps += [SnapshotRow(b, W0 + i * s, "poll", W0) for i in range(3)]
    snaps += [SnapshotRow(b, W0 + i * s, "websocket", W0) for i in range(2)]
    snaps += [SnapshotRow(b, W0 + 1200 * s, "poll", W0)]  # at `until`: outside [since, until)
    await write_snapshots(conn, snaps)


async def test_coverage_counts_gaps_durations_and_snapshots_per_source(conn: AsyncConnection) -> None:
    a, b = "KXCOV-A", "KXCOV-B"
    await _fixture_data(conn, a, b)
    report = await coverage(conn, W0, W0 + timedelta(minutes=20))
    by = {m.ticker: m for m in report.markets}
    assert set(by) == {a, b}
    assert (by[a].gaps, by[a].gaps_open, by[a].gaps_repaired) == (3, 1, 2)
    assert by[a].gap_seconds == pytest.approx(30 + 600 + 10)
    assert dict(by[a].repair_methods) == {"get_snapshot": 1, "rest_backfill": 1}
    assert dict(by[a].snapshots) == {"backfill": 1}
    assert (by[b].gaps, dict(by[b].snapshots)) == (0, {"poll": 3, "websocket": 2})
    assert len(report.subscription_gaps) == 1
    sub = report.subscription_gaps[0]
    assert (sub.channel, sub.cause, sub.repair_method, sub.seconds) == ("ticker", "disconnect", "resubscribe", 5.0)

    only_b = await coverage(conn, W0, W0 + timedelta(minutes=20), ticker=b)
    assert [m.ticker for m in only_b.markets] == [b]
    assert len(only_b.subscription_gaps) == 1, "subscription-wide gaps concern every market"

    with pytest.raises(ValueError, match="empty"):
        await coverage(conn, W0, W0)


async def test_gaps_command_prints_the_table(engine: AsyncEngine, database_url: str) -> None:
    a, b = f"KXCOVCLI-{uuid.uuid4().hex[:6].upper()}", "KXCOVCLI-NONE"
    async with engine.begin() as conn:
        await _fixture_data(conn, a, b)
    env = {"DB_URL": database_url}
    result = run_cli("gaps", "--since", "2025-01-05T12:00Z", "--until", "2025-01-05T12:20Z", "--ticker", a, env=env)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if a in ln)
    cells = [c.strip() for c in line.split("│")[1:-1]]
    # market, gaps, open, repaired, gap time, repaired by, poll, websocket, backfill
    assert cells == [a, "3", "1", "2", "0:10:40", "get_snapshot×1, rest_backfill×1", "0", "0", "1"]
    assert "resubscribe" in result.stdout
    assert "KXCOVCLI-NONE" not in result.stdout


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [("-1h", "-2h", "must be after"), ("not-a-time", "now", "cannot read time")],
)
def test_gaps_command_refuses_bad_input_in_one_line(since: str, until: str, message: str) -> None:
    result = run_cli("gaps", "--since", since, "--until", until, env={"DB_URL": "postgresql://x@127.0.0.1:9/x"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


async def test_an_unrepairable_gap_is_neither_open_nor_repaired(conn: AsyncConnection) -> None:
    t = "KXCOV-GONE"
    start = W0 + timedelta(hours=2)
    await _gap(conn, t, start, start + timedelta(seconds=5), cause="crash", unrepairable="the exchange answers 404")
    report = await coverage(conn, start, start + timedelta(minutes=1), ticker=t)
    (m,) = report.markets
    assert (m.gaps, m.gaps_open, m.gaps_unrepairable, m.gaps_repaired) == (1, 0, 1, 0)
