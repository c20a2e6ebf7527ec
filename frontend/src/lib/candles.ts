// 1-minute candles of implied probability for the chart, and how a live snapshot moves the last one.
// A candle's time is the start of its bucket (UTC seconds): a live snapshot at 12:03:41 belongs to 12:03:00.
import type { Candle, Snapshot } from "../client";

export type Bar = { time: number; open: number; high: number; low: number; close: number };

export const MINUTE = 60;

export function bucketStart(iso: string, seconds = MINUTE): number {
  const t = Math.floor(new Date(iso).getTime() / 1000);
  return t - (t % seconds);
}

/** Candles as chart bars, oldest first; a candle without a probability (no two-sided book, no trade) is left
 * out rather than drawn at 0. */
export function toBars(candles: Candle[]): Bar[] {
  const bars: Bar[] = [];
  for (const c of candles) {
    const o = c.prob_open, h = c.prob_high, l = c.prob_low, cl = c.prob_close;
    if (o === null || h === null || l === null || cl === null) continue;
    bars.push({ time: bucketStart(c.start), open: Number(o), high: Number(h), low: Number(l), close: Number(cl) });
  }
  bars.sort((a, b) => a.time - b.time);
  return bars;
}

/** The bar a snapshot makes of ``last`` (the chart's newest bar): the same bucket extends it, a later one
 * opens a new bar at the snapshot's price. None when the snapshot has no probability or is older than ``last``
 * (a chart cannot rewrite history with update()). */
export function applySnapshot(last: Bar | undefined, snap: Pick<Snapshot, "ts" | "implied_probability">): Bar | null {
  if (snap.implied_probability === null) return null;
  const p = Number(snap.implied_probability);
  if (!Number.isFinite(p)) return null;
  const time = bucketStart(snap.ts);
  if (!last || time > last.time) return { time, open: p, high: p, low: p, close: p };
  if (time < last.time) return null;
  return { time, open: last.open, high: Math.max(last.high, p), low: Math.min(last.low, p), close: p };
}
