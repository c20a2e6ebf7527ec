"""Lifecycle frames in the stream loop: what they teach the catalogue, and which ones cost a REST request."""

from __future__ import annotations

import asyncio
import json

from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.kalshi.ws import KalshiWsClient
from kalshi_analytics.recorder.poll import Poller, Selection
from kalshi_analytics.recorder.rows import MarketRow, SinkItem
from kalshi_analytics.recorder.stream import StreamRecorder
from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator
from tests.conftest import wait_until
from tests.recorder.conftest import sim_settings


def _frame(kind: str, msg: dict[str, object]) -> str:
    return json.dumps({"type": kind, "sid": 9, "msg": msg})


async def test_announced_events_need_no_lookup_and_unopened_markets_are_not_fetched_until_they_open() -> None:
    async with run_simulator(SimulatorConfig(seed=3, markets=4, port=0, rate_limit=None)) as sim:  # noqa: SIM117 - the client needs the simulator's URL
        async with KalshiRestClient.from_settings(sim_settings(sim)) as rest:
            rows: list[SinkItem] = []

            async def put(item: SinkItem) -> None:
                rows.append(item)

            poller = Poller(rest, put, Selection(status="open"))
            ws = KalshiWsClient(sim.ws_url)
            stream = StreamRecorder(ws, rest, put, poller, None)  # type: ignore[arg-type]  # no gaps here
            market = (await rest.get_markets(status="open", limit=1)).items[0]
            assert market.event_ticker is not None
            poller.catalog.event_series.clear()

            async def handle(raw: str) -> None:
                for ev in ws.dispatcher.handle(raw):
                    await stream.handle(ev)

            event = {"event_ticker": market.event_ticker, "series_ticker": "KXANNOUNCED", "title": "t"}
            await handle(_frame("event_lifecycle", event))
            before = rest.stats["requests"]
            assert await poller.catalog.series_of(market.event_ticker) == "KXANNOUNCED"

            # Created: not yet open, so an open-markets recorder has nothing to fetch ("activated" follows).
            await handle(_frame("market_lifecycle_v2", {"market_ticker": market.ticker, "event_type": "created"}))
            await asyncio.sleep(0.2)
            assert rest.stats["requests"] == before, "no REST request for an announced event or an unopened market"
            assert not stream._tasks

            # Activated: fetched and recorded, under the announced series.
            await handle(_frame("market_lifecycle_v2", {"market_ticker": market.ticker, "event_type": "activated"}))
            await wait_until(lambda: market.ticker in poller.state, "the market adopted", seconds=10)
            assert rest.stats["requests"] > before
            adopted = [r for r in rows if isinstance(r, MarketRow) and r.ticker == market.ticker]
            assert adopted, "a markets row for it"
            assert adopted[0].series_ticker == "KXANNOUNCED"
            for task in list(stream._tasks):
                task.cancel()
