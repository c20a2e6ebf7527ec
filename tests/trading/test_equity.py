"""The vectorised equity kernel against a plain per-point recomputation, on random event logs."""

from __future__ import annotations

import numpy as np
import pytest

from kalshi_analytics.trading.equity import MarkTape, equity_curve

S = 1_000_000


def random_run(seed: int) -> tuple[list[tuple[int, int, int, float, float]], MarkTape]:
    rng = np.random.default_rng(seed)
    markets, rows = 4, 40
    offsets = np.arange(markets + 1) * rows
    ts = np.concatenate([np.sort(rng.choice(np.arange(0, 3600, 7), rows, replace=False)) * S for _ in range(markets)])
    yes_bid = np.round(rng.uniform(0.05, 0.95, markets * rows), 2)
    no_bid = np.round(1 - yes_bid - 0.02, 2)
    yes_bid[rng.random(len(yes_bid)) < 0.2] = np.nan  # unquoted rows
    no_bid[: rows // 4] = np.nan  # market 0's NO side unquoted at first
    events: list[tuple[int, int, int, float, float]] = []
    for k in range(markets):
        for side in (1, 2):
            held = 0.0
            for r in sorted(rng.choice(rows, 8, replace=False)):
                t = int(ts[k * rows + r])
                if held > 0 and rng.random() < 0.5:
                    size = held if rng.random() < 0.5 else round(held / 2, 2)
                    events.append((t, k, side, -size, size * 0.5))
                    held -= size
                else:
                    size = float(rng.integers(1, 20)) + (0.25 if rng.random() < 0.3 else 0.0)
                    events.append((t, k, side, size, -size * 0.5))
                    held += size
    return events, MarkTape(offsets.astype(np.int64), ts.astype(np.int64), yes_bid, no_bid)


def reference(events: list[tuple[int, int, int, float, float]], tape: MarkTape, t: int, initial: float) -> float:
    cash = initial + sum(e[4] for e in events if e[0] <= t)
    value = 0.0
    for k in range(len(tape.offsets) - 1):
        a, b = tape.offsets[k], tape.offsets[k + 1]
        for side, col in ((1, tape.yes_bid), (2, tape.no_bid)):
            held = sum(e[3] for e in events if e[1] == k and e[2] == side and e[0] <= t)
            if abs(held) < 1e-9:
                continue
            quoted = [col[i] for i in range(a, b) if tape.ts_us[i] <= t and np.isfinite(col[i])]
            value += held * (quoted[-1] if quoted else 0.0)
    return cash + value


@pytest.mark.parametrize("seed", range(8))
def test_the_kernel_matches_a_plain_recomputation(seed: int) -> None:
    events, tape = random_run(seed)
    curve = equity_curve(events, 1000.0, tape, start_us=-10 * S, end_us=3600 * S, first_data_us=0, interval_seconds=60)
    assert curve.ts_us[0] == -10 * S
    assert curve.equity[0] == 1000.0
    for t, e in zip(curve.ts_us[1:].tolist(), curve.equity[1:].tolist(), strict=True):
        assert e == pytest.approx(reference(events, tape, t, 1000.0), abs=1e-9), t
    assert set(e[0] for e in events) <= set(curve.ts_us.tolist())  # every fill is a point
    # Exposure: the union of the times any (market, side) was held, by brute force on a 1-second grid.
    held_any = np.zeros(3600, bool)
    for k in range(4):
        for side in (1, 2):
            mine = sorted((e[0], e[3]) for e in events if e[1] == k and e[2] == side)
            h, last = 0.0, None
            for t, d in mine:
                if h > 1e-9 and last is not None:
                    held_any[last // S : t // S] = True
                h += d
                last = t
            if h > 1e-9 and last is not None:
                held_any[last // S :] = True
    assert curve.exposure_seconds == pytest.approx(float(held_any.sum()))
