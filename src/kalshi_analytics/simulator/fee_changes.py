"""Scheduled fee changes of the simulated exchange: ``GET /series/fee_changes`` and ``GET /events/fee_changes``.

The simulator never changes a fee while it runs, so nothing is ever *upcoming*. Each series has one historical
change: the one that set its current fee structure when the series was listed (shown with ``show_historical``).
No event carries a fee override, so the event list is empty, but its parameters are read and checked as Kalshi's.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi_analytics.simulator.model import Series
from kalshi_analytics.simulator.params import api_handler, bool_param, decode_cursor, int_param
from kalshi_analytics.simulator.units import rfc3339

if TYPE_CHECKING:
    from kalshi_analytics.simulator.server import Simulator

API = "/trade-api/v2"
_IDS = uuid.UUID("6f1d3c52-5a0e-4bb4-9a51-2f7c3e0d8a11")  # namespace: the same series gets the same id every run


def series_fee_change_json(s: Series) -> dict[str, object]:
    tpl = s.template
    return {
        "id": str(uuid.uuid5(_IDS, tpl.ticker)),
        "series_ticker": tpl.ticker,
        "fee_type": tpl.fee_type,
        "fee_multiplier": tpl.fee_multiplier,
        "scheduled_ts": rfc3339(s.created_ts),
    }


def fee_change_routes(sim: Simulator) -> list[Route]:
    model = sim.model

    async def series_fee_changes(request: Request) -> Response:
        q = request.query_params
        ticker = q.get("series_ticker") or None
        historical = bool_param(q, "show_historical")
        out = [
            series_fee_change_json(s)
            for s in model.series.values()
            if (ticker is None or s.ticker == ticker) and (historical or s.created_ts > model.now)
        ]
        return JSONResponse({"series_fee_change_arr": out})

    async def event_fee_changes(request: Request) -> Response:
        q = request.query_params
        int_param(q, "limit", 100, 1, 1000)
        decode_cursor(q.get("cursor"), "f")
        return JSONResponse({"event_fee_changes": [], "cursor": ""})

    return [
        Route(f"{API}/series/fee_changes", api_handler(series_fee_changes)),
        Route(f"{API}/events/fee_changes", api_handler(event_fee_changes)),
    ]
