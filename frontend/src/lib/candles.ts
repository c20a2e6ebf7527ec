// Candles of implied probability (1m/5m/1h/1d) for the chart, their volume, and how a live snapshot moves the
// last one. A candle's time is the start of its bucket (UTC seconds): at 1m a live snapshot at 12:03:41 belongs to
// 12:03:00, at 1h to 12:00:00. Buckets count from 2000-01-01 UTC, as the API's do (whole days, so a multiple of
// any of the four sizes from the Unix epoch as well).
import type { Candle, Snapshot } from "../client";

export type Bar = { time: number; open: number; high: number; low: number; close: number };

export const MINUTE = 60;

export function bucketStart(iso: string, seconds = MINUTE): number {
  const t = Math.floor(new Date(iso).getTime() / 1000);
  return t - (t % seconds);
}

/** Candles as chart bars, oldest first; a candle without a probability (no two-sided book, no trade) is left
 * out rather than drawn at 0. */
export function toBars(candles: Candle[], seconds = MINUTE): Bar[] {
  const bars: Bar[] = [];
  for (const c of candles) {
    const o = c.prob_open, h = c.prob_high, l = c.prob_low, cl = c.prob_close;
    if (o === null || h === null || l === null || cl === null) continue;
    bars.push({ time: bucketStart(c.start, seconds), open: Number(o), high: Number(h), low: Number(l), close: Number(cl) });
  }
  bars.sort((a, b) => a.time - b.time);
  return bars;
}

/** The bar a snapshot makes of ``last`` (the chart's newest bar): the same bucket extends it, a later one
 * opens a new bar at the snapshot's price. None when the snapshot has no probability or is older than ``last``
 * (a chart cannot rewrite history with update()). */
export function applySnapshot(
  last: Bar | undefined,
  snap: Pick<Snapshot, "ts" | "implied_probability">,
  seconds = MINUTE,
): Bar | null {
  if (snap.implied_probability === null) return null;
  const p = Number(snap.implied_probability);
  if (!Number.isFinite(p)) return null;
  const time = bucketStart(snap.ts, seconds);
  if (!last || time > last.time) return { time, open: p, high: p, low: p, close: p };
  if (time < last.time) return null;
  return { time, open: last.open, high: Math.max(last.high, p), low: Math.min(last.low, p), close: p };
}

export type Interval = "1m" | "5m" | "1h" | "1d";

export const INTERVALS: { id: Interval; label: string; seconds: number; window: string; span: number }[] = [
  { id: "1m", label: "1m", seconds: 60, window: "-1d", span: 86400 },
  { id: "5m", label: "5m", seconds: 300, window: "-5d", span: 5 * 86400 },
  { id: "1h", label: "1h", seconds: 3600, window: "-30d", span: 30 * 86400 },
  { id: "1d", label: "1d", seconds: 86400, window: "-365d", span: 365 * 86400 },
];

export function intervalSeconds(id: Interval): number {
  return INTERVALS.find((i) => i.id === id)!.seconds;
}

/** A volume column: contracts traded in the bucket. */
export type VolumeBar = { time: number; value: number; up: boolean };

/** The volume traded in each bucket. A candle's ``volume`` is the market's cumulative volume at the bucket's
 * close, so a bucket's own is the difference from the previous candle's (the first candle has no previous: left
 * out); a fall (a feed correction) counts as 0. ``up`` is whether the bucket's probability closed ≥ its open. */
export function toVolumes(candles: Candle[], seconds = MINUTE): VolumeBar[] {
  const sorted = [...candles].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  const out: VolumeBar[] = [];
  let prev: number | null = null;
  for (const c of sorted) {
    const v = c.volume === null ? null : Number(c.volume);
    if (v === null || !Number.isFinite(v)) continue;
    if (prev !== null) {
      const o = Number(c.prob_open ?? NaN), cl = Number(c.prob_close ?? NaN);
      out.push({ time: bucketStart(c.start, seconds), value: Math.max(0, v - prev), up: !(cl < o) });
    }
    prev = v;
  }
  return out;
}

/** The live bucket's volume: ``base`` is the cumulative volume when the bucket opened. */
export type LiveVolume = { time: number; base: number; cum: number };

/** How a live snapshot's cumulative volume moves the live bucket's (None: no volume, or older than it). */
export function applyVolume(
  last: LiveVolume | undefined,
  snap: Pick<Snapshot, "ts" | "volume">,
  seconds = MINUTE,
): LiveVolume | null {
  if (snap.volume === null) return null;
  const cum = Number(snap.volume);
  if (!Number.isFinite(cum)) return null;
  const time = bucketStart(snap.ts, seconds);
  if (!last) return { time, base: cum, cum };
  if (time < last.time) return null;
  if (time > last.time) return { time, base: last.cum, cum };
  return { time, base: last.base, cum: Math.max(cum, last.cum) };
}

/** The live volume state the history leaves: the last candle's bucket, from the previous candle's close. */
export function seedVolume(candles: Candle[], seconds = MINUTE): LiveVolume | undefined {
  const withVol = candles
    .filter((c) => c.volume !== null && Number.isFinite(Number(c.volume)))
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  const last = withVol[withVol.length - 1];
  if (!last) return undefined;
  const prev = withVol[withVol.length - 2];
  const cum = Number(last.volume);
  return { time: bucketStart(last.start, seconds), base: prev ? Number(prev.volume) : cum, cum };
}
