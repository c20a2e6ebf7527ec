import { useQueries } from "@tanstack/react-query";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { useMemo, useState } from "react";
import { getBacktest, getBacktestEquity, type BacktestDetail } from "../client";
import { COLORS, OverlayChart } from "../components/OverlayChart";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { isNotFound, unwrap } from "../lib/api";
import { bestIndex, overlaySeries, parseIds, type Align, type Better } from "../lib/compare";
import { count, usd } from "../lib/format";

type Metrics = Record<string, unknown>;
const numberOf = (m: Metrics | null | undefined, key: string): number | null => {
  const v = m?.[key];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && v !== "" && Number.isFinite(Number(v))) return Number(v);
  return null;
};
const fixed = (digits: number, suffix = "") => (v: number | null) => (v === null ? "—" : `${v.toFixed(digits)}${suffix}`);
const money = (v: number | null) => (v === null ? "—" : usd(String(v)));
/** A percentage to two decimals, or to two significant digits when smaller than that shows ("-0.0031%"). */
const percent = (v: number | null): string => {
  if (v === null) return "—";
  if (v !== 0 && Math.abs(v) < 0.005) return `${v.toPrecision(2)}%`;
  return `${v.toFixed(2)}%`;
};

/** The compared metrics: label, value of a run, how it is shown, which way is better. */
const ROWS: { label: string; value: (b: BacktestDetail) => number | null; show: (v: number | null) => string; better: Better; hint?: string }[] = [
  { label: "Total P&L", value: (b) => (b.total_pnl === null ? null : Number(b.total_pnl)), show: money, better: "higher" },
  { label: "Return", value: (b) => numberOf(b.metrics, "return_pct"), show: percent, better: "higher" },
  { label: "Sharpe", value: (b) => numberOf(b.metrics, "sharpe"), show: fixed(2), better: "higher" },
  { label: "Sortino", value: (b) => numberOf(b.metrics, "sortino"), show: fixed(2), better: "higher" },
  { label: "Max drawdown", value: (b) => numberOf(b.metrics, "max_drawdown"), show: money, better: "lower" },
  { label: "Max drawdown %", value: (b) => numberOf(b.metrics, "max_drawdown_pct"), show: percent, better: "lower" },
  { label: "Trades", value: (b) => b.num_trades, show: (v) => count(v), better: null },
  { label: "Win rate", value: (b) => { const w = numberOf(b.metrics, "win_rate"); return w === null ? null : w * 100; }, show: fixed(1, "%"), better: "higher" },
  { label: "Fees", value: (b) => (b.fees_paid === null ? null : Number(b.fees_paid)), show: money, better: "lower" },
  { label: "Brier score", value: (b) => numberOf(b.metrics, "brier_score"), show: fixed(4), better: "lower", hint: "of the entry prices as forecasts; lower is better" },
  { label: "Final equity", value: (b) => numberOf(b.metrics, "final_equity"), show: money, better: "higher" },
];

export function BacktestComparePage() {
  const search = useSearch({ from: "/backtests/compare" });
  const navigate = useNavigate();
  const ids = useMemo(() => parseIds(search.ids), [search.ids]);
  const [align, setAlign] = useState<Align>("time");
  const details = useQueries({
    queries: ids.map((id) => ({
      queryKey: ["backtest", id],
      queryFn: () => unwrap(getBacktest({ path: { backtest_id: id } })),
      retry: (n: number, e: unknown) => !isNotFound(e) && n < 2,
    })),
  });
  const curves = useQueries({
    queries: ids.map((id, i) => ({
      queryKey: ["backtest-equity", id, details[i]?.data?.status],
      queryFn: () => unwrap(getBacktestEquity({ path: { backtest_id: id } })),
      enabled: details[i]?.data?.status === "done",
      staleTime: Infinity,
    })),
  });
  const series = useMemo(
    () =>
      ids.flatMap((id, i) => {
        const c = curves[i]?.data;
        return c ? [{ id, points: overlaySeries(c.ts, c.equity, align) }] : [];
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [ids, align, ...curves.map((c) => c.data)],
  );

  if (ids.length < 2) {
    return (
      <section>
        <p className="crumbs">
          <Link to="/backtests">Backtests</Link> / compare
        </p>
        <Empty>
          Choose at least two runs to compare: tick them in the <Link to="/backtests">list of backtests</Link>.
        </Empty>
      </section>
    );
  }
  const loaded = details.map((d) => d.data ?? null);
  const pending = details.some((d) => d.isPending);
  const errors = details.flatMap((d, i) => (d.isError ? [{ id: ids[i]!, error: d.error }] : []));
  const runs = loaded.flatMap((b) => (b ? [b] : []));
  const drop = (id: string) => void navigate({ to: "/backtests/compare", search: { ids: ids.filter((x) => x !== id).join(",") } });

  return (
    <section data-testid="compare">
      <p className="crumbs">
        <Link to="/backtests">Backtests</Link> / compare {ids.length} runs
      </p>
      <div className="page-head">
        <h1>Compare backtests</h1>
        <div className="toggle" role="group" aria-label="Align the curves">
          <label>
            <input type="radio" name="align" checked={align === "time"} onChange={() => setAlign("time")} /> by time
          </label>
          <label>
            <input type="radio" name="align" checked={align === "elapsed"} onChange={() => setAlign("elapsed")} /> from each start
          </label>
        </div>
      </div>
      {errors.map(({ id, error }) => (
        <div key={id} className="notice" role="alert">
          Run {id.slice(0, 8)}: {isNotFound(error) ? "no such backtest." : error instanceof Error ? error.message : String(error)}{" "}
          <button type="button" onClick={() => drop(id)}>
            Remove
          </button>
        </div>
      ))}
      {pending && <Loading what="the runs" />}
      <div className="panel">
        <h2>P&amp;L over {align === "time" ? "time" : "time since each run's start"}</h2>
        {series.length === 0 ? (
          curves.some((c) => c.isPending && c.fetchStatus === "fetching") ? (
            <Loading what="the equity curves" />
          ) : curves.some((c) => c.isError) ? (
            <ErrorState error={curves.find((c) => c.isError)?.error} what="the equity curves" />
          ) : (
            <Empty>No finished run with an equity curve among these.</Empty>
          )
        ) : (
          <>
            <OverlayChart series={series} align={align} />
            <ul className="legend">
              {ids.map((id, i) =>
                series.some((s) => s.id === id) ? (
                  <li key={id}>
                    <span className="swatch" style={{ background: COLORS[i % COLORS.length] }} /> {id.slice(0, 8)} {loaded[i]?.strategy.name}
                  </li>
                ) : null,
              )}
            </ul>
          </>
        )}
      </div>
      {runs.length > 0 && (
        <div className="panel">
          <h2>Metrics</h2>
          <div className="table-wrap flat">
            <table className="data compare" data-testid="compare-metrics">
              <thead>
                <tr>
                  <th />
                  {ids.map((id, i) =>
                    loaded[i] ? (
                      <th key={id} className="num">
                        <span className="swatch" style={{ background: COLORS[i % COLORS.length] }} />{" "}
                        <Link to="/backtests/$backtestId" params={{ backtestId: id }} className="mono">
                          {id.slice(0, 8)}
                        </Link>{" "}
                        <button type="button" className="link" title="Remove from the comparison" aria-label={`Remove ${id.slice(0, 8)}`} onClick={() => drop(id)}>
                          ×
                        </button>
                      </th>
                    ) : null,
                  )}
                </tr>
              </thead>
              <tbody>
                <tr>
                  <th>Strategy</th>
                  {loaded.map((b) =>
                    b ? (
                      <td key={b.id} className="num">
                        {b.strategy.name} <span className="muted">v{b.strategy.version}</span>
                      </td>
                    ) : null,
                  )}
                </tr>
                <tr>
                  <th>Parameters</th>
                  {loaded.map((b) =>
                    b ? (
                      <td key={b.id} className="num small">
                        {Object.entries(b.params).map(([k, v]) => `${k}=${String(v)}`).join(", ") || "—"}
                      </td>
                    ) : null,
                  )}
                </tr>
                <tr>
                  <th>Window</th>
                  {loaded.map((b) =>
                    b ? (
                      <td key={b.id} className="num small">
                        <Time iso={b.window.start} short /> → <Time iso={b.window.end} short />
                      </td>
                    ) : null,
                  )}
                </tr>
                <tr>
                  <th>Status</th>
                  {loaded.map((b) =>
                    b ? (
                      <td key={b.id} className="num">
                        <span className={`status status-${b.status}`}>{b.status}</span>
                      </td>
                    ) : null,
                  )}
                </tr>
                {ROWS.map((row) => {
                  const values = loaded.map((b) => (b && b.status === "done" ? row.value(b) : null));
                  const best = bestIndex(values, row.better);
                  return (
                    <tr key={row.label} title={row.hint}>
                      <th>{row.label}</th>
                      {loaded.map((b, i) =>
                        b ? (
                          <td key={b.id} className={`num ${best === i ? "best" : ""}`} data-best={best === i || undefined}>
                            {row.show(values[i] ?? null)}
                          </td>
                        ) : null,
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <p className="muted small">The best value of each row is highlighted (higher or lower, as the metric wants).</p>
        </div>
      )}
    </section>
  );
}
