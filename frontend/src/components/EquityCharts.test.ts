import { describe, expect, it } from "vitest";
import { pointsOf } from "./EquityCharts";

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
