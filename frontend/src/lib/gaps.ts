// Feed gaps as shaded stretches of the candle chart. A gap is [gap_start, gap_end) — an open one (no gap_end)
// runs on to now; on a chart of buckets it shades every bucket it touches, and overlapping gaps merge.
import type { MarketGap } from "../client";

/** What the chart needs of a gap (the REST row, or one rebuilt from the stream's events). */
export type Gap = Pick<MarketGap, "key" | "gap_start" | "gap_end"> &
  Partial<Pick<MarketGap, "ticker" | "cause" | "repair_method" | "unrepairable_reason">>;

/** A shaded stretch: bucket starts ``from`` … ``to`` (both included), UTC seconds. */
export type Shade = { from: number; to: number };

/** The bucket ranges the gaps cover, merged and sorted; ``now`` (seconds) ends open gaps. */
export function shadedRanges(gaps: Gap[], seconds: number, now: number): Shade[] {
  const spans: Shade[] = [];
  for (const g of gaps) {
    const s = Date.parse(g.gap_start) / 1000;
    const e = g.gap_end ? Date.parse(g.gap_end) / 1000 : now;
    if (!Number.isFinite(s) || !Number.isFinite(e) || e < s) continue;
    const from = Math.floor(s / seconds) * seconds;
    // [s, e): a gap ending exactly on a bucket boundary does not touch that bucket (unless it is empty: s == e).
    const last = e > s ? Math.ceil(e / seconds) * seconds - seconds : from;
    spans.push({ from, to: Math.max(from, last) });
  }
  spans.sort((a, b) => a.from - b.from);
  const out: Shade[] = [];
  for (const s of spans) {
    const prev = out[out.length - 1];
    if (prev && s.from <= prev.to + seconds) prev.to = Math.max(prev.to, s.to);
    else out.push({ ...s });
  }
  return out;
}

/** The bucket times to paint (one column each), at most ``max`` (the newest kept) so an old open gap on a
 * 1-minute chart cannot make a million columns; limited to [lo, hi] when given. */
export function shadedBuckets(ranges: Shade[], seconds: number, lo = -Infinity, hi = Infinity, max = 20000): number[] {
  const times: number[] = [];
  for (let i = ranges.length - 1; i >= 0 && times.length < max; i--) {
    const r = ranges[i]!;
    const top = Math.min(r.to, Math.floor(hi / seconds) * seconds);
    const bottom = Math.max(r.from, Math.ceil(lo / seconds) * seconds);
    for (let t = top; t >= bottom && times.length < max; t -= seconds) times.push(t);
  }
  return times.reverse();
}

/** The gaps after a stream event: an opening adds (or replaces) its key, a repair closes it. */
export function applyGapEvent(
  gaps: Gap[],
  event: { kind: "gap_opened"; key: string; gap_start: string; ticker: string | null; cause: string }
    | { kind: "gap_repaired"; key: string; gap_end: string; repair_method: string; unrepairable_reason: string | null },
): Gap[] {
  if (event.kind === "gap_opened") {
    const g: Gap = { key: event.key, gap_start: event.gap_start, gap_end: null, ticker: event.ticker, cause: event.cause };
    return [...gaps.filter((x) => x.key !== event.key), g];
  }
  const found = gaps.find((x) => x.key === event.key);
  if (!found) return gaps; // a repair of a gap this page never saw open (outside its window): nothing to redraw
  return gaps.map((x) =>
    x.key === event.key
      ? { ...x, gap_end: event.gap_end, repair_method: event.repair_method, unrepairable_reason: event.unrepairable_reason }
      : x,
  );
}

/** Bucket times (ascending) back into runs of consecutive buckets, one shaded band each. */
export function runsOf(times: number[], seconds: number): Shade[] {
  const out: Shade[] = [];
  for (const t of times) {
    const prev = out[out.length - 1];
    if (prev && t - prev.to <= seconds) prev.to = Math.max(prev.to, t);
    else out.push({ from: t, to: t });
  }
  return out;
}
