"""Recorder sub-commands: ``kalshi-analytics gaps`` (the coverage report)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kalshi_analytics.recorder.coverage import CoverageReport, coverage, format_duration

_RELATIVE = re.compile(r"^-\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SOURCES = ("poll", "websocket", "backfill")


class TimeParseError(ValueError):
    pass


def parse_time(value: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (naive = UTC), ``now``, or relative to now: ``-90s``, ``-15m``, ``-1h``, ``-2d``, ``-1w``."""
    now = now or datetime.now(UTC)
    v = value.strip()
    if v.lower() == "now":
        return now
    m = _RELATIVE.match(v.lower())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        parsed = datetime.fromisoformat(v.replace("Z", "+00:00") if v.endswith("Z") else v)
    except ValueError:
        raise TimeParseError(
            f"cannot read time {value!r}: use ISO 8601 (2026-11-21T12:00Z) or relative (-1h, -2d)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def render(report: CoverageReport, console: Console) -> None:
    title = f"Coverage {report.since.isoformat()} → {report.until.isoformat()}"
    table = Table(title=title, title_justify="left")
    table.add_column("market")
    table.add_column("gaps", justify="right")
    table.add_column("open", justify="right")
    table.add_column("repaired", justify="right")
    table.add_column("gap time", justify="right")
    table.add_column("repaired by")
    for s in SOURCES:
        table.add_column(s, justify="right")
    for m in report.markets:
        table.add_row(
            m.ticker,
            str(m.gaps),
            str(m.gaps_open),
            str(m.gaps_repaired),
            format_duration(m.gap_seconds) if m.gaps else "-",
            ", ".join(f"{k}×{n}" for k, n in sorted(m.repair_methods.items())) or "-",
            *(str(m.snapshots.get(s, 0)) for s in SOURCES),
        )
    if report.markets:
        console.print(table)
    else:
        console.print(f"{title}: no market gaps and no snapshots in the window")
    subs = Table(title="Subscription-wide gaps (all markets of a subscription)", title_justify="left")
    for col in ("start", "channel", "sid", "cause", "duration", "repaired"):
        subs.add_column(col)
    for g in report.subscription_gaps:
        subs.add_row(
            g.gap_start.isoformat(),
            g.channel,
            "-" if g.sid is None else str(g.sid),
            g.cause,
            format_duration(g.seconds),
            f"{g.repair_method or '?'} at {g.repaired_at.isoformat()}" if g.repaired_at else "OPEN",
        )
    if report.subscription_gaps:
        console.print(subs)
    else:
        console.print("no subscription-wide gaps in the window")


def gaps(
    since: Annotated[str, typer.Option(help="Window start: ISO 8601 or relative (-1h, -2d).")] = "-1d",
    until: Annotated[str, typer.Option(help="Window end: ISO 8601, relative, or now.")] = "now",
    ticker: Annotated[str | None, typer.Option(help="Only this market (plus subscription-wide gaps).")] = None,
) -> None:
    """Per-market coverage of a window: feed gaps (repaired or open, and how) and snapshots per source."""
    from kalshi_analytics.cli import fail, run, settings
    from kalshi_analytics.database import open_database

    s = settings()
    now = datetime.now(UTC)
    try:
        start, end = parse_time(since, now), parse_time(until, now)
    except TimeParseError as exc:
        fail(str(exc))
    if end <= start:
        fail(f"--until ({end.isoformat()}) must be after --since ({start.isoformat()})")

    async def go() -> CoverageReport:
        _choice, engine = await open_database(s, upgrade=False)
        try:
            async with engine.connect() as conn:
                return await coverage(conn, start, end, ticker)
        finally:
            await engine.dispose()

    render(run(go), Console(width=160))
