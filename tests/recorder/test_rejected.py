"""The recorder's rejected log (a flood is summarised, every frame counted and kept) and its unknown-ticker check."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from kalshi_analytics.kalshi.ws import KalshiWsClient
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.rejected import RejectedLog
from kalshi_analytics.recorder.stream import StreamRecorder

pytestmark = pytest.mark.usefixtures("restore_logging")


def _trade(ticker: str) -> str:
    msg = {"trade_id": "t", "market_ticker": ticker, "yes_price_dollars": "0.5", "count_fp": "1", "taker_side": "yes"}
    return json.dumps({"type": "trade", "msg": msg})


def _log_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


async def test_a_flood_of_bad_frames_is_summarised_counted_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    metrics = RecorderMetrics()
    ws = KalshiWsClient("ws://127.0.0.1:9")  # never started: only its dispatcher is used
    ws.dispatcher.bad_frames = kept = RejectedLog(tmp_path / "rejected.jsonl", metrics=metrics, summary_seconds=0.05)
    flood = [f'{{"type":"ticker","msg":{{"market_ticker":"A","price_dollars":"{2 + i}"}}}}' for i in range(300)]
    for i, raw in enumerate(flood):
        ws.dispatcher.handle(raw)
        if i % 100 == 0:
            await asyncio.sleep(0.06)  # several summary windows
    ws.dispatcher.handle("{not json")
    await asyncio.sleep(0.1)

    lines = _log_lines(capsys.readouterr().err)
    summaries = [line for line in lines if line["event"] == "rejected_summary"]
    alone = [line for line in lines if line["event"] == "kalshi_ws_bad_frame"]
    assert len(alone) == 2  # the first of each reason
    assert len(summaries) >= 2
    total: dict[str, int] = {}
    for s in summaries:
        for reason, n in s["by_reason"].items():
            total[reason] = total.get(reason, 0) + n
    assert total == {"price_out_of_range": 300, "malformed_json": 1}
    assert metrics.value("kalshi_recorder_rejected_total", {"reason": "price_out_of_range"}) == 300
    entries = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [e["raw"] for e in entries] == [*flood, "{not json"]
    assert kept.counts == {"price_out_of_range": 300, "malformed_json": 1}


async def test_frames_of_markets_not_subscribed_are_rejected_but_in_flight_ones_of_a_removed_market_pass() -> None:
    ws = KalshiWsClient("ws://127.0.0.1:9")
    stream = StreamRecorder(ws, None, None, None, None)  # type: ignore[arg-type]  # only the admission check is used
    stream.tickers = {"A", "B"}
    d = ws.dispatcher
    assert len(d.handle(_trade("A"))) == 1
    assert d.handle(_trade("C")) == []
    assert d.counters.rejected == {"unknown_ticker": 1}
    await stream.remove(["B"])  # e.g. settled: frames already sent still arrive for a moment
    assert len(d.handle(_trade("B"))) == 1
    lifecycle = {"type": "market_lifecycle_v2", "msg": {"market_ticker": "NEW-1", "event_type": "created"}}
    assert len(d.handle(json.dumps(lifecycle))) == 1  # lifecycle covers every market: never "unknown"
