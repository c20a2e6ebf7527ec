"""Gap handling's log lines: one per event a person needs, a summary of floods (every gap still counted)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from kalshi_analytics.kalshi.domain import Disconnected, SeqGap
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.recorder.gaps import GapRepairer
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.rows import GapOpened, GapRepaired, SinkItem

GAPS_LOGGERS = ("kalshi_analytics.recorder.gaps", "kalshi_analytics.recorder.gap_log")


pytestmark = pytest.mark.usefixtures("restore_logging")


def _gap_lines(err: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") in GAPS_LOGGERS]


def _repairer(rows: list[SinkItem], metrics: RecorderMetrics, **kw: Any) -> GapRepairer:
    async def put(item: SinkItem) -> None:
        rows.append(item)

    poller: Any = SimpleNamespace(high_water=None)  # repairs of no tickers read nothing from it but this
    return GapRepairer(None, put, poller, metrics=metrics, coalesce_seconds=0.01, **kw)  # type: ignore[arg-type]


async def _drop_frames(gaps: GapRepairer, frames: int, sids: int) -> None:
    """What a 5 % drop does to a feed: seq jumps one after the other on a few subscriptions, each repaired."""
    for i in range(frames):
        sid = 1 + i % sids
        ev = SeqGap(sid=sid, channel="orderbook_delta", expected=10 * i, received=10 * i + 1, at=datetime.now(UTC))
        gap = await gaps.open(ev, gap_start=None)
        gaps.repair(gap, [], state=False, trades=False, scope=f"orderbook_delta:{sid}")
        if i % 10 == 0:
            await asyncio.sleep(0.02)  # let some repairs finish in between, as they do live
    await gaps.wait_idle()


async def test_a_flood_of_gaps_is_not_logged_line_by_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    rows: list[SinkItem] = []
    metrics = RecorderMetrics()
    gaps = _repairer(rows, metrics)
    await _drop_frames(gaps, frames=200, sids=4)
    await gaps.close()

    err = capsys.readouterr().err
    lines = _gap_lines(err)
    # The first gap of each subscription and its repair, plus summaries: not one line per dropped frame.
    assert len(lines) <= 2 * 4 + 2, [line["event"] for line in lines]
    # Every gap is still recorded and counted.
    assert sum(isinstance(r, GapOpened) for r in rows) == 200
    assert sum(isinstance(r, GapRepaired) for r in rows) == 200
    assert metrics.gaps.labels("seq_jump")._value.get() == 200
    assert gaps.stats.opened == gaps.stats.repaired == 200


async def test_the_summaries_account_for_every_gap_not_logged_alone(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    rows: list[SinkItem] = []
    gaps = _repairer(rows, RecorderMetrics(), summary_seconds=0.05)
    await _drop_frames(gaps, frames=200, sids=4)
    await asyncio.sleep(0.1)  # the last window's summary is due
    await gaps.close()

    lines = _gap_lines(capsys.readouterr().err)
    alone = [line for line in lines if line["event"] == "feed_gap_opened"]
    summaries = [line for line in lines if line["event"] == "feed_gaps_summary"]
    assert len(alone) == 4  # the first of each subscription
    assert len(summaries) >= 2  # periodic, not only at the end
    assert len(alone) + sum(s["gaps"] for s in summaries) == 200
    repaired_alone = sum(line["keys"] for line in lines if line["event"] == "feed_gap_repaired")
    assert repaired_alone + sum(s["repaired"] for s in summaries) == 200
    assert all(s["subscriptions"] <= 4 and s["seconds"] >= 0 for s in summaries)


async def test_a_single_gap_and_every_disconnect_are_logged_as_they_happen(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    rows: list[SinkItem] = []
    gaps = _repairer(rows, RecorderMetrics())
    await _drop_frames(gaps, frames=1, sids=1)
    for _ in range(3):
        gap = await gaps.open(Disconnected(at=datetime.now(UTC), reason="closed"), gap_start=None)
        gaps.repair(gap, [], state=False, trades=False, scope="disconnect")
        await gaps.wait_idle()
    await gaps.close()

    events = [(line["event"], line.get("cause")) for line in _gap_lines(capsys.readouterr().err)]
    assert events == [
        ("feed_gap_opened", "seq_jump"),
        ("feed_gap_repaired", None),
        *[("feed_gap_opened", "disconnect"), ("feed_gap_repaired", None)] * 3,
    ]


async def test_a_repair_that_never_succeeds_ends_unrepairable_with_its_last_error() -> None:
    rows: list[SinkItem] = []
    gaps = _repairer(rows, RecorderMetrics(), max_attempts=2, retry_seconds=0.01)

    async def exchange_down() -> list[str]:
        raise ConnectionError("exchange unreachable")

    gap = await gaps.open(Disconnected(at=datetime.now(UTC), reason="test"), gap_start=None)
    gaps.repair(gap, [], before=exchange_down)
    async with asyncio.timeout(10):
        await gaps.wait_idle()
    ends = [r for r in rows if isinstance(r, GapRepaired)]
    assert len(ends) == 1
    assert ends[0].key == gap.key
    assert ends[0].repaired_at is None
    assert "repair failed 2 times" in (ends[0].unrepairable_reason or "")
    assert "exchange unreachable" in (ends[0].unrepairable_reason or "")
    assert gaps.stats.open == 0
