"""A parameter sweep: the window loaded once, each run on a process of its own, through the run path.

Every run is :func:`~kalshi_analytics.backtests.service.compute_backtest` of its request on the shared dataset —
the function ``backtest run`` calls — so a sweep row is the same backtest as a single run of that request: the
same fill model (displayed size consumed, recorded books walked where an order is larger than the touch,
unknown sizes capped, latency), the same books loaded the same way (each worker reads the ones its run needs
over its own connection), the same metrics. Each result records its fill model in ``metrics.fill_model`` and
the request's fill settings in its ``config``, as a single run's does.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.cache import ColumnarCache
from kalshi_analytics.backtests.data import Dataset, MarketInfo
from kalshi_analytics.backtests.progress import OnPhase
from kalshi_analytics.backtests.service import (
    BacktestOutcome,
    BacktestRequest,
    _insert_request,
    compute_backtest,
    load_for,
    save_outcome,
)
from kalshi_analytics.db.engine import create_engine

_WORKER: dict[str, Any] = {}


def _init_worker(npz: str, markets: list[MarketInfo], start: datetime, end: datetime, url: str) -> None:
    _WORKER["ds"] = Dataset.from_npz(npz, markets, start, end)
    _WORKER["url"] = url


def _run_one(req_json: str) -> BacktestOutcome:
    req = BacktestRequest.model_validate_json(req_json)

    async def go() -> BacktestOutcome:
        # One connection for the books this run needs; a run takes far longer than opening it.
        engine = create_engine(_WORKER["url"], pool_size=1)
        try:
            return await compute_backtest(engine, req, dataset=_WORKER["ds"])
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def run_sweep(
    engine: AsyncEngine, reqs: list[BacktestRequest], cache: ColumnarCache | None, n_workers: int, progress: OnPhase
) -> list[tuple[uuid.UUID, BacktestOutcome]]:
    """Load the window of ``reqs`` (one window and filter for all) once, run every request on ``n_workers``
    processes, store each outcome; ``progress`` hears ``load``, ``runs`` (done / total) and ``persist``.
    Returns (id, outcome) per request, in their order."""
    progress("load", 0, None)
    ds = await load_for(engine, reqs[0], cache)
    progress("load", ds.rows, ds.rows)
    url = engine.url.render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory(prefix="ka-sweep-") as tmp:
        npz = str(Path(tmp) / "snapshots.npz")
        ds.save(npz)
        init = (npz, ds.markets, ds.start, ds.end, url)
        with ProcessPoolExecutor(n_workers, initializer=_init_worker, initargs=init) as pool:
            progress("runs", 0, len(reqs))
            futures = {pool.submit(_run_one, r.model_dump_json()): i for i, r in enumerate(reqs)}
            outs: list[Any] = [None] * len(reqs)
            for done, f in enumerate(as_completed(futures), 1):
                outs[futures[f]] = f.result()
                progress("runs", done, len(reqs))
    saved = []
    progress("persist", 0, len(reqs))
    for r, out in zip(reqs, outs, strict=True):
        out.load_seconds = ds.load_seconds
        rid = await _insert_request(engine, r, out.strategy_version, out.params, "running")
        await save_outcome(engine, rid, out)
        saved.append((rid, out))
        progress("persist", len(saved), len(reqs))
    return saved
