import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "@tanstack/react-router";
import { useCallback, useEffect, useMemo, useState } from "react";
import { getPaperSessionLive, getStrategyPerformance, stopPaperSession } from "../client";
import { EquityChart } from "../components/EquityCharts";
import { Divergence, Gate } from "../components/SessionReports";
import { Card, toneOf } from "../components/Card";
import { Empty, ErrorState, Loading, Time } from "../components/States";
import { shortWindowNote } from "../lib/annualisation";
import { ApiError, isNotFound, isUuid, unwrap } from "../lib/api";
import { cents, count, usd } from "../lib/format";
import { applyEvent, cardsOf, fromSnapshot, needsRefetch, PAPER_KINDS, unrealised, type LiveState } from "../lib/paperLive";
import { str } from "../lib/decimal";
import { useKindStream } from "../lib/stream";
import { NotFound } from "./NotFound";


function describe(details: Record<string, unknown>): string {
  return Object.entries(details)
    .filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(" · ");
}

/** Stop: POST stop, then the page reads the session again either way; ``onDone`` gets what to tell the user (a
 * 409: somebody — or the runner, on a failure — ended it first), shown by the page (this button is gone by then). */
export function StopButton({ sessionId, onDone }: { sessionId: string; onDone: (message: string | null) => void }) {
  const [busy, setBusy] = useState(false);
  const stop = async () => {
    setBusy(true);
    let message: string | null = null;
    try {
      await unwrap(stopPaperSession({ path: { session_id: sessionId } }));
    } catch (e) {
      message = e instanceof ApiError && e.status === 409 ? `Not stopped: ${e.message}.` : `Could not stop: ${e instanceof Error ? e.message : String(e)}`;
    } finally {
      setBusy(false);
    }
    onDone(message);
  };
  return (
    <button type="button" className="danger" onClick={() => void stop()} disabled={busy}>
      {busy ? "Stopping…" : "Stop session"}
    </button>
  );
}

function Live({ state, refetch, stream }: { state: LiveState; refetch: () => void; stream: string }) {
  const queryClient = useQueryClient();
  const s = state.session;
  const running = s.status === "running";
  const cards = useMemo(() => cardsOf(state), [state]);
  const [stopNote, setStopNote] = useState<string | null>(null);
  const perf = useQuery({
    queryKey: ["strategy-performance", s.strategy],
    queryFn: () => unwrap(getStrategyPerformance({ path: { name: s.strategy } })),
    enabled: running,
    refetchInterval: 10_000,
  });
  const sharpe = perf.data?.sessions.find((p) => p.id === s.id)?.sharpe_ratio ?? null;
  const ts = useMemo(() => state.equity.map((p) => p.ts), [state.equity]);
  const values = useMemo(() => state.equity.map((p) => Number(p.equity)), [state.equity]);

  return (
    <section data-testid="session" data-status={s.status} data-as-of={state.asOf}>
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
                {s.stop_reason ? ` (${s.stop_reason})` : ""}
              </>
            )}{" "}
            · {s.tickers.length} market{s.tickers.length === 1 ? "" : "s"}
            {Object.keys(s.params).length > 0 && <> · {Object.entries(s.params).map(([k, v]) => `${k}=${String(v)}`).join(", ")}</>}
          </div>
        </div>
        <div className="head-actions">
          <span className={`live-pill live-${stream}`} data-testid="stream-state" title="paper events over the live stream">
            {stream === "live" ? "● live" : stream === "down" ? "stream down, retrying" : "connecting…"}
          </span>
          {running && (
            <StopButton
              sessionId={s.id}
              onDone={(note) => {
                setStopNote(note);
                refetch();
                void queryClient.invalidateQueries({ queryKey: ["paper-sessions"] }); // the list shows it stopped at once
              }}
            />
          )}
        </div>
      </div>
      {stopNote && (
        <p className="field-error" role="alert">
          {stopNote}
        </p>
      )}
      <div className="cards" data-testid="session-cards">
        <Card label="Total P&L" value={usd(cards.totalPnl)} tone={toneOf(cards.totalPnl)} hint="equity − initial capital = realised + unrealised" />
        <Card label="Unrealised P&L" value={usd(cards.unrealisedPnl)} tone={toneOf(cards.unrealisedPnl)} hint="open positions at their marks vs their average price" />
        <Card label="Realised P&L" value={usd(cards.realisedPnl)} tone={toneOf(cards.realisedPnl)} hint="closed and settled trades, after fees" />
        <Card
          label="Sharpe"
          value={sharpe === null ? "—" : sharpe.toFixed(2)}
          hint={running ? "annualised (365 d) from the equity points; refreshed every 10 s" : "reported for running sessions"}
          note={sharpe === null ? null : shortWindowNote((Date.now() - Date.parse(s.started_at)) / 1000)}
        />
        <Card label="Max drawdown" value={usd(cards.maxDrawdown)} tone={Number(cards.maxDrawdown) > 0 ? "neg" : undefined} hint="largest fall of equity from a previous peak" />
        <Card label="Open positions" value={String(cards.openPositions)} hint={`exposure at cost ${usd(cards.exposure)}`} />
        <Card label="Equity" value={usd(cards.equity)} hint={`cash ${usd(cards.cash)} + positions at their marks; initial ${usd(s.initial_capital)}`} />
      </div>

      <div className="panel">
        <h2>Equity</h2>
        {state.equity.length === 0 ? (
          <Empty>No equity point yet{running ? ": the runner samples one every " + String(s.config.equity_interval_seconds ?? 60) + " s of data." : "."}</Empty>
        ) : (
          <EquityChart ts={ts} equity={values} />
        )}
      </div>

      <div className="session-grid">
        <div className="panel">
          <h2>Positions</h2>
          {state.positions.length === 0 ? (
            <Empty>No open position.</Empty>
          ) : (
            <div className="table-wrap flat">
              <table className="data" data-testid="positions">
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
                  {state.positions.map((p) => {
                    const u = unrealised(p);
                    const shown = u === null ? null : str(u);
                    return (
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
                        <td className={`num ${toneOf(shown) ?? ""}`}>{usd(shown)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </div>

        <div className="panel">
          <h2>Session events</h2>
          {state.events.length === 0 ? (
            <Empty>Nothing happened yet.</Empty>
          ) : (
            <ul className="events" data-testid="session-events">
              {[...state.events].reverse().map((e) => (
                <li key={e.key} className={`event event-${e.kind}`}>
                  <Time iso={e.at} short /> <strong>{e.kind}</strong>
                  {e.ticker && (
                    <>
                      {" "}
                      <Link to="/markets/$ticker" params={{ ticker: e.ticker }}>
                        {e.ticker}
                      </Link>
                    </>
                  )}
                  {e.until && (
                    <>
                      {" "}
                      until <Time iso={e.until} short />
                    </>
                  )}
                  {Object.keys(e.details).length > 0 && <div className="muted small">{describe(e.details)}</div>}
                </li>
              ))}
            </ul>
          )}
        </div>
      </div>

      <div className="panel">
        <h2>
          Fills{" "}
          <span className="muted small" data-testid="fill-count">
            {state.fills.length < state.numFills ? `latest ${state.fills.length} of ${count(state.numFills)}` : count(state.numFills)}
            {state.numFills > 0 && ` · fees ${usd(cards.feesPaid)}`}
          </span>
        </h2>
        {state.fills.length === 0 ? (
          <Empty>No fill yet{running ? ": they appear here as the strategy trades." : "."}</Empty>
        ) : (
          <div className="table-wrap flat">
            <table className="data" data-testid="fills">
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
                {[...state.fills].reverse().map((f) => (
                  <tr key={f.key}>
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
          </div>
        )}
      </div>

      <Gate strategy={s.strategy} />
      <Divergence sessionId={s.id} numFills={state.numFills} />
    </section>
  );
}

export function SessionPage() {
  const { sessionId } = useParams({ from: "/paper/$sessionId" });
  const wellFormed = isUuid(sessionId);
  const [stream, setStream] = useState<string>("connecting");
  const snapshot = useQuery({
    queryKey: ["paper-live", sessionId],
    queryFn: () => unwrap(getPaperSessionLive({ path: { session_id: sessionId } })),
    enabled: wellFormed,
    // Live over the stream; read again over REST only when the stream cannot serve (down) or said to (reset).
    refetchInterval: stream === "down" ? 5000 : false,
    refetchOnWindowFocus: false,
    retry: (n, e) => !isNotFound(e) && n < 2,
  });
  const [state, setState] = useState<LiveState | null>(null);
  useEffect(() => {
    if (snapshot.data) setState(fromSnapshot(snapshot.data));
  }, [snapshot.data]);
  const refetch = useCallback(() => void snapshot.refetch(), [snapshot]);
  const streamState = useKindStream(
    PAPER_KINDS,
    snapshot.data?.as_of_event_id ?? null,
    {
      event: (ev) => {
        setState((s) => (s ? applyEvent(s, ev) : s));
        if (ev.data.session_id === sessionId && needsRefetch(ev)) refetch();
      },
      reset: refetch,
    },
    wellFormed && snapshot.isSuccess,
    snapshot.dataUpdatedAt, // every read of the state (a reset's too) opens the stream anew from it
  );
  useEffect(() => setStream(streamState), [streamState]);

  if (!wellFormed) return <NotFound what="paper session with this id" />;
  if (snapshot.isPending) return <Loading what="the session" />;
  if (snapshot.isError && !state) {
    if (isNotFound(snapshot.error)) return <NotFound what="paper session with this id" />;
    return <ErrorState error={snapshot.error} what="the session" retry={refetch} />;
  }
  if (!state || state.session.id !== sessionId) return <Loading what="the session" />;
  return <Live state={state} refetch={refetch} stream={streamState} />;
}
