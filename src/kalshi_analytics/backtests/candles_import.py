"""Import the NBA 1-minute candle CSVs (shared/data/kalshi/nba_candles, PROVENANCE.md §1) "backfill-style".

Each file is one side (one ticker) of a KXNBAGAME game with trade-price candles in legacy cents. Per file:

- a ``markets`` row: event ticker = the ticker without its last ``-TEAM`` part, series ``KXNBAGAME``, category
  ``Sports``, status ``finalized``, ``close_time`` = the last candle, and the result **inferred from the final
  traded close** (≥ 50¢ → ``yes``, else ``no``; the files end at 99 or 1), settlement value $1/$0;
- a ``SnapshotRow(source="backfill")`` per minute that had trades (empty minutes carry no price and are
  skipped): ``ts`` = the candle's end, ``last_price`` = close, ``volume`` = cumulative volume.

Only what the files hold is stored: they carry trade prices, no bid, ask or size, so those columns stay NULL
(an earlier version invented close ∓ half a cent). A backtest prices such snapshots at their trade, flagged
(:mod:`~kalshi_analytics.backtests.trade_quotes`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.recorder.rows import MarketRow, SnapshotRow

SERIES = "KXNBAGAME"


@dataclass(frozen=True)
class ImportedCandles:
    path: str
    ticker: str
    snapshots: int
    new_snapshots: int  # not stored before this import: 0 when the file was imported already
    result: str
    first_close: Decimal
    last_close: Decimal


def parse_candles(path: Path) -> tuple[MarketRow, list[SnapshotRow]]:
    """The market row and snapshot rows of one candle CSV (pure; raises InvalidInputError on a malformed file)."""
    rows: list[SnapshotRow] = []
    ticker = None
    cum = Decimal(0)
    first_ts = last_ts = None
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"ticker", "timestamp", "close", "volume"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidInputError(f"{path.name}: not a candle CSV (missing {', '.join(sorted(missing))})")
        for line in reader:
            ticker = ticker or line["ticker"]
            if line["ticker"] != ticker:
                raise InvalidInputError(f"{path.name}: more than one ticker")
            ts = datetime.fromtimestamp(int(line["timestamp"]), UTC)
            first_ts = first_ts or ts
            last_ts = ts
            if not line["close"]:
                continue  # a minute without trades: no price, no snapshot
            close = (Decimal(line["close"]) / 100).quantize(Decimal("0.01"))
            cum += Decimal(line["volume"] or "0").normalize()
            rows.append(
                SnapshotRow(
                    ticker=ticker,
                    ts=ts,
                    source="backfill",
                    received_at=ts,
                    last_price=close,
                    volume=cum,
                )
            )
    if ticker is None or not rows:
        raise InvalidInputError(f"{path.name}: no traded candles")
    final = rows[-1].last_price
    assert final is not None
    result = "yes" if final >= Decimal("0.5") else "no"
    market = MarketRow(
        ticker=ticker,
        event_ticker=ticker.rsplit("-", 1)[0],
        series_ticker=SERIES,
        title=f"{ticker} (imported from 1-minute candles)",
        category="Sports",
        status="finalized",
        open_time=first_ts,
        close_time=last_ts,
        result=result,
        settlement_value=Decimal(1) if result == "yes" else Decimal(0),
        settled_at=last_ts,
        raw={"imported_from": path.name, "result_inferred_from_final_close": str(final)},
    )
    return market, rows


async def _stored_snapshots(engine: AsyncEngine, tickers: list[str]) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT ticker, count(*) FROM market_snapshots WHERE ticker = ANY(:tickers) AND source = 'backfill' "
                "GROUP BY ticker"
            ),
            {"tickers": tickers},
        )
        return {str(t): int(n) for t, n in rows}


async def import_candle_files(engine: AsyncEngine, paths: list[Path]) -> list[ImportedCandles]:
    """Write each file's market and snapshots through the recorder's :class:`Sink` (idempotent: a file imported
    before adds nothing, and its ``new_snapshots`` says so)."""
    from kalshi_analytics.recorder.sink import Sink

    parsed = [(p, *parse_candles(p)) for p in paths]
    tickers = [market.ticker for _, market, _ in parsed]
    before = await _stored_snapshots(engine, tickers)
    async with Sink(engine, batch_max_rows=5000, batch_max_seconds=0.2) as sink:
        for _, market, snaps in parsed:
            await sink.put(market)
            for s in snaps:
                await sink.put(s)
        await sink.flush()
    after = await _stored_snapshots(engine, tickers)
    done: list[ImportedCandles] = []
    for path, market, snaps in parsed:
        first, last = snaps[0].last_price, snaps[-1].last_price
        assert first is not None
        assert last is not None
        new = after.get(market.ticker, 0) - before.get(market.ticker, 0)
        done.append(ImportedCandles(str(path), market.ticker, len(snaps), new, str(market.result), first, last))
    return done
