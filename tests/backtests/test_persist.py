"""Executions go to PostgreSQL as COPY text: every value comes back as it was, whatever characters it holds."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.service import (
    _insert_request,
    compute_backtest,
    get_executions,
    save_outcome,
    validate_request,
)
from tests.backtests.conftest import WIDE, make_dataset


async def test_executions_round_trip_through_copy_text(bt_engine: AsyncEngine) -> None:
    ds = make_dataset([("KXTSV-A", "yes", [(0.4, 0.42)] * 3), ("KXTSV-B", None, [(0.3, 0.33)] * 3)])
    req = validate_request("buy_and_hold", {"size": 5}, *WIDE)
    out = await compute_backtest(bt_engine, req, dataset=ds)
    settled, marked = sorted(out.sim.executions, key=lambda e: e.ticker)
    awkward = {"note": 'tab\there\nline\r\\back "quoted" é ✓ \\N', "n": 1.5, "none": None, "nested": {"k": [1, 2]}}
    settled.signal = awkward
    rid = await _insert_request(bt_engine, req, out.strategy_version, out.params, "running")
    await save_outcome(bt_engine, rid, out)
    rows = sorted(await get_executions(bt_engine, rid), key=lambda r: r["ticker"])
    assert [r["ticker"] for r in rows] == ["KXTSV-A", "KXTSV-B"]
    a, b = rows
    assert a["signal"] == awkward
    assert (a["side"], a["size"], a["entry_price"], a["exit_price"], a["exit_reason"]) == (
        "yes",
        5,
        D("0.42"),
        1,
        "settlement",
    )
    assert (a["exit_snapshot_ts"], a["exit_snapshot_source"]) == (None, None)  # settlement is no snapshot
    assert (a["entry_ts"], a["exit_ts"], a["fees"], a["pnl"]) == (
        settled.entry_ts,
        settled.exit_ts,
        settled.fees,
        settled.pnl,
    )
    assert (b["exit_reason"], b["exit_price"], b["exit_snapshot_source"]) == ("marked", D("0.30"), "poll")
    assert b["exit_snapshot_ts"] == marked.exit_snapshot_ts
    assert b["signal"] == marked.signal
