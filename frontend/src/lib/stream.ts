// The API's Server-Sent Events stream for some tickers. EventSource reconnects by itself and resends
// Last-Event-ID, so the server resumes where it stopped; a `reset` event means "refetch over REST".
import { useEffect, useRef, useState } from "react";
import type { OrderBook, Snapshot } from "../client";
import { API_BASE } from "./api";

export type StreamHandlers = {
  snapshot?: (s: Snapshot) => void;
  orderbook?: (b: OrderBook) => void;
  reset?: () => void;
};

export type StreamState = "connecting" | "live" | "down";

export function useMarketStream(
  tickers: string[],
  handlers: StreamHandlers,
  enabled = true,
  kinds = "snapshot,orderbook",
): StreamState {
  const [state, setState] = useState<StreamState>("connecting");
  const ref = useRef(handlers);
  ref.current = handlers;
  const key = tickers.join(",");

  useEffect(() => {
    if (!enabled || !key) return;
    const params = new URLSearchParams({ tickers: key, kinds });
    const source = new EventSource(`${API_BASE}/api/v1/stream?${params.toString()}`);
    setState("connecting");
    const json = <T,>(e: Event): T => JSON.parse((e as MessageEvent<string>).data) as T;
    source.addEventListener("ready", () => setState("live"));
    source.addEventListener("snapshot", (e) => ref.current.snapshot?.(json<Snapshot>(e)));
    source.addEventListener("orderbook", (e) => ref.current.orderbook?.(json<OrderBook>(e)));
    source.addEventListener("reset", () => ref.current.reset?.());
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "down" : "connecting");
    return () => source.close();
  }, [key, enabled, kinds]);

  return state;
}
