// Derivations of the recorder health page: heartbeat age → ok/late/stale, lag grades, the last day's coverage,
// and readiness read from either answer of /ready (200 ready, 503 problem body with the same checks).
import type { Check, GapHour, Instance, Readiness } from "../client";

/** The recorder writes a heartbeat every 2 s; readiness fails past 15 s (API setting api_ready_heartbeat_max_age_seconds). */
export const HEARTBEAT_LATE_SECONDS = 6;
export const HEARTBEAT_STALE_SECONDS = 15;

export type Grade = "ok" | "warn" | "bad" | "none";

export type HeartbeatState = "ok" | "late" | "stale";

/** A heartbeat's state by its age: ok (a beat or two missed at most), late, stale (readiness would fail). */
export function heartbeatState(ageSeconds: number): HeartbeatState {
  if (ageSeconds > HEARTBEAT_STALE_SECONDS) return "stale";
  if (ageSeconds > HEARTBEAT_LATE_SECONDS) return "late";
  return "ok";
}

export function heartbeatGrade(state: HeartbeatState): Grade {
  return state === "ok" ? "ok" : state === "late" ? "warn" : "bad";
}

/** A heartbeat's age now: its age when the API answered plus the time since (the page ticks between polls). */
export function ageNow(ageAtFetch: number, fetchedAtMs: number, nowMs: number): number {
  return Math.max(0, ageAtFetch + Math.max(0, nowMs - fetchedAtMs) / 1000);
}

/** "40 ms", "2.3 s", "12 s", "3 min 5 s", "2 h 10 min". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    const s = Math.round(seconds - m * 60);
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds - h * 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** Exchange time → commit, 99th percentile: under 1 s is fine, under 5 s worth a look, beyond that bad. */
export function lagGrade(p99: number | null | undefined): Grade {
  if (p99 === null || p99 === undefined) return "none";
  if (p99 < 1) return "ok";
  if (p99 < 5) return "warn";
  return "bad";
}

/** The share of the window's recorded time outside every gap (each hour weighted by its recorded seconds: the
 * current one is partial, hours before the first recorder have none); null while nothing was recorded. */
export function dayCoverage(hours: GapHour[]): number | null {
  let covered = 0;
  let total = 0;
  for (const h of hours) {
    if (h.coverage === null || h.recorded_seconds <= 0) continue;
    covered += h.coverage * h.recorded_seconds;
    total += h.recorded_seconds;
  }
  return total > 0 ? covered / total : null;
}

/** The recorded part of the window, in seconds (less than the window while the first recorder is younger). */
export function recordedSeconds(hours: GapHour[]): number {
  return hours.reduce((n, h) => n + Math.max(0, h.recorded_seconds), 0);
}

/** A coverage share's grade: all of it ok, 99 % and up a warning, below that bad. */
export function coverageGrade(coverage: number | null): Grade {
  if (coverage === null) return "none";
  if (coverage >= 0.99999) return "ok";
  if (coverage >= 0.99) return "warn";
  return "bad";
}

/** The leader first, then standbys, then the rest (lapsed, deposed, stopped), newest heartbeat first within a role. */
export function orderInstances(instances: Instance[]): Instance[] {
  const rank = (role: string) => (role === "leader" ? 0 : role === "standby" ? 1 : 2);
  return [...instances].sort(
    (a, b) => rank(a.role) - rank(b.role) || a.heartbeat_age_seconds - b.heartbeat_age_seconds,
  );
}

export type ReadinessView = { ready: boolean; checks: Record<string, Check>; detail: string | null };

/** Readiness from /ready's answer: its body when 200; when 503, the problem body's `checks` and `detail`. */
export function readinessFrom(status: number, body: unknown): ReadinessView | null {
  if (!body || typeof body !== "object") return null;
  const b = body as Partial<Readiness> & { detail?: unknown };
  const checks = b.checks && typeof b.checks === "object" ? (b.checks as Record<string, Check>) : {};
  if (status === 200) return { ready: b.status === "ready", checks, detail: null };
  if (status === 503) return { ready: false, checks, detail: typeof b.detail === "string" ? b.detail : null };
  return null;
}

/** Whether the database answers, as readiness tells it (null: readiness unknown). */
export function databaseUp(readiness: ReadinessView | null): boolean | null {
  const db = readiness?.checks["database"];
  return db ? db.ok : null;
}
