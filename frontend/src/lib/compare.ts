// Comparing backtest runs: which ids the URL names, their equity curves overlaid on one time axis, and their metrics
// side by side with the best of each row marked.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const MAX_COMPARE = 8;

/** The run ids of ``?ids=a,b,c``: well-formed, each once, in the given order, at most MAX_COMPARE. */
export function parseIds(text: unknown): string[] {
  if (typeof text !== "string") return [];
  const out: string[] = [];
  for (const raw of text.split(",")) {
    const id = raw.trim().toLowerCase();
    if (UUID.test(id) && !out.includes(id)) out.push(id);
  }
  return out.slice(0, MAX_COMPARE);
}

export type Align = "time" | "elapsed";
export type OverlayPoint = { time: number; value: number };

/** One run's curve for the overlay, as P&L (equity − its first sample: runs of different capital compare), at
 * whole seconds strictly increasing (a repeated second keeps its last value). ``elapsed``: seconds since the run's
 * first sample (so runs over different windows start together); ``time``: Unix seconds (runs over the same window
 * line up). */
export function overlaySeries(ts: string[], equity: number[], align: Align): OverlayPoint[] {
  const out: OverlayPoint[] = [];
  let t0: number | null = null;
  let e0: number | null = null;
  for (let i = 0; i < ts.length && i < equity.length; i++) {
    const t = Math.floor(Date.parse(ts[i]!) / 1000);
    const v = equity[i]!;
    if (!Number.isFinite(t) || !Number.isFinite(v)) continue;
    if (t0 === null || e0 === null) {
      t0 = t;
      e0 = v;
    }
    const time = align === "elapsed" ? t - t0 : t;
    const value = v - e0;
    const last = out[out.length - 1];
    if (last && time <= last.time) {
      if (time === last.time) last.value = value;
      continue;
    }
    out.push({ time, value });
  }
  return out;
}

/** "+1d 2h", "+45m", "+30s": an elapsed time on the overlay's axis. */
export function elapsedLabel(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `+${d}d${h ? ` ${h}h` : ""}`;
  if (h) return `+${h}h${m ? ` ${m}m` : ""}`;
  if (m) return `+${m}m`;
  return `+${s % 60}s`;
}

export type Better = "higher" | "lower" | null;

/** Which column holds the best value of a row (null: none, a tie for every column, or no rule). */
export function bestIndex(values: (number | null)[], better: Better): number | null {
  if (!better) return null;
  let best: number | null = null;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    const b = best === null ? null : values[best]!;
    if (b === null || (better === "higher" ? v > b : v < b)) best = i;
  }
  if (best === null) return null;
  const present = values.filter((v) => v !== null && Number.isFinite(v));
  return present.length > 1 && present.every((v) => v === values[best!]) ? null : best;
}
