import { describe, expect, it } from "vitest";
import type { Candle } from "../client";
import { applySnapshot, bucketStart, toBars } from "./candles";

const candle = (start: string, o: string | null, h: string, l: string, c: string): Candle => ({
  start,
  first_ts: start,
  last_ts: start,
  prob_open: o,
  prob_high: h,
  prob_low: l,
  prob_close: c,
  price_open: null,
  price_high: null,
  price_low: null,
  price_close: null,
  open_interest: null,
  volume: null,
  snapshots: 1,
  yes_ask_close: null,
  yes_bid_close: null,
});

describe("live candles", () => {
  it("a live snapshot's bar starts at its minute's bucket (UTC seconds)", () => {
    expect(bucketStart("2026-11-21T12:03:41.250Z")).toBe(Date.UTC(2026, 10, 21, 12, 3) / 1000);
  });

  it("extends the last bar within its minute and opens a new one after it", () => {
    const [last] = toBars([candle("2026-11-21T12:03:00Z", "0.40", "0.42", "0.39", "0.41")]);
    const same = applySnapshot(last, { ts: "2026-11-21T12:03:50Z", implied_probability: "0.4500" });
    expect(same).toEqual({ time: last!.time, open: 0.4, high: 0.45, low: 0.39, close: 0.45 });
    const next = applySnapshot(same!, { ts: "2026-11-21T12:04:05Z", implied_probability: "0.4300" });
    expect(next).toEqual({ time: last!.time + 60, open: 0.43, high: 0.43, low: 0.43, close: 0.43 });
  });

  it("ignores snapshots without a probability or older than the last bar, and candles without one", () => {
    const bars = toBars([
      candle("2026-11-21T12:04:00Z", "0.40", "0.42", "0.39", "0.41"),
      candle("2026-11-21T12:03:00Z", null, "0.42", "0.39", "0.41"),
    ]);
    expect(bars).toHaveLength(1);
    expect(applySnapshot(bars[0], { ts: "2026-11-21T12:04:10Z", implied_probability: null })).toBeNull();
    expect(applySnapshot(bars[0], { ts: "2026-11-21T12:02:10Z", implied_probability: "0.5" })).toBeNull();
  });
});
