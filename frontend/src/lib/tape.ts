// The trades tape: newest first, one row per trade id however often a trade arrives (the REST page and the
// stream overlap while the page loads, and a resumed stream may resend), at most ``max`` rows.
import type { Trade } from "../client";

export const TAPE_MAX = 100;

function newerFirst(a: Trade, b: Trade): number {
  const d = Date.parse(b.ts) - Date.parse(a.ts);
  if (d !== 0) return d;
  return a.trade_id < b.trade_id ? 1 : a.trade_id > b.trade_id ? -1 : 0;
}

/** ``tape`` with ``incoming`` merged in: deduplicated by trade id (the later copy wins), newest first, bounded. */
export function mergeTrades(tape: Trade[], incoming: Trade[], max = TAPE_MAX): Trade[] {
  const byId = new Map<string, Trade>();
  for (const t of tape) byId.set(t.trade_id, t);
  for (const t of incoming) byId.set(t.trade_id, t);
  return [...byId.values()].sort(newerFirst).slice(0, max);
}
