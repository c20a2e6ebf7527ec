import { describe, expect, it } from "vitest";
import { bestIndex, elapsedLabel, MAX_COMPARE, overlaySeries, parseIds } from "./compare";

const A = "0b6f8a52-0000-4000-8000-000000000001";
const B = "0b6f8a52-0000-4000-8000-000000000002";

describe("parseIds", () => {
  it("keeps well-formed ids, once each, in order, lower-cased, at most MAX_COMPARE", () => {
    expect(parseIds(` ${B},nope,${A.toUpperCase()},${B}`)).toEqual([B, A]);
    expect(parseIds(undefined)).toEqual([]);
    const many = Array.from({ length: 12 }, (_, i) => `0b6f8a52-0000-4000-8000-0000000000${String(i).padStart(2, "0")}`);
    expect(parseIds(many.join(","))).toEqual(many.slice(0, MAX_COMPARE));
  });
});

describe("overlaySeries", () => {
  // Two runs over different windows and capitals: a day apart, 1,000 and 500 dollars.
  const ts1 = ["2026-03-01T00:00:00Z", "2026-03-01T00:01:00Z", "2026-03-01T00:02:00Z"];
  const ts2 = ["2026-03-02T00:00:00Z", "2026-03-02T00:01:00.400Z", "2026-03-02T00:01:00.900Z", "2026-03-02T00:03:00Z"];

  it("by time: Unix seconds, P&L from each run's first sample", () => {
    const t0 = Date.parse(ts1[0]!) / 1000;
    expect(overlaySeries(ts1, [1000, 1010, 995], "time")).toEqual([
      { time: t0, value: 0 },
      { time: t0 + 60, value: 10 },
      { time: t0 + 120, value: -5 },
    ]);
  });

  it("from each start: elapsed seconds, so runs of different windows start together; a repeated second keeps its last", () => {
    expect(overlaySeries(ts2, [500, 501, 502.5, 490], "elapsed")).toEqual([
      { time: 0, value: 0 },
      { time: 60, value: 2.5 },
      { time: 180, value: -10 },
    ]);
    expect(overlaySeries(ts1, [1000, 1010, 995], "elapsed").map((p) => p.time)).toEqual([0, 60, 120]);
  });

  it("skips samples that are not numbers or times, and goes forward only", () => {
    expect(overlaySeries(["bad", ...ts1, "2026-02-28T00:00:00Z"], [1, 1000, Number.NaN, 1002, 7], "elapsed")).toEqual([
      { time: 0, value: 0 },
      { time: 120, value: 2 },
    ]);
  });
});

describe("bestIndex and elapsedLabel", () => {
  it("marks the highest or lowest present value, none for a tie or no rule", () => {
    expect(bestIndex([1.2, null, 3.4, -1], "higher")).toBe(2);
    expect(bestIndex([1.2, null, 3.4, -1], "lower")).toBe(3);
    expect(bestIndex([2, 2], "higher")).toBeNull();
    expect(bestIndex([null, 5], "higher")).toBe(1);
    expect(bestIndex([3, 5], null)).toBeNull();
  });
  it("says elapsed time briefly", () => {
    expect([elapsedLabel(0), elapsedLabel(45), elapsedLabel(600), elapsedLabel(3 * 3600 + 120), elapsedLabel(90000)]).toEqual([
      "+0s",
      "+45s",
      "+10m",
      "+3h 2m",
      "+1d 1h",
    ]);
  });
});
