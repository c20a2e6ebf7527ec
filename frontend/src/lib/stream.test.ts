import { act, renderHook } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { useKindStream, type StreamEvent } from "./stream";

/** A stand-in for the browser's EventSource: records its URL and listeners; the test dispatches frames. */
class FakeSource {
  static CLOSED = 2;
  static made: FakeSource[] = [];
  readonly url: string;
  readyState = 0;
  closed = false;
  onerror: (() => void) | null = null;
  private listeners = new Map<string, ((e: Event) => void)[]>();
  constructor(url: string) {
    this.url = url;
    FakeSource.made.push(this);
  }
  addEventListener(kind: string, fn: (e: Event) => void) {
    this.listeners.set(kind, [...(this.listeners.get(kind) ?? []), fn]);
  }
  close() {
    this.closed = true;
    this.readyState = FakeSource.CLOSED;
  }
  emit(kind: string, data: unknown, id = "") {
    const e = new MessageEvent(kind, { data: JSON.stringify(data), lastEventId: id });
    for (const fn of this.listeners.get(kind) ?? []) fn(e);
  }
}

beforeEach(() => {
  FakeSource.made = [];
  vi.stubGlobal("EventSource", FakeSource);
});
afterEach(() => vi.unstubAllGlobals());

const KINDS = ["paper_fill", "paper_session"];

describe("useKindStream", () => {
  it("resumes right after the state's id and hands over each event with its id", () => {
    const got: StreamEvent[] = [];
    const reset = vi.fn();
    const { result } = renderHook(() => useKindStream(KINDS, 41, { event: (e) => got.push(e), reset }));
    const source = FakeSource.made[0]!;
    const url = new URL(source.url, "http://x");
    expect(url.pathname).toBe("/api/v1/stream");
    expect(url.searchParams.get("kinds")).toBe("paper_fill,paper_session");
    expect(url.searchParams.get("last_event_id")).toBe("41");
    expect(url.searchParams.get("tickers")).toBeNull();
    expect(result.current).toBe("connecting");
    act(() => source.emit("ready", { last_event_id: 41, resumed: true }, "41"));
    expect(result.current).toBe("live");
    act(() => source.emit("paper_fill", { session_id: "s", ticker: "A" }, "42"));
    act(() => source.emit("paper_session", { session_id: "s", kind: "stopped" }, "43"));
    expect(got).toEqual([
      { id: 42, kind: "paper_fill", data: { session_id: "s", ticker: "A" } },
      { id: 43, kind: "paper_session", data: { session_id: "s", kind: "stopped" } },
    ]);
    expect(reset).not.toHaveBeenCalled();
  });

  it("on reset closes the source and asks for a refetch; a new state's id opens a new source from it", () => {
    const reset = vi.fn();
    const { rerender, unmount } = renderHook(({ after }) => useKindStream(KINDS, after, { event: vi.fn(), reset }), {
      initialProps: { after: 10 },
    });
    act(() => FakeSource.made[0]!.emit("reset", { reason: "too old", last_event_id: "10" }));
    expect(reset).toHaveBeenCalledTimes(1);
    expect(FakeSource.made[0]!.closed).toBe(true);
    rerender({ after: 500 });
    expect(FakeSource.made).toHaveLength(2);
    expect(new URL(FakeSource.made[1]!.url, "http://x").searchParams.get("last_event_id")).toBe("500");
    unmount();
    expect(FakeSource.made[1]!.closed).toBe(true);
  });

  it("waits for a state before opening", () => {
    renderHook(() => useKindStream(KINDS, null, { event: vi.fn(), reset: vi.fn() }));
    expect(FakeSource.made).toHaveLength(0);
  });
});
