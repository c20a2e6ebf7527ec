import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { useMarketStream, type GapOpenedEvent } from "./stream";

/** A stand-in for the browser's EventSource: records its URL and lets the test dispatch named events. */
class FakeEventSource extends EventTarget {
  static CLOSED = 2;
  static last: FakeEventSource | null = null;
  readyState = 1;
  onerror: (() => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    super();
    FakeEventSource.last = this;
  }
  close() {
    this.closed = true;
  }
  emit(name: string, data: unknown) {
    this.dispatchEvent(new MessageEvent(name, { data: JSON.stringify(data) }));
  }
}

describe("useMarketStream", () => {
  beforeEach(() => vi.stubGlobal("EventSource", FakeEventSource));
  afterEach(() => vi.unstubAllGlobals());

  it("asks for the kinds it handles and hands each event to its handler", () => {
    const gapOpened = vi.fn();
    const trade = vi.fn();
    const { result, unmount } = renderHook(() =>
      useMarketStream(["KX-1"], { trade, gap_opened: gapOpened, gap_repaired: () => undefined }),
    );
    const source = FakeEventSource.last!;
    const params = new URL(source.url, "http://x").searchParams;
    expect(params.get("tickers")).toBe("KX-1");
    expect(params.get("kinds")).toBe("trade,gap_opened,gap_repaired");
    expect(result.current).toBe("connecting");
    act(() => source.emit("ready", {}));
    expect(result.current).toBe("live");
    const gap: GapOpenedEvent = {
      key: "k",
      ticker: null,
      channel: "all",
      cause: "disconnect",
      gap_start: "2026-11-21T12:00:00Z",
      detected_at: "2026-11-21T12:00:01Z",
      seq_expected: null,
      seq_received: null,
    };
    act(() => source.emit("gap_opened", gap));
    expect(gapOpened).toHaveBeenCalledWith(gap);
    act(() => source.emit("trade", { trade_id: "t1" }));
    expect(trade).toHaveBeenCalledWith({ trade_id: "t1" });
    unmount();
    expect(source.closed).toBe(true);
  });
});
