import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { RecorderStatus } from "../client";
import { readinessFrom } from "../lib/health";
import { HealthView } from "./HealthView";

const NOW = Date.parse("2026-11-28T12:30:00Z");

const status = (over: Partial<RecorderStatus> = {}): RecorderStatus => {
  const leader = {
    instance_id: "rec-a",
    role: "leader",
    hostname: "box",
    pid: 10,
    started_at: "2026-11-28T10:00:00Z",
    heartbeat_at: "2026-11-28T12:29:59Z",
    heartbeat_age_seconds: 1.2,
    leader_since: "2026-11-28T10:00:05Z",
    info: {},
  };
  const standby = { ...leader, instance_id: "rec-b", role: "standby", pid: 11, leader_since: null, heartbeat_age_seconds: 30 };
  return {
    leader,
    lag_seconds: 1.2,
    commit_lag_p50_seconds: 0.04,
    commit_lag_p99_seconds: 0.3,
    messages_per_second: 125.5,
    messages: 10_000,
    rows_written: 9_000,
    queue_depth: 0,
    rejected: { unparseable: 3 },
    rejected_total: 3,
    instances: [standby, leader],
    open_gaps: 1,
    recent_gaps: [
      {
        id: 1,
        detected_at: "2026-11-28T12:00:00Z",
        channel: "orderbook_delta",
        market_ticker: null,
        cause: "disconnect",
        gap_start: "2026-11-28T12:00:00Z",
        gap_end: null,
        repaired_at: null,
        repair_method: null,
      },
    ],
    gap_hours: [
      { hour_start: "2026-11-28T11:00:00Z", gaps_started: 2, gaps_open: 0, gaps_repaired: 2, seconds_in_gaps: 36, recorded_seconds: 3600, coverage: 0.99 },
      { hour_start: "2026-11-28T12:00:00Z", gaps_started: 1, gaps_open: 1, gaps_repaired: 0, seconds_in_gaps: 1800, recorded_seconds: 1800, coverage: 0 },
    ],
    ...over,
  };
};

const ready = readinessFrom(200, {
  status: "ready",
  checks: {
    database: { ok: true, detail: "reachable" },
    migrations: { ok: true, detail: "at head 0009" },
    recorder: { ok: true, detail: "leader rec-a heartbeat 1.2 s ago" },
  },
});

const card = (label: string) => screen.getByText(label).closest(".card") as HTMLElement;

describe("HealthView", () => {
  it("shows the leader, its heartbeat, rates, lag, gaps, rejections and the database", () => {
    render(<HealthView status={status()} fetchedAt={NOW} now={NOW} readiness={ready} statusError={null} apiDown={false} />);
    expect(within(card("Leader")).getByText("rec-a")).toBeInTheDocument();
    expect(card("Leader")).toHaveClass("grade-ok");
    expect(within(card("Leader heartbeat")).getByText("1.2 s ago")).toBeInTheDocument();
    expect(within(card("Messages/s")).getByText((125.5).toLocaleString())).toBeInTheDocument();
    expect(within(card("Exchange → commit p50/p99")).getByText("40 ms / 300 ms")).toBeInTheDocument();
    expect(within(card("Rejected frames")).getByText("3")).toBeInTheDocument();
    expect(within(card("Database")).getByText("reachable")).toBeInTheDocument();
    // 3600 s at 99 % and 1800 s at 0 %: 66 % of the last 1.5 h
    expect(within(card("Coverage, 24 h")).getByText("66.00%")).toBeInTheDocument();
    expect(card("Coverage, 24 h")).toHaveClass("grade-bad");
    expect(within(card("Coverage, 24 h")).getByText("over 1 h 30 min recorded")).toBeInTheDocument();
    expect(screen.getAllByTestId("gap-hour")).toHaveLength(2);
    expect(screen.queryByRole("alert")).toBeNull();
    // the leader first; the standby's 30 s old heartbeat is stale
    const rows = screen.getAllByRole("row").filter((r) => r.dataset.role);
    expect(rows.map((r) => r.dataset.role)).toEqual(["leader", "standby"]);
    expect(within(rows[1]!).getByText(/stale/)).toBeInTheDocument();
    expect(screen.getByText("ongoing")).toBeInTheDocument();
  });

  it("ages the heartbeat between polls and marks it stale", () => {
    render(
      <HealthView status={status()} fetchedAt={NOW} now={NOW + 20_000} readiness={ready} statusError={null} apiDown={false} />,
    );
    expect(within(card("Leader heartbeat")).getByText("21 s ago")).toBeInTheDocument();
    expect(card("Leader heartbeat")).toHaveClass("grade-bad");
  });

  it("says there is no leader", () => {
    render(
      <HealthView status={status({ leader: null, instances: [] })} fetchedAt={NOW} now={NOW} readiness={ready} statusError={null} apiDown={false} />,
    );
    expect(within(card("Leader")).getByText("none")).toBeInTheDocument();
    expect(card("Leader")).toHaveClass("grade-bad");
    expect(screen.getByText("No recorder has written a heartbeat yet.")).toBeInTheDocument();
  });

  it("shows when the database is unreachable, keeping the last status", () => {
    const down = readinessFrom(503, {
      status: 503,
      detail: "not ready — database: database unreachable: OSError",
      checks: { database: { ok: false, detail: "database unreachable: OSError" } },
    });
    render(
      <HealthView
        status={status()}
        fetchedAt={NOW}
        now={NOW}
        readiness={down}
        statusError="database unavailable"
        apiDown={false}
      />,
    );
    expect(screen.getByRole("alert")).toHaveTextContent("Database unreachable. database unreachable: OSError");
    expect(within(card("Database")).getByText("unreachable")).toBeInTheDocument();
    expect(card("Database")).toHaveClass("grade-bad");
    expect(screen.getByText("not ready")).toBeInTheDocument();
    expect(within(card("Leader")).getByText("rec-a")).toBeInTheDocument(); // the last answer stays on screen
  });
});
