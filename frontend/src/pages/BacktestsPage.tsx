import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { useState } from "react";
import { createBacktest, listBacktests, type BacktestSummary } from "../client";
import { BacktestForm } from "../components/BacktestForm";
import { toneOf } from "../components/Card";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { WithStrategies } from "../components/WithStrategies";
import { unwrap } from "../lib/api";
import { MAX_COMPARE } from "../lib/compare";
import { count, usd } from "../lib/format";

const ACTIVE = new Set(["queued", "running"]);

function NewBacktest({ onClose }: { onClose: () => void }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  return (
    <div className="panel" data-testid="new-backtest">
      <h2>New backtest</h2>
      <WithStrategies>
        {(strategies) => (
          <BacktestForm
            strategies={strategies}
            submit={(body) => unwrap(createBacktest({ body }))}
            onCreated={(id) => {
              void queryClient.invalidateQueries({ queryKey: ["backtests"] });
              void navigate({ to: "/backtests/$backtestId", params: { backtestId: id } });
            }}
            onCancel={onClose}
          />
        )}
      </WithStrategies>
    </div>
  );
}

function Row({ b, selected, toggle, full }: { b: BacktestSummary; selected: boolean; toggle: () => void; full: boolean }) {
  return (
    <tr className={selected ? "selected" : undefined}>
      <td className="pick">
        <input
          type="checkbox"
          aria-label={`Compare ${b.id.slice(0, 8)}`}
          checked={selected}
          disabled={!selected && (full || b.status !== "done")}
          title={b.status !== "done" ? "only finished runs can be compared" : full ? `at most ${MAX_COMPARE} runs` : undefined}
          onChange={toggle}
        />
      </td>
      <td>
        <Link to="/backtests/$backtestId" params={{ backtestId: b.id }} className="mono">
          {b.id.slice(0, 8)}
        </Link>
      </td>
      <td>
        <span className={`status status-${b.status}`}>{b.status}</span>
      </td>
      <td>
        {b.strategy.name} <span className="muted">v{b.strategy.version}</span>
      </td>
      <td>
        <Time iso={b.window.start} short /> → <Time iso={b.window.end} short />
      </td>
      <td>
        <Time iso={b.created_at} short />
      </td>
      <td className={`num ${toneOf(b.total_pnl) ?? ""}`}>{usd(b.total_pnl)}</td>
      <td className="num">{b.sharpe === null || b.sharpe === undefined ? "—" : b.sharpe.toFixed(2)}</td>
      <td className="num">{b.max_drawdown === null || b.max_drawdown === undefined ? "—" : usd(String(b.max_drawdown))}</td>
      <td className="num">{count(b.num_trades)}</td>
    </tr>
  );
}

export function BacktestsPage() {
  const [formOpen, setFormOpen] = useState(false);
  const [picked, setPicked] = useState<string[]>([]);
  const toggle = (id: string) => setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id]));
  const backtests = useQuery({
    queryKey: ["backtests"],
    queryFn: () => unwrap(listBacktests({ query: { limit: 200 } })),
    // Poll while any run is queued or running; otherwise the list only changes when someone starts one.
    refetchInterval: (q) => (q.state.data?.items.some((b) => ACTIVE.has(b.status)) ? 1500 : 15_000),
  });
  return (
    <section>
      <div className="page-head">
        <h1>Backtests</h1>
        <div className="head-actions">
          {picked.length > 0 && (
            <>
              <span className="muted">{picked.length} selected</span>
              <button type="button" onClick={() => setPicked([])}>
                Clear
              </button>
            </>
          )}
          <Link
            to="/backtests/compare"
            search={{ ids: picked.join(",") }}
            className={`button ${picked.length < 2 ? "disabled" : ""}`}
            aria-disabled={picked.length < 2}
            title={picked.length < 2 ? "tick two or more finished runs to compare them" : undefined}
            onClick={(e) => {
              if (picked.length < 2) e.preventDefault();
            }}
          >
            Compare{picked.length >= 2 ? ` ${picked.length} runs` : ""}
          </Link>
          {!formOpen && (
            <button type="button" className="primary" onClick={() => setFormOpen(true)}>
              New backtest
            </button>
          )}
        </div>
      </div>
      {formOpen && <NewBacktest onClose={() => setFormOpen(false)} />}
      {backtests.isPending ? (
        <Loading what="backtests" />
      ) : backtests.isError ? (
        <ErrorState error={backtests.error} what="backtests" retry={() => void backtests.refetch()} />
      ) : backtests.data.items.length === 0 ? (
        <Empty>
          No backtest yet. Start one with <strong>New backtest</strong> above, or <code>kalshi-analytics backtest run</code>.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="data backtests">
            <thead>
              <tr>
                <th className="pick">
                  <span className="sr-only">Compare</span>
                </th>
                <th>Run</th>
                <th>Status</th>
                <th>Strategy</th>
                <th>Window</th>
                <th>Created</th>
                <th className="num">Total P&amp;L</th>
                <th className="num">Sharpe</th>
                <th className="num">Max drawdown</th>
                <th className="num">Trades</th>
              </tr>
            </thead>
            <tbody>
              {backtests.data.items.map((b) => (
                <Row key={b.id} b={b} selected={picked.includes(b.id)} toggle={() => toggle(b.id)} full={picked.length >= MAX_COMPARE} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
