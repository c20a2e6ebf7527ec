import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import { getBacktest, getBacktestEquity, listBacktestExecutions, type BacktestDetail } from "../client";
import { CalibrationPlot } from "../components/CalibrationPlot";
import { DrawdownChart, EquityChart } from "../components/EquityCharts";
import { Card, toneOf } from "../components/Card";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { annualisedSpan, shortWindowNote } from "../lib/annualisation";
import { isNotFound, isUuid, unwrap } from "../lib/api";
import { calibrationOf } from "../lib/calibration";
import { cents, count, usd } from "../lib/format";
import { NotFound } from "./NotFound";

const POLL = 1500;
const PAGE = 500;

type Metrics = Record<string, unknown>;

const numberOf = (m: Metrics | null | undefined, key: string): number | null => {
  const v = m?.[key];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v !== "" && Number.isFinite(Number(v))) return Number(v);
  return null;
};

const fixed = (v: number | null, digits = 2, suffix = "") => (v === null ? "—" : `${v.toFixed(digits)}${suffix}`);

/** A percentage to two decimals, or to two significant digits when smaller than that shows ("-0.0031%"). */
const percent = (v: number | null): string => {
  if (v === null) return "—";
  if (v !== 0 && Math.abs(v) < 0.005) return `${v.toPrecision(2)}%`;
  return `${v.toFixed(2)}%`;
};

function MetricCards({ b }: { b: BacktestDetail }) {
  const m = b.metrics;
  const dd = numberOf(m, "max_drawdown");
  const ddPct = numberOf(m, "max_drawdown_pct");
  const winRate = numberOf(m, "win_rate");
  return (
    <div className="cards" data-testid="metric-cards">
      <Card label="Total P&L" value={usd(b.total_pnl)} tone={toneOf(b.total_pnl)} hint="realised + unrealised at the end" />
      <Card label="Return" value={percent(numberOf(m, "return_pct"))} tone={toneOf(numberOf(m, "return_pct"))} hint="of the initial capital" />
      <Card
        label="Sharpe"
        value={fixed(numberOf(m, "sharpe"))}
        hint="annualised (365 d), from the equity samples (risk-free 0)"
        note={numberOf(m, "sharpe") === null ? null : shortWindowNote(annualisedSpan(m))}
      />
      <Card label="Sortino" value={fixed(numberOf(m, "sortino"))} />
      <Card
        label="Max drawdown"
        value={dd === null ? "—" : `${usd(String(dd))}${ddPct ? ` (${percent(ddPct)})` : ""}`}
        tone={dd ? "neg" : undefined}
        hint="largest fall of equity from a previous peak"
      />
      <Card label="Trades" value={count(b.num_trades)} hint={`${count(numberOf(m, "num_fills"))} fills`} />
      <Card label="Win rate" value={winRate === null ? "—" : `${(winRate * 100).toFixed(1)}%`} hint="of realised trades" />
      <Card label="Fees" value={usd(b.fees_paid)} />
      <Card label="Final equity" value={usd(typeof m?.final_equity === "string" ? m.final_equity : null)} />
    </div>
  );
}

function Charts({ id, status }: { id: string; status: BacktestDetail["status"] }) {
  const equity = useQuery({
    queryKey: ["backtest-equity", id, status],
    queryFn: () => unwrap(getBacktestEquity({ path: { backtest_id: id } })),
    enabled: status === "done",
    staleTime: Infinity,
  });
  if (status === "queued" || status === "running") {
    return <Loading what={`the equity curve: the run is ${status}`} />;
  }
  if (status === "failed") return <Empty>The run failed: it has no equity curve.</Empty>;
  if (equity.isPending) return <Loading what="the equity curve" />;
  if (equity.isError) return <ErrorState error={equity.error} what="the equity curve" retry={() => void equity.refetch()} />;
  if (equity.data.ts.length === 0) return <Empty>No equity sample: the window held no data.</Empty>;
  const { ts, equity: values } = equity.data;
  return (
    <div className="chart-pair">
      <div className="panel">
        <h2>Equity</h2>
        <EquityChart ts={ts} equity={values} />
      </div>
      <div className="panel">
        <h2>Drawdown (underwater)</h2>
        <DrawdownChart ts={ts} equity={values} />
      </div>
    </div>
  );
}

function Executions({ id, status }: { id: string; status: BacktestDetail["status"] }) {
  const ex = useInfiniteQuery({
    queryKey: ["backtest-executions", id, status],
    queryFn: ({ pageParam }) =>
      unwrap(listBacktestExecutions({ path: { backtest_id: id }, query: { limit: PAGE, ...(pageParam ? { cursor: pageParam } : {}) } })),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled: status === "done",
    staleTime: Infinity,
  });
  if (status !== "done") return <Empty>Executions appear here when the run is done.</Empty>;
  if (ex.isPending) return <Loading what="executions" />;
  if (ex.isError) return <ErrorState error={ex.error} what="executions" retry={() => void ex.refetch()} />;
  const rows = ex.data.pages.flatMap((p) => p.items);
  if (rows.length === 0) return <Empty>No execution: the strategy did not trade in this window.</Empty>;
  return (
    <>
      <div className="table-wrap">
        <table className="data executions">
          <thead>
            <tr>
              <th>Entry</th>
              <th>Market</th>
              <th>Side</th>
              <th className="num">Size</th>
              <th className="num">Entry price</th>
              <th>Exit</th>
              <th className="num">Exit price</th>
              <th>Reason</th>
              <th className="num">Fees</th>
              <th className="num">P&amp;L</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <tr key={e.id}>
                <td>
                  <Time iso={e.entry_ts} short />
                </td>
                <td>
                  <Link to="/markets/$ticker" params={{ ticker: e.ticker }} search={{ backtest: id }}>
                    {e.ticker}
                  </Link>
                </td>
                <td>{e.side.toUpperCase()}</td>
                <td className="num">{count(e.size)}</td>
                <td className="num">{cents(e.entry_price)}</td>
                <td>
                  <Time iso={e.exit_ts} short />
                </td>
                <td className="num">{cents(e.exit_price)}</td>
                <td>{e.exit_reason ?? <span className="muted">open</span>}</td>
                <td className="num">{usd(e.fees)}</td>
                <td className={`num ${toneOf(e.pnl) ?? ""}`}>{usd(e.pnl)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {ex.hasNextPage && (
        <p>
          <button type="button" onClick={() => void ex.fetchNextPage()} disabled={ex.isFetchingNextPage}>
            {ex.isFetchingNextPage ? "Loading…" : `Load ${PAGE} more`}
          </button>
        </p>
      )}
    </>
  );
}

function describeFilter(f: Record<string, unknown>): string {
  const parts = Object.entries(f)
    .filter(([, v]) => Array.isArray(v) && v.length)
    .map(([k, v]) => `${k}: ${(v as unknown[]).join(", ")}`);
  return parts.length ? parts.join(" · ") : "any market";
}

type GapRow = { key: string; channel: string | null; market_ticker: string | null; cause: string | null; gap_start: string; gap_end: string | null; repaired_at: string | null; repair_method: string | null };

/** The recorder's feed gaps stored with the run (those overlapping its window, of its markets or of a whole feed). */
export function gapsOf(gaps: BacktestDetail["feed_gaps"]): { count: number; rows: GapRow[] } {
  const n = typeof gaps?.count === "number" ? gaps.count : 0;
  const raw = Array.isArray(gaps?.gaps) ? (gaps.gaps as unknown[]) : [];
  const rows = raw.filter((g): g is GapRow => !!g && typeof g === "object" && typeof (g as GapRow).gap_start === "string");
  return { count: Math.max(n, rows.length), rows };
}

function Gaps({ gaps }: { gaps: BacktestDetail["feed_gaps"] }) {
  const { count: n, rows } = gapsOf(gaps);
  if (!n) return null;
  return (
    <details className="notice gaps" role="note" data-testid="window-gaps">
      <summary>
        {n} recorder feed gap{n === 1 ? "" : "s"} overlap{n === 1 ? "s" : ""} this window: data may be missing there.
      </summary>
      {rows.length > 0 && (
        <div className="table-wrap flat">
          <table className="data">
            <thead>
              <tr>
                <th>From</th>
                <th>To</th>
                <th>Market</th>
                <th>Cause</th>
                <th>Repair</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((g) => (
                <tr key={g.key}>
                  <td>
                    <Time iso={g.gap_start} short />
                  </td>
                  <td>{g.gap_end ? <Time iso={g.gap_end} short /> : <span className="muted">open</span>}</td>
                  <td>{g.market_ticker ?? <span className="muted">whole feed{g.channel ? ` (${g.channel})` : ""}</span>}</td>
                  <td>{g.cause ?? "—"}</td>
                  <td>{g.repaired_at ? (g.repair_method ?? "repaired") : <span className="muted">not repaired</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </details>
  );
}

export function BacktestPage() {
  const { backtestId } = useParams({ from: "/backtests/$backtestId" });
  const wellFormed = isUuid(backtestId);
  const backtest = useQuery({
    queryKey: ["backtest", backtestId],
    queryFn: () => unwrap(getBacktest({ path: { backtest_id: backtestId } })),
    enabled: wellFormed,
    refetchInterval: (q) => (q.state.data && (q.state.data.status === "queued" || q.state.data.status === "running") ? POLL : false),
    retry: (n, e) => !isNotFound(e) && n < 2,
  });

  if (!wellFormed) return <NotFound what="backtest with this id" />;
  if (backtest.isPending) return <Loading what="the backtest" />;
  if (backtest.isError) {
    if (isNotFound(backtest.error)) return <NotFound what="backtest with this id" />;
    return <ErrorState error={backtest.error} what="the backtest" retry={() => void backtest.refetch()} />;
  }
  const b = backtest.data;
  const params = Object.entries(b.params);
  return (
    <section data-testid="backtest" data-status={b.status}>
      <p className="crumbs">
        <Link to="/backtests">Backtests</Link> / {b.id.slice(0, 8)}
      </p>
      <div className="page-head">
        <div>
          <h1>
            {b.strategy.name} <span className="muted">v{b.strategy.version}</span>
          </h1>
          <div className="muted">
            <span className={`status status-${b.status}`}>{b.status}</span> · <Time iso={b.window.start} /> →{" "}
            <Time iso={b.window.end} /> · {describeFilter(b.market_filter)}
            {params.length > 0 && <> · {params.map(([k, v]) => `${k}=${String(v)}`).join(", ")}</>}
          </div>
        </div>
        <div className="muted small">
          created <Time iso={b.created_at} />
          {b.finished_at && (
            <>
              {" "}
              · finished <Time iso={b.finished_at} />
            </>
          )}
        </div>
      </div>
      {b.status === "failed" && (
        <div className="state state-error" role="alert">
          <strong>The run failed.</strong> {b.error ?? "No reason was recorded."}
        </div>
      )}
      {b.status === "done" && <MetricCards b={b} />}
      <Gaps gaps={b.feed_gaps} />
      <Charts id={b.id} status={b.status} />
      {b.status === "done" && (
        <div className="panel">
          <h2>Calibration: price paid vs how often the side won</h2>
          <CalibrationPlot calibration={calibrationOf(b.metrics)} />
        </div>
      )}
      <div className="panel">
        <h2>Executions</h2>
        <Executions id={b.id} status={b.status} />
      </div>
    </section>
  );
}
