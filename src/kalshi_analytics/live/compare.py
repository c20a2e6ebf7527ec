"""The divergence report: a paper session replayed as a backtest, every difference in fills and P&L explained.

The backtest runs the session's strategy version, parameters, markets, account and fill model over the data now
recorded for its window (its start to the last snapshot the runner applied), on the per-event path — the runner's
own code. On a clean run the two agree fill for fill and to the cent; where they do not, each difference is put
down to what the session's events recorded: the runner was down (``downtime``: it traded nothing then), the
market had an open feed gap (``stale``), data arrived after the runner had passed that time (``late_data``: a
repair or a late recording the backtest sees and the runner could not), a difference earlier on the same market
(``carried``: positions differ from there on), or trades before the runner resumed (``before_resume``).
Anything else is ``unexplained`` — a defect to report.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import load_dataset
from kalshi_analytics.backtests.engine import simulate
from kalshi_analytics.backtests.service import resolve
from kalshi_analytics.db.engine import driver_in_transaction
from kalshi_analytics.errors import NotFoundError
from kalshi_analytics.live.schemas import CompareReport, Difference
from kalshi_analytics.live.service import backtest_request, get_session
from kalshi_analytics.live.session import from_us, to_us
from kalshi_analytics.trading.portfolio import SIDES

_US = timedelta(microseconds=1)
Key = tuple[str, int, str, str, Decimal, Decimal]  # ticker, ts_us, side, action, price, count


async def compare_session(engine: AsyncEngine, session_id: uuid.UUID) -> CompareReport:
    view = await get_session(engine, session_id)
    async with engine.connect() as conn:
        pg = await driver_in_transaction(conn)
        row = await pg.fetchrow("SELECT * FROM paper_sessions WHERE id = $1", session_id)
        if row is None:
            raise NotFoundError(f"no paper session {session_id}")
        fills = await pg.fetch(
            "SELECT ticker, snapshot_ts, side, action, price, count FROM paper_fills WHERE session_id = $1 ORDER BY id",
            session_id,
        )
        happened = await pg.fetch(
            "SELECT kind, ticker, at, until FROM paper_session_events WHERE session_id = $1 ORDER BY id", session_id
        )
        await conn.rollback()
    start: datetime = row["started_at"]
    end: datetime = (row["processed_until"] or start) + _US
    paper_keys = [(f["ticker"], to_us(f["snapshot_ts"]), f["side"], f["action"], f["price"], f["count"]) for f in fills]
    req = backtest_request(row, start, end)
    strategy, params = resolve(req)
    ds = await load_dataset(engine, start, end, req.market_filter)
    sim = simulate(ds, strategy, params, req.engine_config())
    tickers = [m.ticker for m in ds.markets]
    bt_keys = [
        (tickers[k], ts_us, SIDES[side], "buy" if buy else "sell", price, count)
        for k, side, buy, price, count, _fee, ts_us, _src, _sig, _cash in sim.trades
    ]
    only_paper = Counter(paper_keys) - Counter(bt_keys)
    only_bt = Counter(bt_keys) - Counter(paper_keys)
    why = _Explainer(happened)
    diffs: list[Difference] = []
    for kind, counter in (("only_paper", only_paper), ("only_backtest", only_bt)):
        for key, n in sorted(counter.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            cause, text = why(key[0], key[1])
            diffs.extend(
                Difference(
                    kind=kind,
                    ticker=key[0],
                    ts=from_us(key[1]),
                    side=key[2],
                    action=key[3],
                    price=key[4],
                    count=key[5],
                    explanation=text,
                    cause=cause,
                )
                for _ in range(n)
            )
    paper_pnl = view.total_pnl
    bt_pnl = sim.total_pnl
    if paper_pnl != bt_pnl:
        if diffs:
            cause, text = "carried", "follows from the fill differences listed"
        else:
            cause, text = why.for_pnl()
        diffs.append(
            Difference(
                kind="pnl",
                ticker=None,
                ts=None,
                side=None,
                action=None,
                price=None,
                count=None,
                explanation=f"paper P&L {paper_pnl} vs backtest {bt_pnl}: {text}",
                cause=cause,
            )
        )
    return CompareReport(
        session_id=session_id,
        window_start=start,
        window_end=end,
        paper_fills=len(paper_keys),
        backtest_fills=len(bt_keys),
        paper_pnl=paper_pnl,
        backtest_pnl=bt_pnl,
        differences=diffs,
        unexplained=sum(1 for d in diffs if d.cause == "unexplained"),
    )


class _Explainer:
    """Why a fill at (ticker, time) may differ, from the session's recorded events."""

    def __init__(self, happened: list[Any]) -> None:
        far = 2**62
        self.downtime = [
            (to_us(e["at"]), to_us(e["until"]) if e["until"] else far) for e in happened if e["kind"] == "downtime"
        ]
        self.stale: list[tuple[str | None, int, int]] = []
        open_: dict[str | None, int] = {}
        for e in happened:
            if e["kind"] == "stale":
                open_[e["ticker"]] = to_us(e["at"])
            elif e["kind"] == "repaired" and e["ticker"] in open_:
                self.stale.append((e["ticker"], open_.pop(e["ticker"]), to_us(e["until"] or e["at"])))
        self.stale += [(t, since, far) for t, since in open_.items()]
        self.late: dict[str, int] = {}
        for e in happened:
            if e["kind"] == "late_data" and e["ticker"]:
                t = to_us(e["at"])
                self.late[e["ticker"]] = min(t, self.late.get(e["ticker"], t))
        self.seen: set[str] = set()

    def __call__(self, ticker: str, ts_us: int) -> tuple[str, str]:
        for a, b in self.downtime:
            if a <= ts_us <= b:
                self.seen.add(ticker)
                return "downtime", f"the runner was down from {from_us(a).isoformat()}: it traded nothing then"
        for t, a, b in self.stale:
            if (t is None or t == ticker) and a <= ts_us <= b:
                self.seen.add(ticker)
                return "stale", f"the market's feed had an open gap from {from_us(a).isoformat()}: no order fills then"
        late = self.late.get(ticker)
        if late is not None and late <= ts_us:
            self.seen.add(ticker)
            return (
                "late_data",
                f"data of this market from {from_us(late).isoformat()} arrived after the runner had passed that time "
                "(repaired or recorded late): the backtest sees it, the runner could not",
            )
        if ticker in self.seen:
            return "carried", "an earlier difference on this market: positions differ from there on"
        self.seen.add(ticker)
        return "unexplained", "no recorded reason: the runner and the backtest disagree on the same data"

    def for_pnl(self) -> tuple[str, str]:
        if self.downtime:
            return "downtime", "marks or settlements around the runner's downtime"
        if self.late:
            return "late_data", "data recorded after the runner had passed that time changes the marks"
        return "unexplained", "no recorded reason"
