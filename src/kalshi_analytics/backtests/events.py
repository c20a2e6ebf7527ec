"""The live stream's ``backtest_finished`` event: written in the transaction that stores a backtest's end."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from kalshi_analytics import events

#: What the UPDATE that ends a backtest returns for its event.
RETURNING = "RETURNING id, status, strategy_name, strategy_version, finished_at, total_pnl, num_trades, error"


class BacktestFinishedEvent(BaseModel):
    """``backtest_finished``: a backtest ended; fetch ``GET /api/v1/backtests/{id}`` for its results."""

    id: uuid.UUID
    status: Literal["done", "failed"]
    strategy: str
    strategy_version: str
    finished_at: datetime
    total_pnl: Decimal | None
    num_trades: int | None
    error: str | None = Field(description="why it failed (status `failed`)")


async def publish_finished(pg: Any, row: Any) -> None:
    """Journal and announce the end of the backtest ``row`` (the :data:`RETURNING` columns) on the asyncpg
    connection ``pg``, inside the transaction that stored it — as its last statements."""
    model = BacktestFinishedEvent.model_construct(
        id=row["id"],
        status=row["status"],
        strategy=row["strategy_name"],
        strategy_version=row["strategy_version"],
        finished_at=row["finished_at"],
        total_pnl=row["total_pnl"],
        num_trades=row["num_trades"],
        error=row["error"],
    )
    payload = model.__pydantic_serializer__.to_json(model).decode()
    last = await events.append(pg, [events.NewEvent(events.EventKind.BACKTEST_FINISHED, None, payload)])
    await events.notify(pg, last)
