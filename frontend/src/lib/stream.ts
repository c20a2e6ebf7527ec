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

/** One event of the paper kinds: its id (the journal's), its name and its data. */
export type StreamEvent = { id: number; kind: string; data: Record<string, unknown> };

/** The stream of events about no market (`paper_*`, `backtest_finished`), for every session/run — the caller
 * filters. With ``after`` (a state's ``as_of_event_id``) it resumes right after that state, so each later change
 * arrives once; EventSource then resumes by itself with Last-Event-ID. On ``reset`` (too old to resume) the
 * source is closed: the caller refetches its state and opens a new one from it (a new ``after``). */
export function useKindStream(
  kinds: readonly string[],
  after: number | null,
  handlers: { event: (e: StreamEvent) => void; reset: () => void },
  enabled = true,
  epoch = 0,
): StreamState {
  const [state, setState] = useState<StreamState>("connecting");
  const ref = useRef(handlers);
  ref.current = handlers;
  const key = kinds.join(",");

  useEffect(() => {
    if (!enabled || after === null) return;
    const params = new URLSearchParams({ kinds: key, last_event_id: String(after) });
    const source = new EventSource(`${API_BASE}/api/v1/stream?${params.toString()}`);
    setState("connecting");
    const onData = (e: Event) => {
      const m = e as MessageEvent<string>;
      const id = Number(m.lastEventId);
      if (!Number.isFinite(id)) return;
      let data: unknown;
      try {
        data = JSON.parse(m.data);
      } catch {
        return;
      }
      if (data && typeof data === "object") ref.current.event({ id, kind: m.type, data: data as Record<string, unknown> });
    };
    for (const k of key.split(",")) source.addEventListener(k, onData);
    source.addEventListener("ready", () => setState("live"));
    source.addEventListener("reset", () => {
      source.close();
      setState("connecting");
      ref.current.reset();
    });
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "down" : "connecting");
    return () => source.close();
  }, [key, after, enabled, epoch]);

  return state;
}
