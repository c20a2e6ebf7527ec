import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import {
  getPaperSession,
  getPaperSessionEquity,
  getStrategyPerformance,
  listPaperSessionFills,
  listPaperSessionPositions,
} from "../client";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { isNotFound, unwrap } from "../lib/api";
import { maxDrawdown } from "../lib/equity";
import { cents, count, usd } from "../lib/format";
import { NotFound } from "./NotFound";

const LIVE = 3000;

function Card({ label, value, tone, hint }: { label: string; value: string; tone?: "pos" | "neg"; hint?: string }) {
  return (
    <div className="card" title={hint}>
      <div className="card-label">{label}</div>
      <div className={`card-value ${tone ?? ""}`}>{value}</div>
    </div>
  );
}

const tone = (v: string | null | undefined) =>
  v === null || v === undefined || Number(v) === 0 ? undefined : Number(v) < 0 ? "neg" : "pos";

export function SessionPage() {
  const { sessionId } = useParams({ from: "/paper/$sessionId" });
  const session = useQuery({
    queryKey: ["paper-session", sessionId],
    queryFn: () => unwrap(getPaperSession({ path: { session_id: sessionId } })),
    refetchInterval: LIVE,
    retry: (n, e) => !isNotFound(e) && n < 2,
  });
  const found = session.isSuccess;
  const running = session.data?.status === "running";
  const positions = useQuery({
    queryKey: ["paper-positions", sessionId],
    queryFn: () => unwrap(listPaperSessionPositions({ path: { session_id: sessionId } })),
    enabled: found,
    refetchInterval: LIVE,
  });
  const fills = useQuery({
    queryKey: ["paper-fills", sessionId],
    queryFn: () => unwrap(listPaperSessionFills({ path: { session_id: sessionId }, query: { limit: 500 } })),
    enabled: found,
    refetchInterval: LIVE,
  });
  const equity = useQuery({
    queryKey: ["paper-equity", sessionId],
    queryFn: () => unwrap(getPaperSessionEquity({ path: { session_id: sessionId } })),
    enabled: found,
    refetchInterval: LIVE,
  });
  const strategy = session.data?.strategy;
  const perf = useQuery({
    queryKey: ["strategy-performance", strategy],
    queryFn: () => unwrap(getStrategyPerformance({ path: { name: strategy ?? "" } })),
    enabled: found && running && !!strategy,
    refetchInterval: LIVE,
  });

  if (session.isPending) return <Loading what="the session" />;
  if (session.isError) {
    if (isNotFound(session.error)) return <NotFound what="paper session with this id" />;
    return <ErrorState error={session.error} what="the session" retry={() => void session.refetch()} />;
  }
  const s = session.data;
  const mine = perf.data?.sessions.find((p) => p.id === s.id);
  const points = equity.data ?? [];
  const drawdown = mine ? mine.max_drawdown : points.length ? String(maxDrawdown(points.map((p) => Number(p.equity)))) : null;
  const sharpe = mine?.sharpe_ratio ?? null;

  return (
    <section>
      <p className="crumbs">
        <Link to="/paper">Paper trading</Link> / {s.name ?? s.id}
      </p>
      <div className="page-head">
        <div>
          <h1>{s.name ?? `Session ${s.id.slice(0, 8)}`}</h1>
          <div className="muted">
            {s.strategy} v{s.strategy_version} · <span className={`status status-${s.status}`}>{s.status}</span> · started{" "}
            <Time iso={s.started_at} />
            {s.stopped_at && (
              <>
                {" "}
                · stopped <Time iso={s.stopped_at} />
              </>
            )}
          </div>
        </div>
      </div>
      <div className="cards">
        <Card label="Total P&L" value={usd(s.total_pnl)} tone={tone(s.total_pnl)} hint="realised + unrealised" />
        <Card label="Unrealised P&L" value={usd(s.unrealised_pnl)} tone={tone(s.unrealised_pnl)} />
        <Card label="Realised P&L" value={usd(s.realised_pnl)} tone={tone(s.realised_pnl)} />
        <Card
          label="Sharpe"
          value={sharpe === null ? "—" : sharpe.toFixed(2)}
          hint={running ? "annualised from the equity points (needs two)" : "reported for running sessions"}
        />
        <Card label="Max drawdown" value={usd(drawdown)} hint="largest fall of equity from a previous peak" />
        <Card label="Equity" value={usd(s.equity)} hint={`initial capital ${usd(s.initial_capital)}`} />
      </div>

      <div className="panel">
        <h2>Positions</h2>
        {positions.isPending ? (
          <Loading what="positions" />
        ) : positions.isError ? (
          <ErrorState error={positions.error} what="positions" />
        ) : positions.data.length === 0 ? (
          <Empty>No open position.</Empty>
        ) : (
          <table className="data">
            <thead>
              <tr>
                <th>Market</th>
                <th>Side</th>
                <th className="num">Contracts</th>
                <th className="num">Avg price</th>
                <th className="num">Mark</th>
                <th className="num">Unrealised</th>
              </tr>
            </thead>
            <tbody>
              {positions.data.map((p) => (
                <tr key={`${p.ticker}-${p.side}`}>
                  <td>
                    <Link to="/markets/$ticker" params={{ ticker: p.ticker }}>
                      {p.ticker}
                    </Link>
                  </td>
                  <td>{p.side.toUpperCase()}</td>
                  <td className="num">{count(p.contracts)}</td>
                  <td className="num">{cents(p.avg_price)}</td>
                  <td className="num">{cents(p.mark)}</td>
                  <td className={`num ${tone(p.unrealized_pnl) ?? ""}`}>{usd(p.unrealized_pnl)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>

      <div className="panel">
        <h2>Fills</h2>
        {fills.isPending ? (
          <Loading what="fills" />
        ) : fills.isError ? (
          <ErrorState error={fills.error} what="fills" />
        ) : fills.data.items.length === 0 ? (
          <Empty>No fill yet{running ? ": they appear here as the strategy trades." : "."}</Empty>
        ) : (
          <table className="data">
            <thead>
              <tr>
                <th>Time</th>
                <th>Market</th>
                <th>Action</th>
                <th className="num">Price</th>
                <th className="num">Count</th>
                <th className="num">Fee</th>
                <th className="num">Cash after</th>
              </tr>
            </thead>
            <tbody>
              {[...fills.data.items].reverse().map((f) => (
                <tr key={f.id}>
                  <td>
                    <Time iso={f.ts} />
                  </td>
                  <td>
                    <Link to="/markets/$ticker" params={{ ticker: f.ticker }}>
                      {f.ticker}
                    </Link>
                  </td>
                  <td>
                    {f.action} {f.side.toUpperCase()}
                  </td>
                  <td className="num">{cents(f.price)}</td>
                  <td className="num">{count(f.count)}</td>
                  <td className="num">{usd(f.fee)}</td>
                  <td className="num">{usd(f.cash_after)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
