import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import { useCallback, useMemo, useRef, useState } from "react";
import { getMarket, getMarketHistory, getOrderBook, type CandleHistory, type OrderBook, type Snapshot } from "../client";
import { CandleChart } from "../components/CandleChart";
import { Ladders } from "../components/Ladders";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { isNotFound, unwrap } from "../lib/api";
import { applySnapshot, toBars, type Bar } from "../lib/candles";
import { count, pct, spread } from "../lib/format";
import { useMarketStream } from "../lib/stream";
import { NotFound } from "./NotFound";

function Fact({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

export function MarketPage() {
  const { ticker } = useParams({ from: "/markets/$ticker" });
  const queryClient = useQueryClient();
  const market = useQuery({
    queryKey: ["market", ticker],
    queryFn: () => unwrap(getMarket({ path: { ticker } })),
    retry: (n, e) => !isNotFound(e) && n < 2,
  });
  const found = market.isSuccess;
  const history = useQuery({
    queryKey: ["history", ticker, "1m"],
    queryFn: () => unwrap(getMarketHistory({ path: { ticker }, query: { interval: "1m" } })) as Promise<CandleHistory>,
    enabled: found,
  });
  const book = useQuery({
    queryKey: ["orderbook", ticker],
    queryFn: () => unwrap(getOrderBook({ path: { ticker }, query: { depth: 10 } })),
    enabled: found,
    retry: (n, e) => !isNotFound(e) && n < 2,
  });

  const bars = useMemo(() => toBars(history.data?.candles ?? []), [history.data]);
  const [live, setLive] = useState<Bar | null>(null);
  const [liveCount, setLiveCount] = useState(0);
  const [latest, setLatest] = useState<Snapshot | null>(null);
  const lastBar = useRef<Bar | undefined>(undefined);
  lastBar.current = live && (!bars.length || live.time >= bars[bars.length - 1]!.time) ? live : bars[bars.length - 1];

  const onSnapshot = useCallback((s: Snapshot) => {
    setLatest(s);
    const next = applySnapshot(lastBar.current, s);
    if (next) {
      lastBar.current = next;
      setLive(next);
      setLiveCount((n) => n + 1);
    }
  }, []);
  const onBook = useCallback(
    (b: OrderBook) => queryClient.setQueryData(["orderbook", ticker], b),
    [queryClient, ticker],
  );
  const onReset = useCallback(() => void queryClient.invalidateQueries({ queryKey: ["history", ticker] }), [queryClient, ticker]);
  const streamState = useMarketStream([ticker], { snapshot: onSnapshot, orderbook: onBook, reset: onReset }, found);

  if (market.isPending) return <Loading what={ticker} />;
  if (market.isError) {
    if (isNotFound(market.error)) return <NotFound what={`market ${ticker}`} />;
    return <ErrorState error={market.error} what={`market ${ticker}`} retry={() => void market.refetch()} />;
  }
  const m = market.data;
  const yesBid = latest?.yes_bid ?? m.yes_bid;
  const yesAsk = latest?.yes_ask ?? m.yes_ask;
  const prob = latest ? latest.implied_probability : m.implied_probability;

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
          <h2>Price · 1-minute candles</h2>
          {history.isPending ? (
            <Loading what="candles" />
          ) : history.isError ? (
            <ErrorState error={history.error} what="candles" retry={() => void history.refetch()} />
          ) : bars.length === 0 && !live ? (
            <>
              <Empty>No candles in the last day yet; live ticks appear here as they are recorded.</Empty>
              <CandleChart bars={bars} live={live} liveCount={liveCount} />
            </>
          ) : (
            <CandleChart bars={bars} live={live} liveCount={liveCount} />
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
              <div className="muted small">
                as of <Time iso={book.data.ts} />
              </div>
            </>
          )}
        </div>
      </div>
      <dl className="facts">
        <Fact label="Status">{m.status}</Fact>
        <Fact label="Category">{m.category ?? "—"}</Fact>
        <Fact label="Opens">
          <Time iso={m.open_time} />
        </Fact>
        <Fact label="Closes">
          <Time iso={m.close_time} />
        </Fact>
        <Fact label="Result">{m.result ?? "—"}</Fact>
        <Fact label="Last update">
          <Time iso={latest?.ts ?? m.last_updated} />
        </Fact>
      </dl>
    </section>
  );
}
