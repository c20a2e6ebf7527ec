// The order book as YES/NO ladders. Kalshi books hold bids only: a YES ask is 1 − a NO bid (and a NO ask is
// 1 − a YES bid), at that bid's size.
import type { BookLevel, OrderBook } from "../client";

export type Rung = { price: number; size: number };

export type Ladder = { bids: Rung[]; asks: Rung[] };

function rungs(levels: BookLevel[]): Rung[] {
  return levels
    .map((l) => ({ price: Number(l.price), size: Number(l.size) }))
    .filter((r) => Number.isFinite(r.price) && Number.isFinite(r.size) && r.size > 0);
}

/** Round to the book's 0.0001 grid so 1 − 0.57 is 0.43, not 0.43000000000000005. */
function complement(price: number): number {
  return Math.round((1 - price) * 10000) / 10000;
}

/** One side's ladder: its bids best (highest) first, its asks (the other side's bids, complemented) best (lowest)
 * first. */
export function ladder(own: BookLevel[], other: BookLevel[]): Ladder {
  const bids = rungs(own).sort((a, b) => b.price - a.price);
  const asks = rungs(other)
    .map((r) => ({ price: complement(r.price), size: r.size }))
    .sort((a, b) => a.price - b.price);
  return { bids, asks };
}

export function ladders(book: Pick<OrderBook, "yes" | "no">): { yes: Ladder; no: Ladder } {
  return { yes: ladder(book.yes, book.no), no: ladder(book.no, book.yes) };
}
