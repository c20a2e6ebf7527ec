import { describe, expect, it } from "vitest";
import type { BacktestExecution, BookLevel, Candle, Trade } from "../client";
import { applySnapshot, applyVolume, bucketStart, intervalSeconds, seedVolume, toBars, toVolumes } from "./candles";
import { depthCurve, depthRange } from "./depth";
import { applyGapEvent, runsOf, shadedBuckets, shadedRanges, type Gap } from "./gaps";
import { barAt, executionMarks, executionWindow } from "./markers";
import { mergeTrades } from "./tape";

const T = (iso: string) => Date.parse(iso) / 1000;

const candle = (start: string, o: string, c: string, volume: string | null): Candle => ({
  start,
  first_ts: start,
  last_ts: start,
  prob_open: o,
  prob_high: o > c ? o : c,
  prob_low: o < c ? o : c,
  prob_close: c,
  price_open: null,
  price_high: null,
  price_low: null,
  price_close: null,
  open_interest: null,
  volume,
  snapshots: 1,
  yes_ask_close: null,
  yes_bid_close: null,
});

describe("interval bucketing", () => {
  it("puts a moment in the bucket of each interval that starts at or before it", () => {
    const ts = "2026-11-21T13:47:41.250Z";
    expect(bucketStart(ts, intervalSeconds("1m"))).toBe(T("2026-11-21T13:47:00Z"));
    expect(bucketStart(ts, intervalSeconds("5m"))).toBe(T("2026-11-21T13:45:00Z"));
    expect(bucketStart(ts, intervalSeconds("1h"))).toBe(T("2026-11-21T13:00:00Z"));
    expect(bucketStart(ts, intervalSeconds("1d"))).toBe(T("2026-11-21T00:00:00Z"));
  });

  it("extends an hourly bar with a snapshot later in the hour, opens the next one after it", () => {
    const [bar] = toBars([candle("2026-11-21T13:00:00Z", "0.40", "0.41", null)], 3600);
    const same = applySnapshot(bar, { ts: "2026-11-21T13:59:59Z", implied_probability: "0.5" }, 3600);
    expect(same).toMatchObject({ time: T("2026-11-21T13:00:00Z"), open: 0.4, high: 0.5, close: 0.5 });
    const next = applySnapshot(same!, { ts: "2026-11-21T14:00:00Z", implied_probability: "0.45" }, 3600);
    expect(next).toEqual({ time: T("2026-11-21T14:00:00Z"), open: 0.45, high: 0.45, low: 0.45, close: 0.45 });
  });
});

describe("volume", () => {
  const candles = [
    candle("2026-11-21T12:02:00Z", "0.42", "0.40", "130"),
    candle("2026-11-21T12:00:00Z", "0.40", "0.41", "100"),
    candle("2026-11-21T12:01:00Z", "0.41", "0.42", null),
    candle("2026-11-21T12:03:00Z", "0.40", "0.40", "125"),
  ];

  it("is the difference of the cumulative volume between candles, oldest first; a fall counts 0", () => {
    expect(toVolumes(candles)).toEqual([
      { time: T("2026-11-21T12:02:00Z"), value: 30, up: false },
      { time: T("2026-11-21T12:03:00Z"), value: 0, up: true },
    ]);
  });

  it("goes on live from the history's last bucket, then opens a bucket at the previous cumulative volume", () => {
    const seed = seedVolume(candles);
    expect(seed).toEqual({ time: T("2026-11-21T12:03:00Z"), base: 130, cum: 125 });
    const same = applyVolume(seed, { ts: "2026-11-21T12:03:30Z", volume: "140" });
    expect(same).toEqual({ time: T("2026-11-21T12:03:00Z"), base: 130, cum: 140 });
    const next = applyVolume(same!, { ts: "2026-11-21T12:04:10Z", volume: "151" });
    expect(next).toEqual({ time: T("2026-11-21T12:04:00Z"), base: 140, cum: 151 });
    expect(applyVolume(next!, { ts: "2026-11-21T12:03:59Z", volume: "999" })).toBeNull();
    expect(applyVolume(next!, { ts: "2026-11-21T12:04:20Z", volume: null })).toBeNull();
  });
});

describe("feed gaps as shaded buckets", () => {
  const gap = (key: string, start: string, end: string | null): Gap => ({ key, gap_start: start, gap_end: end });

  it("shades each bucket a gap touches, merging overlapping and adjacent gaps", () => {
    const ranges = shadedRanges(
      [
        gap("a", "2026-11-21T12:00:30Z", "2026-11-21T12:02:00Z"), // 12:00, 12:01 (ends on the 12:02 boundary)
        gap("b", "2026-11-21T12:02:10Z", "2026-11-21T12:02:20Z"), // 12:02: adjacent, merged
        gap("c", "2026-11-21T12:10:00Z", "2026-11-21T12:10:00Z"), // an instant still shades its bucket
      ],
      60,
      T("2026-11-21T13:00:00Z"),
    );
    expect(ranges).toEqual([
      { from: T("2026-11-21T12:00:00Z"), to: T("2026-11-21T12:02:00Z") },
      { from: T("2026-11-21T12:10:00Z"), to: T("2026-11-21T12:10:00Z") },
    ]);
    expect(shadedBuckets(ranges, 60)).toEqual([
      T("2026-11-21T12:00:00Z"),
      T("2026-11-21T12:01:00Z"),
      T("2026-11-21T12:02:00Z"),
      T("2026-11-21T12:10:00Z"),
    ]);
  });

  it("runs an open gap on to now, at the chart's interval, clipped to the window and bounded", () => {
    const now = T("2026-11-21T15:20:00Z");
    const ranges = shadedRanges([gap("open", "2026-11-21T12:30:00Z", null)], 3600, now);
    expect(ranges).toEqual([{ from: T("2026-11-21T12:00:00Z"), to: T("2026-11-21T15:00:00Z") }]);
    expect(shadedBuckets(ranges, 3600, T("2026-11-21T13:10:00Z"), now)).toEqual([
      T("2026-11-21T14:00:00Z"),
      T("2026-11-21T15:00:00Z"),
    ]);
    expect(shadedBuckets(ranges, 3600, -Infinity, Infinity, 2)).toEqual([T("2026-11-21T14:00:00Z"), T("2026-11-21T15:00:00Z")]);
  });

  it("turns shaded buckets back into one band per run of consecutive buckets", () => {
    expect(runsOf([0, 60, 120, 300, 360, 600], 60)).toEqual([
      { from: 0, to: 120 },
      { from: 300, to: 360 },
      { from: 600, to: 600 },
    ]);
    expect(runsOf([], 60)).toEqual([]);
  });

  it("opens a gap from the stream and closes it when repaired; an unknown repair changes nothing", () => {
    const opened = applyGapEvent([], { kind: "gap_opened", key: "k", gap_start: "2026-11-21T12:00:00Z", ticker: null, cause: "disconnect" });
    expect(opened).toEqual([{ key: "k", gap_start: "2026-11-21T12:00:00Z", gap_end: null, ticker: null, cause: "disconnect" }]);
    const again = applyGapEvent(opened, { kind: "gap_opened", key: "k", gap_start: "2026-11-21T12:00:00Z", ticker: null, cause: "disconnect" });
    expect(again).toHaveLength(1);
    const repaired = applyGapEvent(again, {
      kind: "gap_repaired",
      key: "k",
      gap_end: "2026-11-21T12:05:00Z",
      repair_method: "get_snapshot",
      unrepairable_reason: null,
    });
    expect(repaired[0]).toMatchObject({ gap_end: "2026-11-21T12:05:00Z", repair_method: "get_snapshot" });
    const unknown = { kind: "gap_repaired", key: "x", gap_end: "2026-11-21T12:05:00Z", repair_method: "m", unrepairable_reason: null } as const;
    expect(applyGapEvent(repaired, unknown)).toBe(repaired);
  });
});

describe("depth curve of a bids-only book", () => {
  const lv = (price: string, size: string): BookLevel => ({ price, size });

  it("cumulates YES bids downwards and YES asks (1 − NO bids) upwards", () => {
    const d = depthCurve({ yes: [lv("0.40", "10"), lv("0.42", "5"), lv("0.30", "0")], no: [lv("0.55", "7"), lv("0.57", "3")] });
    expect(d.bids).toEqual([
      { price: 0.42, cum: 5 },
      { price: 0.4, cum: 15 },
    ]);
    expect(d.asks).toEqual([
      { price: 0.43, cum: 3 },
      { price: 0.45, cum: 10 },
    ]);
    expect(d.bestBid).toBe(0.42);
    expect(d.bestAsk).toBe(0.43);
    expect(d.max).toBe(15);
    const [lo, hi] = depthRange(d);
    expect(lo).toBeLessThan(0.4);
    expect(hi).toBeGreaterThan(0.45);
  });

  it("draws an empty or one-sided book", () => {
    const empty = depthCurve({ yes: [], no: [] });
    expect(empty).toMatchObject({ bids: [], asks: [], bestBid: null, bestAsk: null, max: 0 });
    expect(depthRange(empty)).toEqual([0, 1]);
    expect(depthCurve({ yes: [], no: [lv("0.99", "2")] }).asks).toEqual([{ price: 0.01, cum: 2 }]);
  });
});

describe("trades tape", () => {
  const trade = (id: string, ts: string): Trade => ({
    trade_id: id,
    ticker: "T",
    ts,
    yes_price: "0.4",
    no_price: "0.6",
    count: "1",
    taker_side: "yes",
    is_block_trade: null,
  });

  it("merges REST and live trades newest first, each trade once, bounded", () => {
    const rest = [trade("b", "2026-11-21T12:00:02Z"), trade("a", "2026-11-21T12:00:01Z")];
    const live = [trade("c", "2026-11-21T12:00:03Z"), { ...trade("b", "2026-11-21T12:00:02Z"), count: "2" }];
    const merged = mergeTrades(rest, live);
    expect(merged.map((t) => t.trade_id)).toEqual(["c", "b", "a"]);
    expect(merged[1]!.count).toBe("2");
    expect(mergeTrades(merged, [trade("d", "2026-11-21T12:00:03Z")], 2).map((t) => t.trade_id)).toEqual(["d", "c"]);
  });
});

describe("backtest marks", () => {
  const exec = (over: Partial<BacktestExecution>): BacktestExecution => ({
    id: 1,
    ticker: "T",
    side: "yes",
    size: "1",
    entry_ts: "2026-11-21T12:01:30Z",
    entry_price: "0.42",
    entry_snapshot_source: null,
    entry_snapshot_ts: null,
    exit_ts: "2026-11-21T12:05:10Z",
    exit_price: "0.5",
    exit_reason: "take_profit",
    exit_snapshot_source: null,
    exit_snapshot_ts: null,
    fees: "0.01",
    pnl: "0.07",
    ...over,
  });

  it("puts a fill on the bar of its bucket, and leaves out one outside the bars", () => {
    const times = [T("2026-11-21T12:00:00Z"), T("2026-11-21T12:01:00Z"), T("2026-11-21T12:05:00Z")];
    expect(barAt(times, T("2026-11-21T12:01:59Z"), 60)).toBe(times[1]);
    expect(barAt(times, T("2026-11-21T12:03:00Z"), 60)).toBeNull(); // no bar for 12:03
    expect(barAt(times, T("2026-11-21T11:59:00Z"), 60)).toBeNull();
    const marks = executionMarks([exec({}), exec({ id: 2, ticker: "OTHER" }), exec({ id: 3, exit_ts: null, exit_price: null })], "T", times, 60);
    expect(marks.map((m) => [m.kind, m.time])).toEqual([
      ["entry", times[1]],
      ["entry", times[1]],
      ["exit", times[2]],
    ]);
    expect(executionWindow([exec({})], "T")).toEqual({ start: "2026-11-21T11:01:30.000Z", end: "2026-11-21T13:05:10.000Z" });
    expect(executionWindow([exec({})], "NONE")).toBeNull();
  });
});
