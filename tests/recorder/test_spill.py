"""The sink's spill file: rows come back exactly and in order, the file goes when read, the budget holds."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from kalshi_analytics.recorder.rows import SnapshotRow, TradeRow
from kalshi_analytics.recorder.spill import Spill, SpillFull

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def _snap(i: int) -> SnapshotRow:
    ts = T0 + timedelta(milliseconds=i)
    raw = {"type": "ticker", "msg": {"market_ticker": "KXSPILL-1", "price_dollars": "0.4300", "volume_fp": str(i)}}
    return SnapshotRow("KXSPILL-1", ts, "websocket", ts, i, Decimal("0.42"), Decimal("0.44"), raw_data=raw)


def _trade(i: int) -> TradeRow:
    ts = T0 + timedelta(milliseconds=i)
    return TradeRow(
        f"t-{i}", "KXSPILL-1", ts, ts, Decimal("0.43"), Decimal("0.57"), Decimal("2.5"), "yes", False, "websocket"
    )


def test_rows_come_back_in_order_across_chunks_and_the_file_is_removed(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=10**9, chunk_rows=7)
    rows = [_snap(i) if i % 4 else _trade(i) for i in range(100)]
    for r in rows[:50]:
        spill.append(r)
    assert spill.path is not None
    assert spill.path.parent == tmp_path
    out = spill.take(30)
    for r in rows[50:]:  # appending while reading, as puts do while the drain writes
        spill.append(r)
    while len(spill):
        out.extend(spill.take(13))
    assert out == rows, "exactly the rows, Decimal and aware datetimes included, in order"
    assert list(tmp_path.iterdir()) == [], "read to the end, the file is gone"
    spill.append(rows[0])  # and it starts over
    assert spill.take(5) == [rows[0]]


def test_the_byte_budget_refuses_more_rows(tmp_path: Path) -> None:
    spill = Spill(tmp_path, max_bytes=2000, chunk_rows=2)

    def fill() -> None:
        for i in range(1000):
            spill.append(_snap(i))

    with pytest.raises(SpillFull):
        fill()
    held = len(spill)
    assert 0 < held < 1000
    assert spill.take(held + 10) == [_snap(i) for i in range(held)]
    spill.close()


def test_the_stated_budget_holds_ten_minutes_at_1000_rows_a_second() -> None:
    # README: 10 minutes at 1,000 rows/s = 600,000 rows within the 2 GiB default (DEFAULT_SPILL_MAX_BYTES).
    from kalshi_analytics.recorder.sink import DEFAULT_SPILL_MAX_BYTES

    # The heaviest rows are polled snapshots, which keep the market's JSON (~1 KB) as raw_data.
    chunk = [
        _snap(i)._replace(raw_data={f"field_{k:02d}": f"{i:010d}-{k:09d}" for k in range(40)}) for i in range(1000)
    ]
    per_row = len(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)) / len(chunk)
    assert per_row > 1000
    assert per_row * 600_000 < DEFAULT_SPILL_MAX_BYTES, f"{per_row:.0f} bytes a row"
