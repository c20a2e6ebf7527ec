import { describe, expect, it } from "vitest";
import type { UTCTimestamp } from "lightweight-charts";
import { extendsSeries, pointsOf } from "./EquityCharts";

describe("pointsOf", () => {
  it("gives whole UTC seconds, strictly increasing, the last value of a repeated second kept", () => {
    const ts = ["2026-03-01T00:00:00Z", "2026-03-01T00:01:00.250Z", "2026-03-01T00:01:00.900Z", "2026-03-01T00:02:00+00:00"];
    expect(pointsOf(ts, [100, 101, 102, 99])).toEqual([
      { time: 1772323200, value: 100 },
      { time: 1772323260, value: 102 },
      { time: 1772323320, value: 99 },
    ]);
  });

  it("drops samples that are not numbers or come out of order", () => {
    expect(pointsOf(["2026-03-01T00:01:00Z", "2026-03-01T00:00:00Z", "nonsense"], [1, 2, 3])).toEqual([
      { time: 1772323260, value: 1 },
    ]);
    expect(pointsOf(["2026-03-01T00:00:00Z"], [Number.NaN])).toEqual([]);
  });
});

describe("extendsSeries", () => {
  const p = (time: number, value: number) => ({ time: time as UTCTimestamp, value });
  it("is true for appended points (the last one possibly revised), so a live chart appends in place", () => {
    const shown = [p(1, 10), p(2, 11)];
    expect(extendsSeries(shown, [p(1, 10), p(2, 11), p(3, 12)])).toBe(true);
    expect(extendsSeries(shown, [p(1, 10), p(2, 11.5)])).toBe(true);
  });
  it("is false for a new series, a shorter one or a changed history (then it is redrawn)", () => {
    const shown = [p(1, 10), p(2, 11), p(3, 12)];
    expect(extendsSeries([], shown)).toBe(false);
    expect(extendsSeries(shown, shown.slice(0, 2))).toBe(false);
    expect(extendsSeries(shown, [p(0, 9), ...shown])).toBe(false);
    expect(extendsSeries(shown, [p(1, 10), p(2, 99), p(3, 12), p(4, 13)])).toBe(false);
  });
});
