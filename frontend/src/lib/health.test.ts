import { describe, expect, it } from "vitest";
import type { GapHour, Instance } from "../client";
import {
  ageNow,
  coverageGrade,
  databaseUp,
  dayCoverage,
  recordedSeconds,
  duration,
  heartbeatState,
  lagGrade,
  orderInstances,
  readinessFrom,
} from "./health";

const instance = (id: string, role: string, age: number): Instance => ({
  instance_id: id,
  role,
  hostname: "h",
  pid: 1,
  started_at: "2026-11-28T10:00:00Z",
  heartbeat_at: "2026-11-28T12:00:00Z",
  heartbeat_age_seconds: age,
  leader_since: null,
  info: null,
});

const hour = (start: string, coverage: number | null, recorded = 3600): GapHour => ({
  hour_start: start,
  gaps_started: 0,
  gaps_open: 0,
  gaps_repaired: 0,
  seconds_in_gaps: (1 - (coverage ?? 1)) * recorded,
  recorded_seconds: coverage === null ? 0 : recorded,
  coverage,
});

describe("heartbeat age", () => {
  it("is ok up to a couple of missed beats, late after, stale past readiness's limit", () => {
    expect(heartbeatState(0.4)).toBe("ok");
    expect(heartbeatState(6)).toBe("ok");
    expect(heartbeatState(6.1)).toBe("late");
    expect(heartbeatState(15)).toBe("late");
    expect(heartbeatState(15.5)).toBe("stale");
  });

  it("keeps ageing between polls from the age the API measured", () => {
    expect(ageNow(1.5, 10_000, 10_000)).toBe(1.5);
    expect(ageNow(1.5, 10_000, 14_000)).toBe(5.5);
    expect(heartbeatState(ageNow(1.5, 10_000, 30_000))).toBe("stale"); // no new answer for 20 s
    expect(ageNow(1.5, 10_000, 9_000)).toBe(1.5); // a clock that steps back never makes it younger
  });
});

describe("grades and durations", () => {
  it("grades the commit lag's p99", () => {
    expect(lagGrade(null)).toBe("none");
    expect(lagGrade(0.2)).toBe("ok");
    expect(lagGrade(1)).toBe("warn");
    expect(lagGrade(12)).toBe("bad");
  });

  it("words durations at a sensible precision", () => {
    expect(duration(0.04)).toBe("40 ms");
    expect(duration(0.9996)).toBe("1000 ms");
    expect(duration(2.345)).toBe("2.3 s");
    expect(duration(42.6)).toBe("43 s");
    expect(duration(185)).toBe("3 min 5 s");
    expect(duration(1800)).toBe("30 min");
    expect(duration(7800)).toBe("2 h 10 min");
    expect(duration(null)).toBe("—");
  });
});

describe("coverage over the day", () => {
  it("weighs each hour by its recorded time, and leaves out hours before the first recorder", () => {
    const hours = [
      hour("2026-11-28T10:00:00Z", null),
      hour("2026-11-28T11:00:00Z", 0.5),
      hour("2026-11-28T12:00:00Z", 1, 1800), // the current hour, half past
    ];
    // 3600 s at 50 % and 1800 s at 100 %: 3600 of 5400 recorded seconds covered; the unrecorded hour is not 100 %
    expect(dayCoverage(hours)).toBeCloseTo(3600 / 5400, 10);
    expect(recordedSeconds(hours)).toBe(5400);
    expect(dayCoverage([hour("2026-11-28T10:00:00Z", null)])).toBeNull();
    expect(dayCoverage([])).toBeNull();
  });

  it("grades coverage: whole, nearly whole, not", () => {
    expect(coverageGrade(1)).toBe("ok");
    expect(coverageGrade(0.995)).toBe("warn");
    expect(coverageGrade(0.5)).toBe("bad");
    expect(coverageGrade(null)).toBe("none");
  });
});

describe("instances and readiness", () => {
  it("lists the leader first, then standbys, then the rest, freshest first", () => {
    const order = orderInstances([
      instance("old-standby", "standby", 9),
      instance("lapsed", "lapsed", 1),
      instance("leader", "leader", 3),
      instance("new-standby", "standby", 0.5),
    ]).map((i) => i.instance_id);
    expect(order).toEqual(["leader", "new-standby", "old-standby", "lapsed"]);
  });

  it("reads readiness from a 200 answer and from a 503 problem body", () => {
    const ok = readinessFrom(200, { status: "ready", checks: { database: { ok: true, detail: "reachable" } } });
    expect(ok).toEqual({ ready: true, checks: { database: { ok: true, detail: "reachable" } }, detail: null });
    expect(databaseUp(ok)).toBe(true);
    const down = readinessFrom(503, {
      type: "about:blank",
      status: 503,
      detail: "not ready — database: database unreachable: ConnectionRefusedError",
      checks: { database: { ok: false, detail: "database unreachable: ConnectionRefusedError" } },
    });
    expect(down?.ready).toBe(false);
    expect(down?.detail).toContain("not ready");
    expect(databaseUp(down)).toBe(false);
    expect(readinessFrom(500, { detail: "boom" })).toBeNull();
    expect(databaseUp(null)).toBeNull();
  });
});
