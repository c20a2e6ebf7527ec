// A backtest's entries and exits on the market's candle chart: one marker per fill, on the bar of the bucket it
// happened in (a marker must sit on a bar the series has: one outside the drawn window is left out).
import type { BacktestExecution } from "../client";

export type TradeMark = { time: number; kind: "entry" | "exit"; side: "yes" | "no"; price: number; text: string };

/** The start of the latest bar at or before ``t`` (``times`` ascending), or null when ``t`` is outside them
 * (before the first, or more than one bucket after the last). */
export function barAt(times: number[], t: number, seconds: number): number | null {
  let lo = 0, hi = times.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found < 0) return null;
  const time = times[found]!;
  return t - time < seconds ? time : null;
}

const c = (p: number) => `${Math.round(p * 1000) / 10}¢`;

/** Entries and exits of ``ticker``'s executions as marks on bars ``times``, oldest first. */
export function executionMarks(execs: BacktestExecution[], ticker: string, times: number[], seconds: number): TradeMark[] {
  const out: TradeMark[] = [];
  for (const e of execs) {
    if (e.ticker !== ticker) continue;
    const entry = barAt(times, Date.parse(e.entry_ts) / 1000, seconds);
    const entryPrice = Number(e.entry_price);
    if (entry !== null)
      out.push({ time: entry, kind: "entry", side: e.side, price: entryPrice, text: `Buy ${e.side.toUpperCase()} ${c(entryPrice)}` });
    if (e.exit_ts && e.exit_price !== null) {
      const exit = barAt(times, Date.parse(e.exit_ts) / 1000, seconds);
      const exitPrice = Number(e.exit_price);
      if (exit !== null)
        out.push({ time: exit, kind: "exit", side: e.side, price: exitPrice, text: `Exit ${e.side.toUpperCase()} ${c(exitPrice)}` });
    }
  }
  return out.sort((a, b) => a.time - b.time);
}

/** The window to chart for executions: from an hour before the first entry to an hour after the last fill. */
export function executionWindow(execs: BacktestExecution[], ticker: string): { start: string; end: string } | null {
  const times: number[] = [];
  for (const e of execs) {
    if (e.ticker !== ticker) continue;
    times.push(Date.parse(e.entry_ts));
    if (e.exit_ts) times.push(Date.parse(e.exit_ts));
  }
  const ok = times.filter(Number.isFinite);
  if (!ok.length) return null;
  const hour = 3600_000;
  return { start: new Date(Math.min(...ok) - hour).toISOString(), end: new Date(Math.max(...ok) + hour).toISOString() };
}
