// A paper session page's state: one snapshot from `getPaperSessionLive` (as of a stream id), then the stream's
// paper_* events after that id applied in order. Cards, positions, fills, equity and events are all derived from
// this one value, so they always show the same instant; money sums are exact (lib/decimal).
import type { EquityPoint, PaperSessionLive, PaperSessionView, PositionView, SessionEventView } from "../client";
import { dec, maxDrawdownDec, mul, str, sum, ZERO, type Dec } from "./decimal";

export type FillRow = {
  key: string;
  ticker: string;
  side: "yes" | "no";
  action: "buy" | "sell";
  price: string;
  count: string;
  fee: string;
  cash_after: string;
  ts: string;
};

export type EventRow = {
  key: string;
  at: string;
  kind: string;
  ticker: string | null;
  until: string | null;
  details: Record<string, unknown>;
};

export type PositionRow = Pick<PositionView, "ticker" | "side" | "contracts" | "avg_price" | "mark">;

export type LiveState = {
  /** The stream id this state includes everything up to. */
  asOf: number;
  session: PaperSessionView;
  cash: string;
  feesPaid: string;
  numFills: number;
  positions: PositionRow[];
  /** Newest last, at most MAX_FILLS. */
  fills: FillRow[];
  equity: EquityPoint[];
  /** Oldest first. */
  events: EventRow[];
};

/** A stream event: its id, its `event:` name and its parsed `data:`. */
export type PaperEvent = { id: number; kind: string; data: Record<string, unknown> };

export const MAX_FILLS = 500;
export const PAPER_KINDS = ["paper_fill", "paper_position", "paper_equity", "paper_session"] as const;

const text = (v: unknown): string => (typeof v === "string" ? v : v === null || v === undefined ? "" : String(v));
const textOrNull = (v: unknown): string | null => (typeof v === "string" ? v : null);

export function fromSnapshot(s: PaperSessionLive): LiveState {
  return {
    asOf: s.as_of_event_id,
    session: s.session,
    cash: s.session.cash,
    feesPaid: s.session.fees_paid,
    numFills: s.session.num_fills,
    positions: s.positions.map(({ ticker, side, contracts, avg_price, mark }) => ({ ticker, side, contracts, avg_price, mark })),
    fills: s.fills.map((f) => ({
      key: `f${f.id}`,
      ticker: f.ticker,
      side: f.side,
      action: f.action,
      price: f.price,
      count: f.count,
      fee: f.fee,
      cash_after: f.cash_after,
      ts: f.ts,
    })),
    equity: s.equity,
    events: s.events.map((e: SessionEventView) => ({
      key: `e${e.id}`,
      at: e.at,
      kind: e.kind,
      ticker: e.ticker,
      until: e.until,
      details: e.details,
    })),
  };
}

/** Whether an event belongs to this session and comes after what the state holds. */
export function concerns(state: LiveState, ev: PaperEvent): boolean {
  return ev.id > state.asOf && ev.data.session_id === state.session.id;
}

/** What applying ``ev`` cannot reproduce exactly (a settlement pays cash no event carries): refetch instead. */
export function needsRefetch(ev: PaperEvent): boolean {
  return ev.kind === "paper_session" && ev.data.kind === "settled";
}

/** The state after one stream event (the same state for an event of another session or one already applied). */
export function applyEvent(state: LiveState, ev: PaperEvent): LiveState {
  if (!concerns(state, ev)) return state;
  const d = ev.data;
  const next: LiveState = { ...state, asOf: ev.id };
  switch (ev.kind) {
    case "paper_fill": {
      const fill: FillRow = {
        key: `s${ev.id}`,
        ticker: text(d.ticker),
        side: d.side === "no" ? "no" : "yes",
        action: d.action === "sell" ? "sell" : "buy",
        price: text(d.price),
        count: text(d.count),
        fee: text(d.fee),
        cash_after: text(d.cash_after),
        ts: text(d.ts),
      };
      next.fills = [...state.fills, fill].slice(-MAX_FILLS);
      next.cash = fill.cash_after;
      next.feesPaid = str((dec(state.feesPaid) ?? ZERO) + (dec(fill.fee) ?? ZERO));
      next.numFills = state.numFills + 1;
      return next;
    }
    case "paper_position": {
      const row: PositionRow = {
        ticker: text(d.ticker),
        side: d.side === "no" ? "no" : "yes",
        contracts: text(d.contracts),
        avg_price: textOrNull(d.avg_price),
        mark: textOrNull(d.mark),
      };
      const others = state.positions.filter((p) => !(p.ticker === row.ticker && p.side === row.side));
      const open = (dec(row.contracts) ?? ZERO) > ZERO;
      next.positions = (open ? [...others, row] : others).sort((a, b) =>
        a.ticker === b.ticker ? a.side.localeCompare(b.side) : a.ticker < b.ticker ? -1 : 1,
      );
      return next;
    }
    case "paper_equity": {
      const point: EquityPoint = { ts: text(d.ts), equity: text(d.equity), cash: text(d.cash) };
      const t = Date.parse(point.ts);
      const kept = state.equity.filter((p) => Date.parse(p.ts) < t);
      next.equity = kept.length === state.equity.length ? [...state.equity, point] : [...kept, point];
      next.cash = point.cash;
      return next;
    }
    case "paper_session": {
      const { session_id: _sid, kind, at, ticker, until, ...details } = d;
      const row: EventRow = {
        key: `s${ev.id}`,
        at: text(at),
        kind: text(kind),
        ticker: textOrNull(ticker),
        until: textOrNull(until),
        details,
      };
      next.events = [...state.events, row];
      if (row.kind === "stopped" || row.kind === "failed") {
        next.session = {
          ...state.session,
          status: row.kind,
          stopped_at: row.at,
          stop_reason: text(details.reason ?? details.error) || null,
        };
      }
      return next;
    }
    default:
      return state;
  }
}

export type Cards = {
  cash: string;
  equity: string;
  totalPnl: string;
  realisedPnl: string;
  unrealisedPnl: string;
  openPositions: number;
  exposure: string;
  maxDrawdown: string;
  feesPaid: string;
};

/** A position's unrealised P&L: contracts × (mark − average price), or null without both. */
export function unrealised(p: PositionRow): Dec | null {
  const c = dec(p.contracts);
  const m = dec(p.mark);
  const a = dec(p.avg_price);
  return c === null || m === null || a === null ? null : mul(c, m - a);
}

/** The cards of one instant: equity = cash + positions at their marks (at cost without a mark), as the API values
 * a session; unrealised from the positions shown; realised = total − unrealised. */
export function cardsOf(state: LiveState): Cards {
  const cash = dec(state.cash) ?? ZERO;
  const value = sum(state.positions.map((p) => mul(dec(p.contracts) ?? ZERO, dec(p.mark) ?? dec(p.avg_price) ?? ZERO)));
  const equity = cash + value;
  const initial = dec(state.session.initial_capital) ?? ZERO;
  const total = equity - initial;
  const unreal = sum(state.positions.map((p) => unrealised(p) ?? ZERO));
  const series = [initial, ...state.equity.map((p) => dec(p.equity) ?? ZERO), equity];
  return {
    cash: str(cash),
    equity: str(equity),
    totalPnl: str(total),
    realisedPnl: str(total - unreal),
    unrealisedPnl: str(unreal),
    openPositions: state.positions.length,
    exposure: str(sum(state.positions.map((p) => mul(dec(p.contracts) ?? ZERO, dec(p.avg_price) ?? ZERO)))),
    maxDrawdown: str(maxDrawdownDec(series)),
    feesPaid: state.feesPaid,
  };
}
