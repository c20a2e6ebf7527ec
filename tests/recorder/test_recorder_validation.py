"""Validation at the edge, end to end: every class of bad frame injected into a running recorder through the
simulator is refused, counted by reason in one metric, kept raw with its reason, and recording goes on."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder.service import RecorderService
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.recorder.conftest import fast_config, sim_settings

MAX_FRAME = 200_000
REJECTED = "kalshi_recorder_rejected_total"


def _ticker(market: str, **fields: Any) -> str:
    msg = {
        "market_ticker": market,
        "price_dollars": "0.5000",
        "yes_bid_dollars": "0.4900",
        "yes_ask_dollars": "0.5100",
        "volume_fp": "10.00",
        "open_interest_fp": "5.00",
        "ts_ms": int(time.time() * 1000),
    }
    msg.update(fields)
    return json.dumps({"type": "ticker", "msg": {k: v for k, v in msg.items() if v is not None}})


def _trade(market: str, trade_id: str, **fields: Any) -> str:
    msg = {
        "trade_id": trade_id,
        "market_ticker": market,
        "yes_price_dollars": "0.5000",
        "count_fp": "3.00",
        "taker_side": "yes",
        "ts_ms": int(time.time() * 1000),
    }
    msg.update(fields)
    return json.dumps({"type": "trade", "msg": {k: v for k, v in msg.items() if v is not None}})


def _bad_frames(t: str) -> list[tuple[str, str]]:
    """(raw frame, the reason it must be rejected for): the defects seen by running the product."""
    return [
        (_ticker(t, price_dollars="-0.5"), "price_out_of_range"),
        (_ticker(t, price_dollars="1.5"), "price_out_of_range"),
        (_ticker(t, yes_bid_dollars="-3", yes_ask_dollars="7"), "price_out_of_range"),
        (_ticker(t, volume_fp="-100"), "count_out_of_range"),
        (_ticker(t, volume_fp="1e300"), "count_out_of_range"),
        (_ticker(t, ts_ms=0), "time_out_of_range"),
        (_ticker(t, ts_ms=int(time.time() * 1000) + 3 * 86_400_000), "time_out_of_range"),
        (_ticker(""), "empty_ticker"),
        (_ticker(t, yes_bid_dollars="0.7000", yes_ask_dollars="0.3000"), "crossed_book"),
        (_ticker("NOT-SUBSCRIBED-1"), "unknown_ticker"),
        (_trade(t, "no-price", yes_price_dollars=None), "trade_incomplete"),
        (_trade(t, "no-count", count_fp=None), "trade_incomplete"),
        (_ticker(t, price_dollars="0.12345678"), "price_precision"),
        ("{not json", "malformed_json"),
        (_ticker(t, market_id="x" * (MAX_FRAME + 1000)), "oversized"),
    ]


async def test_every_bad_class_is_refused_counted_kept_and_recording_goes_on(
    recorder_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(recorder_db_url)
    cfg = fast_config(tmp_path)
    cfg.ws_options["max_frame_bytes"] = MAX_FRAME
    try:
        async with run_simulator(SimulatorConfig(seed=3, markets=8, speed=10, port=0, rate_limit=None)) as sim:
            service = RecorderService(engine, sim_settings(sim), cfg)
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            await asyncio.wait_for(service.ready.wait(), 30)
            assert service.stream is not None
            assert service.ws is not None
            market = sorted(service.stream.tickers)[0]
            bad = _bad_frames(market)
            # PostgreSQL, not the edge, refuses this one: text cannot hold a NUL.
            db_bad = _trade(market, "nul\u0000id")
            stream, ws = service.stream, service.ws
            async with httpx.AsyncClient() as http:
                for raw in [raw for raw, _reason in bad]:
                    r = await http.post(f"{sim.admin_url}/inject", content=raw.encode())
                    assert r.json()["connections"] == 1
                # The oversized frame (the last) restarted the connection: the next must reach the new one.
                await wait_until(lambda: stream.stats.reconnects >= 1, "a new connection")
                await wait_until(lambda: ws.connected and all(s.sids for s in ws.subscriptions), "resubscribed")
                r = await http.post(f"{sim.admin_url}/inject", content=db_bad.encode())
                assert r.json()["connections"] == 1

            m = service.metrics
            expected = Counter(reason for _raw, reason in bad) + Counter({"database_refused": 1})
            await wait_until(
                lambda: all(m.value(REJECTED, {"reason": r}) >= n for r, n in expected.items()),
                "every bad frame counted",
                seconds=30,
            )
            trades_then = await _count(engine, "SELECT count(*) FROM trades")
            await wait_until(
                lambda: _count(engine, "SELECT count(*) FROM trades", more_than=trades_then),
                "trades recorded after the bad frames",
                seconds=30,
            )
            assert service.gaps is not None
            async with asyncio.timeout(60):
                await service.gaps.wait_idle()  # the restart after the oversized frame is a gap, repaired from REST
            assert service.sink is not None
            await service.sink.flush()
            disconnects = await _count(
                engine, "SELECT count(*) FROM feed_gaps WHERE cause = 'disconnect' AND repaired_at IS NOT NULL"
            )
            exposition = m.render().decode()
            info = service.info()  # the heartbeat's and the summary line's view
            stop.set()
            await asyncio.wait_for(task, 30)

        counted = {r: m.value(REJECTED, {"reason": r}) for r in expected}
        assert counted == {r: float(n) for r, n in expected.items()}
        assert f'{REJECTED}{{reason="price_out_of_range"}} 3.0' in exposition, "the metric has samples"
        assert info["rejected"] == dict(expected)
        assert f'{REJECTED}{{reason="invalid"}} 0.0' in exposition, "every reason shows, at 0 until it happens"

        async with engine.connect() as c:
            out_of_range = (
                await c.execute(
                    text(
                        """
                SELECT (SELECT count(*) FROM market_snapshots
                         WHERE NOT (coalesce(yes_bid, 0) BETWEEN 0 AND 1 AND coalesce(yes_ask, 0) BETWEEN 0 AND 1
                                AND coalesce(last_price, 0) BETWEEN 0 AND 1 AND coalesce(volume, 0) BETWEEN 0 AND 1e12)
                            OR yes_bid > yes_ask OR ts < '2015-01-01' OR ticker IN ('', 'NOT-SUBSCRIBED-1')),
                       (SELECT count(*) FROM market_candles_1m
                         WHERE NOT (coalesce(prob_low, 0) >= 0 AND coalesce(prob_high, 0) <= 1)),
                       (SELECT count(*) FROM trades
                         WHERE NOT (yes_price BETWEEN 0 AND 1 AND count > 0) OR trade_id IN ('no-price', 'no-count'))
                """
                    )
                )
            ).one()
            precise = (await c.execute(text("SELECT count(*) FROM market_snapshots WHERE last_price = 0.1235"))).one()
        assert tuple(out_of_range) == (0, 0, 0)
        assert disconnects == 1
        assert precise[0] == 0, "0.12345678 was not stored rounded"
    finally:
        await engine.dispose()

    assert cfg.rejected_frames_path is not None
    kept = [json.loads(line) for line in cfg.rejected_frames_path.read_text().splitlines()]
    frames = [(k["raw"], k["reason"]) for k in kept if k["reason"] not in ("oversized", "database_refused")]
    assert frames == [(raw, reason) for raw, reason in bad if reason != "oversized"]
    (oversized,) = [k for k in kept if k["reason"] == "oversized"]
    assert len(oversized["raw"]) > 1000, "a prefix of it kept"
    assert bad[-1][0].startswith(oversized["raw"])
    (refused,) = [k for k in kept if k["reason"] == "database_refused"]
    assert refused["table"] == "trades"
    assert refused["row"]["trade_id"] == "nul\u0000id"
    assert refused["row"]["yes_price"] == "0.5000"
    assert refused["detail"]


async def _count(engine: Any, sql: str, more_than: int | None = None) -> Any:
    async with engine.connect() as c:
        n = int((await c.execute(text(sql))).scalar_one())
    return n if more_than is None else n > more_than
