// A paper session's two verdicts: the divergence report (the session replayed as a backtest over the same data —
// do they match?) and the seed's decision gate (does the strategy's latest backtest reach Sharpe 0.5?).
import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";
import { useState } from "react";
import { comparePaperSession, getStrategyPerformance, type CompareReport } from "../client";
import { unwrap } from "../lib/api";
import { cents, count, usd } from "../lib/format";
import { localInputValue, utcOf } from "./BacktestForm";
import { Empty, ErrorState, Loading, Time } from "./States";

/** Whether a report says paper and backtest agree: same fills, same P&L, nothing unexplained. */
export function verdictOf(r: CompareReport): { match: boolean; text: string } {
  const samePnl = Number(r.paper_pnl) === Number(r.backtest_pnl);
  if (r.differences.length === 0 && samePnl && r.paper_fills === r.backtest_fills) {
    return { match: true, text: `Match: ${r.paper_fills} fill${r.paper_fills === 1 ? "" : "s"} each, the same P&L.` };
  }
  if (r.unexplained === 0) {
    return {
      match: false,
      text: `${r.differences.length} difference${r.differences.length === 1 ? "" : "s"}, each explained (downtime, stale data, …).`,
    };
  }
  return { match: false, text: `${r.unexplained} unexplained difference${r.unexplained === 1 ? "" : "s"} of ${r.differences.length}.` };
}

export function Divergence({ sessionId, numFills }: { sessionId: string; numFills: number }) {
  // Runs a backtest on the server: on demand, and again when asked (the session may have traded since).
  const [asked, setAsked] = useState(0);
  const report = useQuery({
    queryKey: ["paper-compare", sessionId, asked],
    queryFn: () => unwrap(comparePaperSession({ path: { session_id: sessionId } })),
    enabled: asked > 0,
    staleTime: Infinity,
    retry: false,
  });
  const r = report.data;
  const verdict = r ? verdictOf(r) : null;
  return (
    <div className="panel" data-testid="divergence">
      <div className="panel-head">
        <h2>Divergence report: paper vs backtest</h2>
        <button type="button" onClick={() => setAsked((n) => n + 1)} disabled={report.isFetching}>
          {report.isFetching ? "Replaying…" : asked ? "Compare again" : "Compare with a backtest"}
        </button>
      </div>
      {!asked ? (
        <p className="muted">
          Replays this session's window as a backtest (same strategy version, parameters, fill model and recorded data) and
          lists every fill or P&amp;L that differs, with its cause. {numFills ? "" : "The session has no fill yet."}
        </p>
      ) : report.isPending ? (
        <Loading what="the divergence report (a backtest replay)" />
      ) : report.isError ? (
        <ErrorState error={report.error} what="the divergence report" retry={() => setAsked((n) => n + 1)} />
      ) : (
        r &&
        verdict && (
          <>
            <p className={`verdict ${verdict.match ? "verdict-ok" : "verdict-bad"}`} data-testid="divergence-verdict" data-match={verdict.match}>
              {verdict.match ? "✓ " : "✗ "}
              {verdict.text}
            </p>
            <dl className="facts compact">
              <div className="fact">
                <dt>Window replayed</dt>
                <dd>
                  <Time iso={r.window_start} short /> → <Time iso={r.window_end} short />
                </dd>
              </div>
              <div className="fact">
                <dt>Fills (paper / backtest)</dt>
                <dd>
                  {r.paper_fills} / {r.backtest_fills}
                </dd>
              </div>
              <div className="fact">
                <dt>P&amp;L (paper / backtest)</dt>
                <dd>
                  {usd(r.paper_pnl)} / {usd(r.backtest_pnl)}
                </dd>
              </div>
            </dl>
            {r.differences.length > 0 && (
              <div className="table-wrap flat">
                <table className="data">
                  <thead>
                    <tr>
                      <th>Kind</th>
                      <th>Cause</th>
                      <th>Time</th>
                      <th>Market</th>
                      <th>Order</th>
                      <th>Explanation</th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.differences.map((d, i) => (
                      <tr key={i}>
                        <td>{d.kind.replace("_", " ")}</td>
                        <td>
                          <span className={`status ${d.cause === "unexplained" ? "status-failed" : ""}`}>{d.cause}</span>
                        </td>
                        <td>
                          <Time iso={d.ts} short />
                        </td>
                        <td>{d.ticker ?? "—"}</td>
                        <td>
                          {d.action ? `${d.action} ${count(d.count)} ${(d.side ?? "").toUpperCase()} @ ${cents(d.price)}` : "—"}
                        </td>
                        <td className="wrap">{d.explanation}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </>
        )
      )}
    </div>
  );
}

export function Gate({ strategy }: { strategy: string }) {
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const gateStart = utcOf(from);
  const gateEnd = utcOf(to);
  const perf = useQuery({
    queryKey: ["strategy-gate", strategy, gateStart, gateEnd],
    queryFn: () =>
      unwrap(
        getStrategyPerformance({
          path: { name: strategy },
          query: { ...(gateStart ? { gate_start: gateStart } : {}), ...(gateEnd ? { gate_end: gateEnd } : {}) },
        }),
      ),
    staleTime: 30_000,
  });
  const g = perf.data?.backtest_gate;
  return (
    <div className="panel" data-testid="gate">
      <h2>Decision gate: backtest Sharpe ≥ {g?.threshold ?? 0.5} before trading live</h2>
      <div className="filters gate-window">
        <label>
          Backtests over windows from{" "}
          <input type="datetime-local" value={from} max={to || undefined} onChange={(e) => setFrom(e.target.value)} />
        </label>
        <label>
          to <input type="datetime-local" value={to} min={from || undefined} onChange={(e) => setTo(e.target.value)} />
        </label>
        {(from || to) && (
          <button type="button" onClick={() => (setFrom(""), setTo(""))}>
            Any window
          </button>
        )}
        {!from && !to && (
          <button type="button" onClick={() => setFrom(localInputValue(new Date(Date.now() - 7 * 86400_000)))}>
            Last 7 days
          </button>
        )}
      </div>
      {perf.isPending ? (
        <Loading what="the gate" />
      ) : perf.isError ? (
        <ErrorState error={perf.error} what="the gate" retry={() => void perf.refetch()} />
      ) : !g ? (
        <Empty>No gate.</Empty>
      ) : (
        <p className={`verdict ${g.passed ? "verdict-ok" : "verdict-bad"}`} data-testid="gate-verdict" data-passed={g.passed}>
          {g.passed ? "✓ Passed" : "✗ Not passed"}: {g.note}
          {g.backtest_id && (
            <>
              {" "}
              —{" "}
              <Link to="/backtests/$backtestId" params={{ backtestId: g.backtest_id }}>
                backtest {g.backtest_id.slice(0, 8)}
              </Link>{" "}
              over <Time iso={g.window_start} short /> → <Time iso={g.window_end} short />
            </>
          )}
        </p>
      )}
    </div>
  );
}
