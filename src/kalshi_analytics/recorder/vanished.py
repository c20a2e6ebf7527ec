"""Markets stored as open that the exchange no longer has: closed on the leader's start.

Kalshi keeps every market, but the simulator starts a new universe on each start (its tickers carry the start
time), so without this the markets of earlier runs would stay "active" in the sim database forever. On becoming
leader the recorder asks the exchange about every market stored as open (initialized, inactive, active) that is
absent from the current listing: those it still knows are updated (they closed or settled meanwhile, which the
recorder missed while no one recorded); those it does not are marked ``closed`` at the time of the check, result
unknown — closed, not finalized, because no result was ever given. A closed market is not asked about again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.poll import Poller, Put
from kalshi_analytics.recorder.rows import MarketRow

log = get_logger(__name__)

OPEN_STATUSES = ("initialized", "inactive", "active")
_STORED_OPEN_SQL = text("SELECT ticker, close_time FROM markets WHERE status IN :statuses").bindparams(
    bindparam("statuses", value=list(OPEN_STATUSES), expanding=True)
)


@dataclass
class VanishedReport:
    updated: list[str] = field(default_factory=list)  # still known to the exchange: state refreshed
    closed: list[str] = field(default_factory=list)  # unknown to the exchange: marked closed


async def close_vanished(engine: AsyncEngine, poller: Poller, put: Put, listed: Collection[str]) -> VanishedReport:
    """Refresh or close the stored open markets missing from ``listed`` (writes go through ``put``, the sink)."""
    async with engine.connect() as conn:
        stored = {row.ticker: row.close_time for row in await conn.execute(_STORED_OPEN_SQL)}
    missing = sorted(set(stored) - set(listed))
    report = VanishedReport()
    if not missing:
        return report
    found = await poller.fetch_tickers(missing)
    for m in found:
        await put(await poller.catalog.market_row(m))
        report.updated.append(m.ticker)
    now = datetime.now(UTC)
    for ticker in sorted(set(missing) - {m.ticker for m in found}):
        stored_close = stored[ticker]
        close_time = now if stored_close is None or stored_close > now else None  # None: keep the stored one
        await put(MarketRow(ticker=ticker, status="closed", close_time=close_time))
        report.closed.append(ticker)
    if report.closed:
        log.warning(
            "recorder_markets_vanished",
            closed=len(report.closed),
            examples=report.closed[:5],
            why="stored as open, unknown to the exchange (a restarted simulator lists new markets)",
        )
    if report.updated:
        log.info("recorder_markets_refreshed", markets=len(report.updated), why="left the listing while unrecorded")
    return report
