import { describe, expect, it } from "vitest";
import type { PaperSessionLive, PaperSessionView } from "../client";
import { dec, maxDrawdownDec, str } from "./decimal";
import { applyEvent, cardsOf, fromSnapshot, MAX_FILLS, needsRefetch, type LiveState, type PaperEvent } from "./paperLive";

const SID = "11111111-2222-3333-4444-555555555555";

const session = {
  id: SID,
  name: "s",
  strategy: "buy_and_hold",
  strategy_version: "1",
  params: {},
  market_filter: {},
  tickers: ["A", "B"],
  config: {},
  status: "running",
  restart_policy: "resume",
  created_at: "2026-01-01T00:00:00Z",
  started_at: "2026-01-01T00:00:00Z",
  stopped_at: null,
  stop_reason: null,
  reset_of: null,
  initial_capital: "100.0000",
  cash: "97.7100",
  equity: "99.9100",
  total_pnl: "-0.0900",
  realised_pnl: "-0.0900",
  unrealised_pnl: "0.0000",
  fees_paid: "0.0900",
  num_fills: 1,
  skipped: {},
  processed_until: null,
  last_active_at: null,
  links: { self: "", fills: "", positions: "", equity: "", events: "", compare: "" },
} as PaperSessionView;

// As of stream id 10: one fill (5 YES of A at 0.44, fee 0.09), its position marked at its cost, one equity point.
const snapshot: PaperSessionLive = {
  as_of_event_id: 10,
  session,
  positions: [{ ticker: "A", side: "yes", contracts: "5", avg_price: "0.4400", mark: "0.4400", unrealized_pnl: "0", updated_at: "" }],
  fills: [
    {
      id: 7,
      ticker: "A",
      side: "yes",
      action: "buy",
      price: "0.4400",
      count: "5",
      fee: "0.0900",
      cash_after: "97.7100",
      ts: "2026-01-01T00:00:01Z",
      source: "poll",
      signal: null,
      committed_at: "2026-01-01T00:00:01Z",
    },
  ],
  equity: [{ ts: "2026-01-01T00:00:01Z", equity: "99.9100", cash: "97.7100" }],
  events: [{ id: 1, at: "2026-01-01T00:00:00Z", kind: "started", ticker: null, until: null, details: { tickers: 2 }, recorded_at: "" }],
};

const ev = (id: number, kind: string, data: Record<string, unknown>): PaperEvent => ({ id, kind, data: { session_id: SID, ...data } });

const FILL_B = ev(11, "paper_fill", {
  ticker: "B",
  side: "yes",
  action: "buy",
  price: "0.2500",
  count: "5",
  fee: "0.0700",
  cash_after: "96.3900",
  ts: "2026-01-01T00:00:02Z",
});
const POS_B = ev(12, "paper_position", { ticker: "B", side: "yes", contracts: "5", avg_price: "0.2500", mark: "0.1800" });
const POS_A = ev(13, "paper_position", { ticker: "A", side: "yes", contracts: "5", avg_price: "0.4400", mark: "0.5000" });
const EQUITY = ev(14, "paper_equity", { ts: "2026-01-01T00:00:03Z", equity: "99.7900", cash: "96.3900" });

const run = (s: LiveState, events: PaperEvent[]) => events.reduce(applyEvent, s);

describe("decimal", () => {
  it("adds and multiplies exactly and rounds half away from zero", () => {
    expect(str(dec("0.1")! + dec("0.2")!)).toBe("0.3000");
    expect(str(dec("-0.00005")!)).toBe("-0.0001");
    expect(str(dec("12")!, 2)).toBe("12.00");
    expect(dec("abc")).toBeNull();
    expect(str(maxDrawdownDec(["100", "101.5", "99.25", "102"].map((v) => dec(v)!)))).toBe("2.2500");
  });
});

describe("paper session state", () => {
  it("derives the cards from the snapshot as the API values a session", () => {
    const c = cardsOf(fromSnapshot(snapshot));
    expect(c).toMatchObject({ equity: "99.9100", totalPnl: "-0.0900", unrealisedPnl: "0.0000", realisedPnl: "-0.0900", openPositions: 1 });
  });

  it("applies a fill, positions and equity into one consistent instant, exactly", () => {
    const s = run(fromSnapshot(snapshot), [FILL_B, POS_B, POS_A, EQUITY]);
    expect(s.asOf).toBe(14);
    expect(s.fills.map((f) => f.ticker)).toEqual(["A", "B"]);
    expect(s.numFills).toBe(2);
    expect(s.feesPaid).toBe("0.1600");
    expect(s.positions.map((p) => p.ticker)).toEqual(["A", "B"]);
    expect(s.equity).toHaveLength(2);
    // The API's own figures for this session (tests/live/test_endpoints.py): equity 99.79, total −0.21.
    const c = cardsOf(s);
    expect(c.cash).toBe("96.3900");
    expect(c.equity).toBe("99.7900");
    expect(c.totalPnl).toBe("-0.2100");
    expect(c.unrealisedPnl).toBe("-0.0500"); // +0.30 on A, −0.35 on B
    expect(c.realisedPnl).toBe("-0.1600"); // the fees
    expect(c.exposure).toBe("3.4500");
    expect(c.maxDrawdown).toBe("0.2100");
  });

  it("ignores what it already holds and other sessions' events", () => {
    const s = run(fromSnapshot(snapshot), [FILL_B]);
    expect(run(s, [FILL_B])).toBe(s); // the same id again (a resumed stream's overlap)
    expect(applyEvent(s, { ...POS_B, id: 9 })).toBe(s); // older than the snapshot
    expect(applyEvent(s, { ...POS_B, data: { ...POS_B.data, session_id: "other" } })).toBe(s);
    expect(applyEvent(s, ev(20, "snapshot", {}))).toBe(s);
  });

  it("drops a position that closes, replaces an equity point of the same time, and ends on stop", () => {
    let s = run(fromSnapshot(snapshot), [ev(11, "paper_position", { ticker: "A", side: "yes", contracts: "0", avg_price: null, mark: "0.5" })]);
    expect(s.positions).toEqual([]);
    s = applyEvent(s, ev(12, "paper_equity", { ts: "2026-01-01T00:00:01Z", equity: "100.5000", cash: "100.5000" }));
    expect(s.equity).toEqual([{ ts: "2026-01-01T00:00:01Z", equity: "100.5000", cash: "100.5000" }]);
    s = applyEvent(s, ev(13, "paper_session", { kind: "stopped", at: "2026-01-01T00:05:00Z", ticker: null, reason: "stopped by request" }));
    expect(s.session.status).toBe("stopped");
    expect(s.session.stop_reason).toBe("stopped by request");
    expect(s.events.at(-1)).toMatchObject({ kind: "stopped", details: { reason: "stopped by request" } });
    expect(needsRefetch(ev(14, "paper_session", { kind: "settled" }))).toBe(true);
    expect(needsRefetch(POS_A)).toBe(false);
  });

  it("keeps the newest fills only", () => {
    let s = fromSnapshot(snapshot);
    for (let i = 0; i < MAX_FILLS + 5; i++) s = applyEvent(s, { ...FILL_B, id: 100 + i, data: { ...FILL_B.data, cash_after: String(i) } });
    expect(s.fills).toHaveLength(MAX_FILLS);
    expect(s.fills.at(-1)!.cash_after).toBe(String(MAX_FILLS + 4));
    expect(s.numFills).toBe(MAX_FILLS + 6);
  });
});
