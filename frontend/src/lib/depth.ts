// The YES depth chart of a bids-only book: YES bids as they are, YES asks as 1 − each NO bid (at its size).
// Each side's curve is the cumulative size from the best price outwards.
import type { OrderBook } from "../client";
import { ladder } from "./ladder";

export type DepthPoint = { price: number; cum: number };

export type Depth = { bids: DepthPoint[]; asks: DepthPoint[]; bestBid: number | null; bestAsk: number | null; max: number };

/** Cumulative depth: bids from the best (highest) down, asks from the best (lowest) up. */
export function depthCurve(book: Pick<OrderBook, "yes" | "no">): Depth {
  const { bids, asks } = ladder(book.yes, book.no);
  const cumulate = (rungs: { price: number; size: number }[]): DepthPoint[] => {
    let cum = 0;
    return rungs.map((r) => ({ price: r.price, cum: (cum += r.size) }));
  };
  const b = cumulate(bids);
  const a = cumulate(asks);
  return {
    bids: b,
    asks: a,
    bestBid: b[0]?.price ?? null,
    bestAsk: a[0]?.price ?? null,
    max: Math.max(0, b[b.length - 1]?.cum ?? 0, a[a.length - 1]?.cum ?? 0),
  };
}

/** The price range to draw: the book's prices with a margin, within [0, 1]. */
export function depthRange(d: Depth): [number, number] {
  const prices = [...d.bids, ...d.asks].map((p) => p.price);
  if (!prices.length) return [0, 1];
  const lo = Math.min(...prices), hi = Math.max(...prices);
  const pad = Math.max(0.02, (hi - lo) * 0.08);
  return [Math.max(0, lo - pad), Math.min(1, hi + pad)];
}
