// Live snapshots from the stream laid over the listed rows: a row shows its newest quote, whichever way it came.
import type { MarketSummary, Snapshot } from "../client";

/** Decimal strings on the 0.0001 grid, subtracted exactly (in ten-thousandths), as "0.0125" / "-0.2000". */
function minus(a: string, b: string): string | null {
  const ta = Math.round(Number(a) * 10000);
  const tb = Math.round(Number(b) * 10000);
  if (!Number.isFinite(ta) || !Number.isFinite(tb)) return null;
  const d = ta - tb;
  const sign = d < 0 ? "-" : "";
  const abs = Math.abs(d);
  return `${sign}${Math.floor(abs / 10000)}.${String(abs % 10000).padStart(4, "0")}`;
}

function plus(a: string, b: string): string | null {
  const neg = b.startsWith("-") ? b.slice(1) : `-${b}`;
  return minus(a, neg);
}

/** ``row`` with ``snap``'s quote when ``snap`` is newer; the 24 h change moves by as much as the probability did. */
export function mergeLive(row: MarketSummary, snap: Snapshot | undefined): MarketSummary {
  if (!snap || snap.ticker !== row.ticker) return row;
  if (row.last_updated && Date.parse(snap.ts) < Date.parse(row.last_updated)) return row;
  let change = row.change_24h ?? null;
  if (change !== null) {
    const before = row.implied_probability;
    const after = snap.implied_probability;
    change = before !== null && after !== null ? plus(change, minus(after, before) ?? "0") : null;
  }
  return {
    ...row,
    yes_bid: snap.yes_bid,
    yes_ask: snap.yes_ask,
    yes_price: snap.yes_bid,
    no_price: snap.no_bid,
    last_price: snap.last_price,
    implied_probability: snap.implied_probability,
    implied_probability_source: snap.implied_probability_source,
    // volume and open interest stay as listed: the list is sorted by them (the next listing brings them anew)
    change_24h: change,
    last_updated: snap.ts,
  };
}
