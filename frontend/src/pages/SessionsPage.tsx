import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "@tanstack/react-router";
import { useState } from "react";
import { createPaperSession, listPaperSessions } from "../client";
import { PaperSessionForm } from "../components/PaperSessionForm";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { WithStrategies } from "../components/WithStrategies";
import { unwrap } from "../lib/api";
import { usd } from "../lib/format";

function NewSession({ onClose }: { onClose: () => void }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  return (
    <div className="panel" data-testid="new-session">
      <h2>New paper session</h2>
      <WithStrategies>
        {(strategies) => (
          <PaperSessionForm
            strategies={strategies}
            submit={(body) => unwrap(createPaperSession({ body }))}
            onCreated={(id) => {
              void queryClient.invalidateQueries({ queryKey: ["paper-sessions"] });
              void navigate({ to: "/paper/$sessionId", params: { sessionId: id } });
            }}
            onCancel={onClose}
          />
        )}
      </WithStrategies>
    </div>
  );
}

export function SessionsPage() {
  const [formOpen, setFormOpen] = useState(false);
  const sessions = useQuery({
    queryKey: ["paper-sessions"],
    queryFn: () => unwrap(listPaperSessions({ query: { limit: 200 } })),
    refetchInterval: 5000,
  });
  return (
    <section>
      <div className="page-head">
        <h1>Paper trading</h1>
        {!formOpen && (
          <button type="button" className="primary" onClick={() => setFormOpen(true)}>
            New session
          </button>
        )}
      </div>
      {formOpen && <NewSession onClose={() => setFormOpen(false)} />}
      {sessions.isPending ? (
        <Loading what="paper sessions" />
      ) : sessions.isError ? (
        <ErrorState error={sessions.error} what="paper sessions" retry={() => void sessions.refetch()} />
      ) : sessions.data.items.length === 0 ? (
        <Empty>
          No paper session yet. Start one with <strong>New session</strong> above, or{" "}
          <code>kalshi-analytics live start --help</code>.
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="data">
            <thead>
              <tr>
                <th>Session</th>
                <th>Strategy</th>
                <th>Status</th>
                <th>Started</th>
                <th className="num">Markets</th>
                <th className="num">Fills</th>
                <th className="num">Equity</th>
                <th className="num">Total P&amp;L</th>
              </tr>
            </thead>
            <tbody>
              {sessions.data.items.map((s) => (
                <tr key={s.id}>
                  <td>
                    <Link to="/paper/$sessionId" params={{ sessionId: s.id }}>
                      {s.name ?? s.id.slice(0, 8)}
                    </Link>
                  </td>
                  <td>
                    {s.strategy} <span className="muted">v{s.strategy_version}</span>
                  </td>
                  <td>
                    <span className={`status status-${s.status}`}>{s.status}</span>
                  </td>
                  <td>
                    <Time iso={s.started_at} short />
                  </td>
                  <td className="num">{s.tickers.length}</td>
                  <td className="num">{s.num_fills}</td>
                  <td className="num">{usd(s.equity)}</td>
                  <td className={`num ${Number(s.total_pnl) < 0 ? "neg" : Number(s.total_pnl) > 0 ? "pos" : ""}`}>{usd(s.total_pnl)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
