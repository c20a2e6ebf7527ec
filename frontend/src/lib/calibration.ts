// A backtest's calibration, from its metrics (computed by the engine from each execution's entry price — the
// forecast of its side winning — and the settled result of its market, weighted by contracts; resolved markets only).

export type Bucket = { lo: number; hi: number; trades: number; contracts: number; meanPrice: number; winRate: number };
export type Calibration = { brier: number | null; buckets: Bucket[] };

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : null);

/** The calibration table of a run's ``metrics`` (``calibration`` rows of bucket "0.4-0.5", trades, contracts,
 * mean_price, win_rate; ``brier_score``), rows that do not read skipped, ordered by bucket. */
export function calibrationOf(metrics: Record<string, unknown> | null | undefined): Calibration {
  const rows = Array.isArray(metrics?.calibration) ? (metrics.calibration as unknown[]) : [];
  const buckets: Bucket[] = [];
  for (const r of rows) {
    if (!r || typeof r !== "object") continue;
    const o = r as Record<string, unknown>;
    const m = typeof o.bucket === "string" ? /^([\d.]+)-([\d.]+)$/.exec(o.bucket) : null;
    const [trades, contracts, meanPrice, winRate] = [num(o.trades), num(o.contracts), num(o.mean_price), num(o.win_rate)];
    if (!m || trades === null || contracts === null || meanPrice === null || winRate === null) continue;
    buckets.push({ lo: Number(m[1]), hi: Number(m[2]), trades, contracts, meanPrice, winRate });
  }
  buckets.sort((a, b) => a.lo - b.lo);
  return { brier: num(metrics?.brier_score), buckets };
}

/** The contract-weighted mean distance between the price paid and how often that side won (0: perfectly
 * calibrated), or null without buckets. */
export function calibrationError(buckets: Bucket[]): number | null {
  const w = buckets.reduce((s, b) => s + b.contracts, 0);
  if (!buckets.length || w <= 0) return null;
  return buckets.reduce((s, b) => s + b.contracts * Math.abs(b.winRate - b.meanPrice), 0) / w;
}
