import type { Gap, GapHour, Instance, RecorderStatus } from "../client";
import { count, localTime, utcTitle } from "../lib/format";
import {
  ageNow,
  coverageGrade,
  dayCoverage,
  duration,
  heartbeatGrade,
  heartbeatState,
  lagGrade,
  orderInstances,
  recordedSeconds,
  type ReadinessView,
} from "../lib/health";
import { Card } from "./Card";
import { Empty, Time } from "./States";

export type HealthViewProps = {
  status: RecorderStatus | undefined;
  /** When the status was read (ms since the epoch), to age heartbeats between polls. */
  fetchedAt: number;
  now: number;
  readiness: ReadinessView | null;
  /** The recorder status request failed (e.g. 503 while the database is unreachable). */
  statusError: string | null;
  /** The API itself did not answer. */
  apiDown: boolean;
};

function DatabaseBanner({ readiness, statusError, apiDown }: Pick<HealthViewProps, "readiness" | "statusError" | "apiDown">) {
  const db = readiness?.checks["database"];
  if (apiDown) return null; // the layout's banner says the API is unreachable
  if (db && !db.ok) {
    return (
      <div className="notice health-alert" role="alert">
        <strong>Database unreachable.</strong> {db.detail}. The recorder holds what it receives and writes it when the
        database is back; this page retries every few seconds{statusError ? " and shows the last answer it had" : ""}.
      </div>
    );
  }
  if (statusError) {
    return (
      <div className="notice health-alert" role="alert">
        <strong>Recorder status unavailable:</strong> {statusError}. Showing the last answer, if any.
      </div>
    );
  }
  return null;
}

export function HealthView({ status, fetchedAt, now, readiness, statusError, apiDown }: HealthViewProps) {
  const leader = status?.leader ?? null;
  const leaderAge = leader ? ageNow(leader.heartbeat_age_seconds, fetchedAt, now) : null;
  const beat = leaderAge === null ? null : heartbeatState(leaderAge);
  const coverage = status ? dayCoverage(status.gap_hours ?? []) : null;
  const recorded = status ? recordedSeconds(status.gap_hours ?? []) : 0;
  const db = readiness?.checks["database"];
  const migrations = readiness?.checks["migrations"];
  return (
    <>
      <DatabaseBanner readiness={readiness} statusError={statusError} apiDown={apiDown} />
      <div className="cards health-cards" aria-label="Recorder summary">
        <Card
          label="Leader"
          value={leader ? leader.instance_id : "none"}
          grade={status ? (leader ? "ok" : "bad") : "none"}
          hint={leader ? `${leader.hostname} pid ${leader.pid}` : "no recorder holds the lease"}
          mono={!!leader}
        />
        <Card
          label="Leader heartbeat"
          value={leaderAge === null ? "—" : `${duration(leaderAge)} ago`}
          grade={beat ? heartbeatGrade(beat) : "none"}
          hint={beat ? `heartbeat ${beat}` : undefined}
        />
        <Card
          label="Messages/s"
          value={status?.messages_per_second == null ? "—" : status.messages_per_second.toLocaleString()}
          hint={status?.messages == null ? undefined : `${status.messages.toLocaleString()} WebSocket messages since the leader started`}
        />
        <Card
          label="Exchange → commit p50/p99"
          value={
            status?.commit_lag_p50_seconds == null
              ? "—"
              : `${duration(status.commit_lag_p50_seconds)} / ${duration(status.commit_lag_p99_seconds)}`
          }
          grade={lagGrade(status?.commit_lag_p99_seconds)}
        />
        <Card label="Open gaps" value={status ? count(status.open_gaps) : "—"} grade={status ? (status.open_gaps ? "warn" : "ok") : "none"} />
        <Card
          label="Coverage, 24 h"
          value={coverage === null ? "—" : `${(coverage * 100).toFixed(coverage >= 0.99995 || coverage === 0 ? 0 : 2)}%`}
          grade={coverageGrade(coverage)}
          hint="share of the last day's recorded time outside every feed gap"
          note={coverage !== null && recorded < 23 * 3600 ? `over ${duration(recorded)} recorded` : undefined}
        />
        <Card
          label="Rejected frames"
          value={status ? count(status.rejected_total ?? 0) : "—"}
          grade={status ? ((status.rejected_total ?? 0) > 0 ? "warn" : "ok") : "none"}
          hint="frames and rows the leader refused to store since it started"
        />
        <Card
          label="Database"
          value={apiDown ? "unknown" : db ? (db.ok ? "reachable" : "unreachable") : "—"}
          grade={apiDown ? "none" : db ? (db.ok ? (migrations && !migrations.ok ? "warn" : "ok") : "bad") : "none"}
          hint={migrations ? `migrations: ${migrations.detail}` : undefined}
        />
      </div>

      <div className="health-grid">
        <section className="panel" aria-labelledby="instances-h">
          <h2 id="instances-h">Instances</h2>
          <Instances instances={status?.instances ?? []} fetchedAt={fetchedAt} now={now} />
        </section>
        <section className="panel" aria-labelledby="readiness-h">
          <h2 id="readiness-h">
            Readiness{" "}
            {readiness && (
              <span className={`status ${readiness.ready ? "status-active" : "status-failed"}`}>
                {readiness.ready ? "ready" : "not ready"}
              </span>
            )}
          </h2>
          {readiness ? (
            <ul className="checks">
              {Object.entries(readiness.checks).map(([name, c]) => (
                <li key={name} className={c.ok ? "pos" : "neg"}>
                  <span aria-hidden="true">{c.ok ? "✓" : "✗"}</span> <strong>{name}</strong>{" "}
                  <span className="muted">{c.detail}</span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">{apiDown ? "The API does not answer." : "Not known yet."}</p>
          )}
          {status && Object.keys(status.rejected ?? {}).length > 0 && (
            <>
              <h3 className="rejected-h">Rejected by reason</h3>
              <table className="data compact">
                <tbody>
                  {Object.entries(status.rejected ?? {})
                    .sort((a, b) => b[1] - a[1])
                    .map(([reason, n]) => (
                      <tr key={reason}>
                        <td>{reason}</td>
                        <td className="num">{n.toLocaleString()}</td>
                      </tr>
                    ))}
                </tbody>
              </table>
            </>
          )}
        </section>
      </div>

      <section className="panel" aria-labelledby="gaps-h">
        <h2 id="gaps-h">Gaps and coverage, last 24 hours</h2>
        {status ? <GapHours hours={status.gap_hours ?? []} /> : <p className="muted">Not known yet.</p>}
      </section>

      <section className="panel" aria-labelledby="recent-h">
        <h2 id="recent-h">Recent gaps</h2>
        <RecentGaps gaps={status?.recent_gaps ?? []} now={now} />
      </section>
    </>
  );
}

function Instances({ instances, fetchedAt, now }: { instances: Instance[]; fetchedAt: number; now: number }) {
  if (instances.length === 0) return <Empty>No recorder has written a heartbeat yet.</Empty>;
  return (
    <div className="table-wrap">
      <table className="data">
        <thead>
          <tr>
            <th>Instance</th>
            <th>Role</th>
            <th>Host</th>
            <th className="num">Heartbeat</th>
            <th>Leader since</th>
            <th>Started</th>
          </tr>
        </thead>
        <tbody>
          {orderInstances(instances).map((i) => {
            const age = ageNow(i.heartbeat_age_seconds, fetchedAt, now);
            const state = heartbeatState(age);
            return (
              <tr key={i.instance_id} data-role={i.role}>
                <td className="mono">{i.instance_id}</td>
                <td>
                  <span className={`status role-${i.role}`}>{i.role}</span>
                </td>
                <td>
                  {i.hostname} <span className="muted">pid {i.pid}</span>
                </td>
                <td className={`num beat-${state}`} title={utcTitle(i.heartbeat_at)}>
                  {duration(age)} ago{state !== "ok" && ` · ${state}`}
                </td>
                <td>
                  <Time iso={i.leader_since} short />
                </td>
                <td>
                  <Time iso={i.started_at} short />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

const hourLabel = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function hourTitle(h: GapHour): string {
  const start = new Date(h.hour_start);
  const span = `${hourLabel.format(start)}–${hourLabel.format(new Date(start.getTime() + 3600_000))}`;
  if (h.coverage === null) return `${span}: not recorded (no recorder had started yet)`;
  const gaps = h.gaps_started === 1 ? "1 gap started" : `${h.gaps_started} gaps started`;
  const open = h.gaps_open ? ` (${h.gaps_open} still open)` : "";
  return `${span}: ${gaps}${open}; ${duration(h.seconds_in_gaps)} inside gaps; coverage ${(h.coverage * 100).toFixed(1)}%`;
}

/** Per hour: a bar of the gaps that began in it, and a strip coloured by the hour's coverage. */
export function GapHours({ hours }: { hours: GapHour[] }) {
  if (hours.length === 0) return <Empty>No hours reported.</Empty>;
  const w = 24;
  const total = hours.reduce((n, h) => n + h.gaps_started, 0);
  const barH = total ? 70 : 10; // no bars to draw: only the coverage strip
  const most = Math.max(1, ...hours.map((h) => h.gaps_started));
  const width = hours.length * w;
  return (
    <figure className="gap-hours">
      <svg viewBox={`0 0 ${width} ${barH + 44}`} role="img" aria-label={`${total} gaps started in the last ${hours.length} hours`}>
        {hours.map((h, i) => {
          const height = (h.gaps_started / most) * (barH - 6);
          const grade = coverageGrade(h.coverage);
          const start = new Date(h.hour_start);
          return (
            <g key={h.hour_start} data-testid="gap-hour">
              <title>{hourTitle(h)}</title>
              <rect x={i * w} y={0} width={w} height={barH + 26} fill="transparent" />
              {h.gaps_started > 0 && (
                <rect className={h.gaps_open ? "bar-open" : "bar-closed"} x={i * w + 3} y={barH - height} width={w - 6} height={height} rx={2} />
              )}
              <rect className={`cov cov-${grade}`} x={i * w + 1} y={barH + 6} width={w - 2} height={16} rx={2} />
              {i % 3 === 0 && (
                <text x={i * w + 2} y={barH + 38} className="axis">
                  {hourLabel.format(start)}
                </text>
              )}
            </g>
          );
        })}
        <line x1={0} x2={width} y1={barH} y2={barH} className="baseline" />
      </svg>
      <figcaption className="muted small">
        {total ? `Bars: gaps that began in each hour (red while one is still open; tallest = ${most}). ` : "No gap began in these hours. "}
        Strip: the hour’s coverage —{" "}
        <span className="cov-key cov-ok" /> no gap, <span className="cov-key cov-warn" /> ≥ 99 %,{" "}
        <span className="cov-key cov-bad" /> less, <span className="cov-key cov-none" /> not recorded yet. Hover an hour for its figures; hours in your time zone.
      </figcaption>
    </figure>
  );
}

function RecentGaps({ gaps, now }: { gaps: Gap[]; now: number }) {
  if (gaps.length === 0) return <Empty>No feed gap recorded.</Empty>;
  const shown = gaps.slice(0, 15);
  return (
    <div className="table-wrap">
      <table className="data">
        <thead>
          <tr>
            <th>Began</th>
            <th>Channel</th>
            <th>Market</th>
            <th>Cause</th>
            <th className="num">Length</th>
            <th>State</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((g) => {
            const end = g.gap_end ? Date.parse(g.gap_end) : now;
            const ongoing = !g.repaired_at && !g.gap_end;
            return (
              <tr key={g.id}>
                <td>
                  <Time iso={g.gap_start} short />
                </td>
                <td>{g.channel}</td>
                <td className="mono">{g.market_ticker ?? "all"}</td>
                <td>{g.cause}</td>
                <td className="num">{duration(Math.max(0, (end - Date.parse(g.gap_start)) / 1000))}</td>
                <td>
                  {g.repaired_at ? (
                    <span className="status status-active" title={`repaired ${localTime(g.repaired_at)}`}>
                      repaired{g.repair_method ? ` (${g.repair_method})` : ""}
                    </span>
                  ) : ongoing ? (
                    <span className="status status-failed">ongoing</span>
                  ) : (
                    <span className="status status-warn">not repaired</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {gaps.length > shown.length && <p className="muted small table-foot">The {shown.length} newest shown.</p>}
    </div>
  );
}
