"""Exact integer units used inside the simulator and their wire spellings.

Prices are integers in units of $0.0001 ("P", 10_000 = $1.00); counts are integers in hundredths of a contract
("C", 100 = one contract). Both spell exactly as Kalshi's FixedPointDollars (4 dp) and FixedPointCount (2 dp).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

ONE_DOLLAR = 10_000
ONE_CONTRACT = 100

PriceRange = tuple[int, int, int]  # (start, end, step) in P units, end inclusive


def dollars(p: int) -> str:
    """10_000-based price → ``"0.4200"``."""
    if p < 0:
        return "-" + dollars(-p)
    return f"{p // ONE_DOLLAR}.{p % ONE_DOLLAR:04d}"


def count_fp(c: int) -> str:
    """Hundredths of a contract → ``"13.00"`` (signed for deltas)."""
    if c < 0:
        return "-" + count_fp(-c)
    return f"{c // ONE_CONTRACT}.{c % ONE_CONTRACT:02d}"


def cents(p: int) -> int:
    """Legacy integer cents (prices on a cent grid)."""
    return p // 100


def whole(c: int) -> int:
    """Legacy integer contract count."""
    return c // ONE_CONTRACT if c >= 0 else -((-c) // ONE_CONTRACT)


def price_decimal(p: int) -> Decimal:
    return Decimal(p).scaleb(-4)


def count_decimal(c: int) -> Decimal:
    return Decimal(c).scaleb(-2)


def rfc3339(ts: float) -> str:
    """Unix seconds → ``2026-11-21T10:02:03Z`` (Kalshi's second-resolution RFC 3339)."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_ms(ts_ms: int) -> str:
    dt = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


LINEAR_CENT: list[PriceRange] = [(0, ONE_DOLLAR, 100)]
DECI_CENT: list[PriceRange] = [(0, ONE_DOLLAR, 10)]
TAPERED_DECI_CENT: list[PriceRange] = [(0, 1_000, 10), (1_000, 9_000, 100), (9_000, ONE_DOLLAR, 10)]

PRICE_STRUCTURES: dict[str, list[PriceRange]] = {
    "linear_cent": LINEAR_CENT,
    "deci_cent": DECI_CENT,
    "tapered_deci_cent": TAPERED_DECI_CENT,
}


def on_grid(p: int, ranges: list[PriceRange]) -> bool:
    """True when ``p`` is a tradable price (strictly between 0 and 1) on the grid of ``ranges``."""
    if p <= 0 or p >= ONE_DOLLAR:
        return False
    return any(start <= p <= end and (p - start) % step == 0 for start, end, step in ranges)


def step_at(p: int, ranges: list[PriceRange]) -> int:
    """The tick size of the band containing ``p`` (the first band wins at a boundary, going up)."""
    for start, end, step in ranges:
        if start <= p < end:
            return step
    return ranges[-1][2]


def snap_down(p: int, ranges: list[PriceRange]) -> int:
    """The highest grid price ≤ ``p``."""
    for start, end, step in ranges:
        if start <= p <= end:
            return start + ((p - start) // step) * step
    return p


def grid_below(p: int, n: int, ranges: list[PriceRange]) -> list[int]:
    """Up to ``n`` grid prices strictly below ``p`` (descending), all > 0."""
    out: list[int] = []
    q = snap_down(p, ranges)
    if q == p:
        q -= step_at(q - 1, ranges)
    while q > 0 and len(out) < n:
        out.append(q)
        q -= step_at(q - 1, ranges)
    return out


def price_ranges_json(ranges: list[PriceRange]) -> list[dict[str, str]]:
    return [{"start": dollars(s), "end": dollars(e), "step": dollars(st)} for s, e, st in ranges]
