"""Throughput of the WebSocket parse path (``parse_ws_message``) on realistic current-format frames.

Run: ``.venv/bin/python -m bench.ws_parse [N]`` (default N = 200,000). Target: ≥ 20,000 messages/s on one core.
The frames mix ticker / trade / orderbook_delta in the proportions a busy orderbook subscription sees
(mostly deltas), in the Aug-2026 wire format (``*_dollars`` strings, ``*_fp`` counts, ``ts_ms``).
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

from kalshi_analytics.kalshi import parse_ws_message


def make_frames(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    tickers = [f"KXBTCD-26FEB1217-T{67000 + 250 * i}.99" for i in range(40)]
    ts_ms = 1_770_897_976_000
    frames: list[str] = []
    seq = 0
    for _ in range(n):
        ts_ms += rng.randint(0, 30)
        ticker = rng.choice(tickers)
        bid = rng.randint(1, 97)
        kind = rng.random()
        if kind < 0.6:
            seq += 1
            msg = {
                "market_ticker": ticker,
                "market_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "price_dollars": f"{rng.randint(1, 99) / 100:.4f}",
                "delta_fp": f"{rng.choice((-1, 1)) * rng.randint(1, 50000) / 100:.2f}",
                "side": rng.choice(("yes", "no")),
                "ts_ms": ts_ms,
            }
            frames.append(json.dumps({"type": "orderbook_delta", "sid": 2, "seq": seq, "msg": msg}))
        elif kind < 0.85:
            msg = {
                "market_ticker": ticker,
                "market_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "price_dollars": f"{bid / 100:.4f}",
                "yes_bid_dollars": f"{bid / 100:.4f}",
                "yes_ask_dollars": f"{(bid + 2) / 100:.4f}",
                "volume_fp": f"{rng.randint(0, 10**7) / 100:.2f}",
                "open_interest_fp": f"{rng.randint(0, 10**7) / 100:.2f}",
                "dollar_volume": rng.randint(0, 10**5),
                "dollar_open_interest": rng.randint(0, 10**5),
                "yes_bid_size_fp": f"{rng.randint(0, 10**5) / 100:.2f}",
                "yes_ask_size_fp": f"{rng.randint(0, 10**5) / 100:.2f}",
                "last_trade_size_fp": f"{rng.randint(0, 10**4) / 100:.2f}",
                "ts": ts_ms // 1000,
                "ts_ms": ts_ms,
                "time": datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            frames.append(json.dumps({"type": "ticker", "sid": 1, "msg": msg}))
        else:
            msg = {
                "trade_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "market_ticker": ticker,
                "yes_price_dollars": f"{bid / 100:.4f}",
                "no_price_dollars": f"{(100 - bid) / 100:.4f}",
                "count_fp": f"{rng.randint(1, 10**5) / 100:.2f}",
                "taker_side": "yes",
                "taker_outcome_side": "yes",
                "taker_book_side": "bid",
                "is_block_trade": False,
                "ts": ts_ms // 1000,
                "ts_ms": ts_ms,
            }
            frames.append(json.dumps({"type": "trade", "sid": 3, "seq": seq, "msg": msg}))
    return frames


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 200_000
    frames = make_frames(n)
    for f in frames[:1000]:  # warm-up
        parse_ws_message(f)
    kinds: Counter[str] = Counter()
    start = time.perf_counter()
    for f in frames:
        kinds[type(parse_ws_message(f)).__name__] += 1
    elapsed = time.perf_counter() - start
    print(f"parsed {n:,} frames in {elapsed:.2f} s: {n / elapsed:,.0f} msg/s ({dict(kinds)})")


if __name__ == "__main__":
    main(sys.argv)
