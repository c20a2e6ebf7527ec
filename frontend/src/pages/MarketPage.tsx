import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams, useSearch } from "@tanstack/react-router";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  getMarket,
  getMarketHistory,
  getOrderBook,
  listBacktestExecutions,
  listMarketGaps,
  listTrades,
  type BacktestExecution,
  type Candle,
  type CandleHistory,
  type MarketGap,
  type OrderBook,
  type Snapshot,
  type SnapshotPage,
  type Trade,
} from "../client";
import { CandleChart } from "../components/CandleChart";
import { DepthChart } from "../components/DepthChart";
import { Ladders } from "../components/Ladders";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { TradesTape } from "../components/TradesTape";
import { isNotFound, unwrap } from "../lib/api";
import {
  applySnapshot,
  applyVolume,
  INTERVALS,
  seedVolume,
  toBars,
  toVolumes,
  type Bar,
  type Interval,
  type LiveVolume,
} from "../lib/candles";
import { count, pct, spread, usd } from "../lib/format";
import { applyGapEvent, shadedBuckets, shadedRanges, type Gap } from "../lib/gaps";
import { executionMarks, executionWindow } from "../lib/markers";
import { useMarketStream, type GapOpenedEvent, type GapRepairedEvent } from "../lib/stream";
import { mergeTrades, TAPE_MAX } from "../lib/tape";
import { markPainted } from "../lib/marks";
import { NotFound } from "./NotFound";

/** Pages fetched at most for one chart (10,000 candles each) or one list of gaps / executions. */
const MAX_PAGES = 10;
/** A window that holds no data: the history route's empty answer carries the market's recorded span. */
const EMPTY_WINDOW = { start: "2000-01-01T00:00:00Z", end: "2000-01-01T00:00:01Z" };

function Fact({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

type Window = { start: string; end?: string };

async function allCandles(ticker: string, interval: Interval, w: Window): Promise<Candle[]> {
  const out: Candle[] = [];
  let cursor: string | null | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = (await unwrap(
      getMarketHistory({ path: { ticker }, query: { interval, ...w, ...(cursor ? { cursor } : {}) } }),
    )) as CandleHistory;
    out.push(...page.candles);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

async function allGaps(ticker: string, w: Window): Promise<MarketGap[]> {
  const out: MarketGap[] = [];
  let cursor: string | null | undefined;
  for (let i = 0; i < MAX_PAGES; i++) {
    const page = await unwrap(listMarketGaps({ path: { ticker }, query: { ...w, limit: 1000, ...(cursor ? { cursor } : {}) } }));
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

async function allExecutions(id: string): Promise<BacktestExecution[]> {
  const out: BacktestExecution[] = [];
  let cursor: string | null | undefined;
  for (let i = 0; i < MAX_PAGES * 2; i++) {
    const page = await unwrap(
      listBacktestExecutions({ path: { backtest_id: id }, query: { limit: 1000, ...(cursor ? { cursor } : {}) } }),
    );
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

function IntervalPicker({ value, onChange }: { value: Interval; onChange: (i: Interval) => void }) {
  return (
    <div className="interval-tabs" role="group" aria-label="Candle interval">
      {INTERVALS.map((i) => (
        <button
          key={i.id}
          type="button"
          aria-pressed={value === i.id}
          className={value === i.id ? "active" : undefined}
          onClick={() => onChange(i.id)}
        >
          {i.label}
        </button>
      ))}
    </div>
  );
}

export function MarketPage() {
  const { ticker } = useParams({ from: "/markets/$ticker" });
  const { backtest } = useSearch({ from: "/markets/$ticker" });
  const queryClient = useQueryClient();
  const [interval, setInterval_] = useState<Interval>("1m");
  const spec = INTERVALS.find((i) => i.id === interval)!;
  const seconds = spec.seconds;

  const market = useQuery({
    queryKey: ["market", ticker],
    queryFn: () => unwrap(getMarket({ path: { ticker } })),
    retry: (n, e) => !isNotFound(e) && n < 2,
  });
  const found = market.isSuccess;

  // Opened from a backtest: its executions in this market, marked on the chart, which then shows their window.
  const executions = useQuery({
    queryKey: ["backtest-executions-all", backtest],
    queryFn: () => allExecutions(backtest!),
    enabled: found && !!backtest,
    staleTime: Infinity,
  });
  const execWindow = useMemo(
    () => (executions.data ? executionWindow(executions.data, ticker) : null),
    [executions.data, ticker],
  );
  // The executions' window, widened to at least the interval's usual span (ending where they end).
  const win: Window = useMemo(() => {
    if (!execWindow) return { start: spec.window };
    const end = Date.parse(execWindow.end);
    const start = Math.min(Date.parse(execWindow.start), end - spec.span * 1000);
    return { start: new Date(start).toISOString(), end: execWindow.end };
  }, [execWindow, spec]);
  const waitingForExecutions = !!backtest && executions.isPending;

  const history = useQuery({
    queryKey: ["history", ticker, interval, win.start, win.end ?? null],
    queryFn: () => allCandles(ticker, interval, win),
    enabled: found && !waitingForExecutions,
  });
  const gapsKey = ["gaps", ticker, win.start, win.end ?? null];
  const gaps = useQuery({
    queryKey: gapsKey,
    queryFn: () => allGaps(ticker, win),
    enabled: found && !waitingForExecutions,
  });
  const book = useQuery({
    queryKey: ["orderbook", ticker],
    queryFn: () => unwrap(getOrderBook({ path: { ticker }, query: { depth: 50 } })),
    enabled: found,
    retry: (n, e) => !isNotFound(e) && n < 2,
  });
  const trades = useQuery({
    queryKey: ["trades", ticker],
    queryFn: () => unwrap(listTrades({ path: { ticker }, query: { limit: TAPE_MAX } })),
    enabled: found,
  });
  const coverage = useQuery({
    queryKey: ["coverage", ticker],
    queryFn: () =>
      unwrap(getMarketHistory({ path: { ticker }, query: EMPTY_WINDOW, headers: { "Cache-Control": "no-cache" } })) as Promise<SnapshotPage>,
    enabled: found,
  });

  const candles = history.data;
  const bars = useMemo(() => toBars(candles ?? [], seconds), [candles, seconds]);
  const volumes = useMemo(() => toVolumes(candles ?? [], seconds), [candles, seconds]);

  // Live state belongs to one interval: switching drops it (the new history is set whole).
  const [live, setLive] = useState<{ interval: Interval; bar: Bar; vol: LiveVolume | null } | null>(null);
  const [liveCount, setLiveCount] = useState(0);
  const [latest, setLatest] = useState<Snapshot | null>(null);
  const [liveTrades, setLiveTrades] = useState<Trade[]>([]);
  const state = useRef({ interval, seconds, bar: undefined as Bar | undefined, vol: undefined as LiveVolume | undefined });
  const lastHistBar = bars[bars.length - 1];
  const ownLive = live && live.interval === interval ? live : null;
  const seeded = useMemo(() => seedVolume(candles ?? [], seconds), [candles, seconds]);
  state.current = {
    interval,
    seconds,
    bar: ownLive && (!lastHistBar || ownLive.bar.time >= lastHistBar.time) ? ownLive.bar : lastHistBar,
    vol: ownLive?.vol && (!seeded || ownLive.vol.time >= seeded.time) ? ownLive.vol : seeded,
  };

  const onSnapshot = useCallback((s: Snapshot) => {
    setLatest(s);
    const cur = state.current;
    const bar = applySnapshot(cur.bar, s, cur.seconds);
    if (!bar) return;
    const vol = applyVolume(cur.vol, s, cur.seconds) ?? cur.vol ?? null;
    cur.bar = bar;
    cur.vol = vol ?? undefined;
    setLive({ interval: cur.interval, bar, vol });
    setLiveCount((n) => n + 1);
  }, []);
  const onBook = useCallback((b: OrderBook) => queryClient.setQueryData(["orderbook", ticker], b), [queryClient, ticker]);
  const onTrade = useCallback((t: Trade) => setLiveTrades((prev) => mergeTrades(prev, [t])), []);
  const keyRef = useRef(gapsKey);
  keyRef.current = gapsKey;
  const onGapOpened = useCallback(
    (g: GapOpenedEvent) =>
      queryClient.setQueryData<Gap[]>(keyRef.current, (prev) => applyGapEvent(prev ?? [], { kind: "gap_opened", ...g })),
    [queryClient],
  );
  const onGapRepaired = useCallback(
    (g: GapRepairedEvent) => {
      const prev = queryClient.getQueryData<Gap[]>(keyRef.current) ?? [];
      const next = applyGapEvent(prev, { kind: "gap_repaired", ...g });
      if (next === prev) void queryClient.invalidateQueries({ queryKey: keyRef.current }); // a gap this page never saw open
      else queryClient.setQueryData(keyRef.current, next);
    },
    [queryClient],
  );
  const onReset = useCallback(() => {
    for (const key of ["history", "gaps", "trades", "orderbook"]) void queryClient.invalidateQueries({ queryKey: [key, ticker] });
  }, [queryClient, ticker]);
  const streamState = useMarketStream(
    [ticker],
    { snapshot: onSnapshot, orderbook: onBook, trade: onTrade, gap_opened: onGapOpened, gap_repaired: onGapRepaired, reset: onReset },
    found,
  );

  useEffect(() => {
    if (latest) markPainted("ka:tick", { ts: latest.ts });
  }, [latest]);

  // Open gaps run on to now: the shading grows with the clock.
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now() / 1000), 30_000);
    return () => window.clearInterval(id);
  }, []);
  const windowStart = win.end ? Date.parse(win.start) / 1000 : now - spec.span;
  const windowEnd = win.end ? Date.parse(win.end) / 1000 : now;
  const gapTimes = useMemo(
    () => shadedBuckets(shadedRanges(gaps.data ?? [], seconds, now), seconds, windowStart, Math.min(windowEnd, now)),
    [gaps.data, seconds, now, windowStart, windowEnd],
  );
  const marks = useMemo(
    () => (executions.data ? executionMarks(executions.data, ticker, bars.map((b) => b.time), seconds) : []),
    [executions.data, ticker, bars, seconds],
  );
  const tape = useMemo(() => mergeTrades(trades.data?.items ?? [], liveTrades), [trades.data, liveTrades]);
  const openGaps = (gaps.data ?? []).filter((g) => !g.gap_end).length;

  if (market.isPending) return <Loading what={ticker} />;
  if (market.isError) {
    if (isNotFound(market.error)) return <NotFound what={`market ${ticker}`} />;
    return <ErrorState error={market.error} what={`market ${ticker}`} retry={() => void market.refetch()} />;
  }
  const m = market.data;
  const yesBid = latest?.yes_bid ?? m.yes_bid;
  const yesAsk = latest?.yes_ask ?? m.yes_ask;
  const prob = latest ? latest.implied_probability : m.implied_probability;
  const recordedTo = [coverage.data?.data_end, latest?.ts]
    .filter((t): t is string => !!t)
    .sort((a, b) => Date.parse(a) - Date.parse(b))
    .pop();
  const chartLabel = `${spec.label} candles of implied probability with volume; feed gaps shaded`;
  const liveBar = ownLive?.bar ?? null;
  const liveVolume = ownLive?.vol ? { time: ownLive.vol.time, value: Math.max(0, ownLive.vol.cum - ownLive.vol.base), up: ownLive.bar.close >= ownLive.bar.open } : null;

  return (
    <section className="market-page">
      <p className="crumbs">
        <Link to="/">Markets</Link> / {m.event_ticker}
      </p>
      <div className="page-head">
        <div>
          <h1>{m.title ?? m.ticker}</h1>
          <div className="muted">
            {m.ticker} {m.subtitle ? `· ${m.subtitle}` : ""}
          </div>
        </div>
        <div className={`live-pill live-${streamState}`} data-testid="stream-state">
          {streamState === "live" ? "● live" : streamState === "connecting" ? "○ connecting" : "○ offline"}
        </div>
      </div>
      <div className="cards">
        <div className="card">
          <div className="card-label">Implied probability</div>
          <div className="card-value" data-testid="implied-probability">
            {pct(prob)}
          </div>
        </div>
        <div className="card">
          <div className="card-label">YES bid / ask</div>
          <div className="card-value">
            {pct(yesBid)} / {pct(yesAsk)}
          </div>
        </div>
        <div className="card">
          <div className="card-label">Spread</div>
          <div className="card-value">{spread(yesBid, yesAsk)}</div>
        </div>
        <div className="card">
          <div className="card-label">Volume</div>
          <div className="card-value">{count(latest?.volume ?? m.volume)}</div>
        </div>
      </div>
      <div className="market-grid">
        <div className="panel">
          <div className="panel-head">
            <h2>Price · {spec.label} candles</h2>
            <IntervalPicker value={interval} onChange={setInterval_} />
          </div>
          {backtest && (
            <div className="muted small backtest-note">
              {executions.isError ? (
                <ErrorState error={executions.error} what="the backtest's executions" retry={() => void executions.refetch()} />
              ) : executions.isPending ? (
                "Loading the backtest's executions…"
              ) : execWindow ? (
                <>
                  Entries (▲) and exits (▼) of backtest{" "}
                  <Link to="/backtests/$backtestId" params={{ backtestId: backtest }}>
                    {backtest.slice(0, 8)}
                  </Link>{" "}
                  in this market; the chart shows their window.
                </>
              ) : (
                <>
                  Backtest{" "}
                  <Link to="/backtests/$backtestId" params={{ backtestId: backtest }}>
                    {backtest.slice(0, 8)}
                  </Link>{" "}
                  did not trade this market.
                </>
              )}
            </div>
          )}
          {history.isPending || waitingForExecutions ? (
            <Loading what="candles" />
          ) : history.isError ? (
            <ErrorState error={history.error} what="candles" retry={() => void history.refetch()} />
          ) : (
            <>
              {bars.length === 0 && !liveBar && (
                <Empty>No {spec.label} candles in this window yet; live ticks appear here as they are recorded.</Empty>
              )}
              <CandleChart
                bars={bars}
                volumes={volumes}
                live={liveBar}
                liveVolume={liveVolume}
                liveCount={liveCount}
                gapTimes={gapTimes}
                marks={marks}
                seconds={seconds}
                label={chartLabel}
              />
              <div className="chart-legend muted small" data-testid="gap-legend">
                <span className="swatch swatch-gap" aria-hidden="true" /> feed gap
                {gaps.isError
                  ? " · gaps could not be loaded"
                  : gaps.data
                    ? ` · ${gaps.data.length === 0 ? "none" : gaps.data.length} in this window${openGaps ? `, ${openGaps} open` : ""}`
                    : ""}
                {marks.length > 0 && ` · ${marks.length} backtest marks`}
              </div>
            </>
          )}
        </div>
        <div className="panel">
          <h2>Order book</h2>
          {book.isPending ? (
            <Loading what="order book" />
          ) : book.isError ? (
            isNotFound(book.error) ? (
              <Empty>No order book recorded for this market yet.</Empty>
            ) : (
              <ErrorState error={book.error} what="the order book" retry={() => void book.refetch()} />
            )
          ) : (
            <>
              <Ladders book={book.data} />
              <h3 className="depth-title">YES depth</h3>
              <DepthChart book={book.data} />
              <div className="muted small">
                as of <Time iso={book.data.ts} />
              </div>
            </>
          )}
        </div>
      </div>
      <div className="market-grid">
        <div className="panel">
          <h2>Trades</h2>
          {trades.isPending ? (
            <Loading what="trades" />
          ) : trades.isError ? (
            <ErrorState error={trades.error} what="trades" retry={() => void trades.refetch()} />
          ) : tape.length === 0 ? (
            <Empty>No trade recorded in this market yet; new trades appear here live.</Empty>
          ) : (
            <TradesTape trades={tape} />
          )}
        </div>
        <div className="panel">
          <h2>Facts</h2>
          <dl className="facts facts-compact" data-testid="market-facts">
            <Fact label="Status">{m.status}</Fact>
            <Fact label="Result">{m.result ?? "—"}</Fact>
            <Fact label="Category">{m.category ?? "—"}</Fact>
            <Fact label="Series">{m.series_ticker ?? "—"}</Fact>
            <Fact label="Opens">
              <Time iso={m.open_time} />
            </Fact>
            <Fact label="Closes">
              <Time iso={m.close_time} />
            </Fact>
            <Fact label="Settlement">
              {m.settlement_value !== null ? (
                <>
                  {usd(m.settlement_value)} · <Time iso={m.settled_at} />
                </>
              ) : (
                "—"
              )}
            </Fact>
            <Fact label="Open interest">{count(latest?.open_interest ?? m.open_interest)}</Fact>
            <Fact label="Recorded from">
              {coverage.isError ? "—" : <Time iso={coverage.data?.data_start} />}
            </Fact>
            <Fact label="Recorded to">
              {coverage.isError ? "—" : <Time iso={recordedTo} />}
            </Fact>
            <Fact label="Last update">
              <Time iso={latest?.ts ?? m.last_updated} />
            </Fact>
          </dl>
          <h3 className="rules-title">Rules</h3>
          {m.rules_primary ? (
            <div className="rules" data-testid="market-rules">
              <p>{m.rules_primary}</p>
              {m.rules_secondary ? <p className="muted">{m.rules_secondary}</p> : null}
            </div>
          ) : (
            <p className="muted small">The exchange has not listed rules for this market.</p>
          )}
        </div>
      </div>
    </section>
  );
}
