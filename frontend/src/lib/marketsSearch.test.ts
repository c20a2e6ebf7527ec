import { describe, expect, it } from "vitest";
import { mergeLive } from "./liveRows";
import { DEFAULT_VIEW, listQuery, nextSort, parseMarketsSearch, toSearch, viewOf } from "./marketsSearch";
import type { MarketSummary, Snapshot } from "../client";

describe("the markets view in the URL", () => {
  it("keeps only what differs from the default view, and reads it back whole", () => {
    expect(toSearch(DEFAULT_VIEW)).toEqual({});
    const view = { ...DEFAULT_VIEW, q: "rain", category: "Weather", sort: "change_24h" as const, order: "asc" as const };
    const search = toSearch(view);
    expect(search).toEqual({ q: "rain", category: "Weather", sort: "change_24h", order: "asc" });
    expect(viewOf(parseMarketsSearch(search))).toEqual(view);
  });

  it("drops what it does not know, so a mangled link still opens a sane view", () => {
    expect(parseMarketsSearch({ sort: "bogus", order: "sideways", status: "maybe", q: "  x  ", extra: 1 })).toEqual({ q: "x" });
    expect(parseMarketsSearch({ status: "any", series: "KXHIGHNY" })).toEqual({ status: "any", series: "KXHIGHNY" });
    expect(parseMarketsSearch({ q: 42 })).toEqual({ q: "42" }); // the router parses ?q=42 as a number
    expect(parseMarketsSearch({ q: "a".repeat(500) }).q).toHaveLength(200); // the API's limit
  });

  it("asks the API for the view: every filter, the sort, a page from a cursor", () => {
    const view = viewOf({ q: "rain", status: "any", series: "KXRAIN", sort: "implied_probability", order: "asc" });
    expect(listQuery(view, 200, "abc")).toEqual({
      q: "rain",
      status: null, // any status: no filter
      category: null,
      series: "KXRAIN",
      sort: "implied_probability",
      order: "asc",
      limit: 200,
      cursor: "abc",
    });
    expect(listQuery(DEFAULT_VIEW, 50, null)).toMatchObject({ q: null, status: "open", sort: "volume", order: "desc" });
  });

  it("flips the order of the sorted column, and starts another column in its natural order", () => {
    const byVolume = viewOf({});
    expect(nextSort(byVolume, "volume")).toEqual({ sort: "volume", order: "asc" });
    expect(nextSort(viewOf({ order: "asc" }), "volume")).toEqual({ sort: "volume", order: "desc" });
    expect(nextSort(byVolume, "close_time")).toEqual({ sort: "close_time", order: "asc" }); // soonest first
    expect(nextSort(byVolume, "change_24h")).toEqual({ sort: "change_24h", order: "desc" }); // biggest rise first
  });
});

describe("live quotes over listed rows", () => {
  const row: MarketSummary = {
    ticker: "KX-1",
    title: "t",
    event_ticker: "EV",
    series_ticker: "KX",
    category: null,
    status: "active",
    close_time: null,
    volume: "10",
    open_interest: "5",
    yes_price: "0.4000",
    no_price: "0.5800",
    yes_bid: "0.4000",
    yes_ask: "0.4200",
    last_price: "0.4100",
    implied_probability: "0.4100",
    implied_probability_source: "mid",
    change_24h: "0.0500",
    last_updated: "2026-11-28T12:00:00Z",
  };
  const snap = (ts: string, bid: string, ask: string, prob: string | null): Snapshot => ({
    ticker: "KX-1",
    ts,
    received_at: ts,
    source: "websocket",
    sequence: 1,
    yes_bid: bid,
    yes_ask: ask,
    no_bid: "0.5000",
    no_ask: null,
    last_price: "0.4100",
    yes_bid_size: null,
    yes_ask_size: null,
    volume: "12",
    open_interest: null,
    status: "active",
    implied_probability: prob,
    implied_probability_source: prob === null ? null : "mid",
  });

  it("takes a newer snapshot's quote and moves the 24 h change by as much as the probability", () => {
    const merged = mergeLive(row, snap("2026-11-28T12:00:05Z", "0.4900", "0.5100", "0.5000"));
    expect(merged).toMatchObject({ yes_bid: "0.4900", yes_ask: "0.5100", implied_probability: "0.5000", last_updated: "2026-11-28T12:00:05Z" });
    expect(merged.change_24h).toBe("0.1400"); // 0.05 + (0.50 − 0.41)
    expect([merged.volume, merged.open_interest]).toEqual(["10", "5"]); // as listed: the list is sorted by volume
    expect(mergeLive({ ...row, change_24h: "-0.0100" }, snap("2026-11-28T12:00:05Z", "0.3", "0.3", "0.3000")).change_24h).toBe("-0.1200");
  });

  it("ignores an older snapshot and forgets the change when the price becomes unknown", () => {
    expect(mergeLive(row, snap("2026-11-28T11:59:00Z", "0.1", "0.2", "0.1500"))).toBe(row);
    expect(mergeLive(row, snap("2026-11-28T12:01:00Z", "0.1", "0.9", null)).change_24h).toBeNull();
    expect(mergeLive(row, undefined)).toBe(row);
  });
});
