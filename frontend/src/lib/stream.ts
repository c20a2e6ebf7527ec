// The API's Server-Sent Events stream for some tickers. EventSource reconnects by itself and resends
// Last-Event-ID, so the server resumes where it stopped; a `reset` event means "refetch over REST".
// The stream sends only the kinds the caller handles (`kinds`), so a page without a tape gets no trades.
import { useEffect, useRef, useState } from "react";
import type { OrderBook, Snapshot, Trade } from "../client";
import { API_BASE } from "./api";

/** ``gap_opened``: the feed may have lost data (``ticker`` null: a whole subscription). */
export type GapOpenedEvent = {
  key: string;
  ticker: string | null;
  channel: string;
  cause: string;
  gap_start: string;
  detected_at: string;
  seq_expected: number | null;
  seq_received: number | null;
};

/** ``gap_repaired``: a gap closed, repaired or given up with a reason. */
export type GapRepairedEvent = {
  key: string;
  ticker: string | null;
  gap_end: string;
  repaired_at: string | null;
  repair_method: string;
  unrepairable_reason: string | null;
};

export type StreamHandlers = {
  snapshot?: (s: Snapshot) => void;
  orderbook?: (b: OrderBook) => void;
  trade?: (t: Trade) => void;
  gap_opened?: (g: GapOpenedEvent) => void;
  gap_repaired?: (g: GapRepairedEvent) => void;
  reset?: () => void;
};

export type StreamState = "connecting" | "live" | "down";

const KINDS = ["snapshot", "orderbook", "trade", "gap_opened", "gap_repaired"] as const;

export function useMarketStream(tickers: string[], handlers: StreamHandlers, enabled = true): StreamState {
  const [state, setState] = useState<StreamState>("connecting");
  const ref = useRef(handlers);
  ref.current = handlers;
  const key = tickers.join(",");
  const kinds = KINDS.filter((k) => handlers[k]).join(",");

  useEffect(() => {
    if (!enabled || !key || !kinds) return;
    const params = new URLSearchParams({ tickers: key, kinds });
    const source = new EventSource(`${API_BASE}/api/v1/stream?${params.toString()}`);
    setState("connecting");
    const json = <T,>(e: Event): T => JSON.parse((e as MessageEvent<string>).data) as T;
    source.addEventListener("ready", () => setState("live"));
    source.addEventListener("snapshot", (e) => ref.current.snapshot?.(json<Snapshot>(e)));
    source.addEventListener("orderbook", (e) => ref.current.orderbook?.(json<OrderBook>(e)));
    source.addEventListener("trade", (e) => ref.current.trade?.(json<Trade>(e)));
    source.addEventListener("gap_opened", (e) => ref.current.gap_opened?.(json<GapOpenedEvent>(e)));
    source.addEventListener("gap_repaired", (e) => ref.current.gap_repaired?.(json<GapRepairedEvent>(e)));
    source.addEventListener("reset", () => ref.current.reset?.());
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "down" : "connecting");
    return () => source.close();
  }, [key, kinds, enabled]);

  return state;
}
