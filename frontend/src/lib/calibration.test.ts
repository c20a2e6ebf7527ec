import { describe, expect, it } from "vitest";
import { calibrationError, calibrationOf } from "./calibration";

describe("calibration", () => {
  it("reads the engine's buckets in order and skips rows that do not read", () => {
    const c = calibrationOf({
      brier_score: 0.1825,
      calibration: [
        { bucket: "0.7-0.8", trades: 2, contracts: 10, mean_price: 0.75, win_rate: 1 },
        { bucket: "0.2-0.3", trades: 1, contracts: 30, mean_price: 0.25, win_rate: 0 },
        { bucket: "junk", trades: 1, contracts: 1, mean_price: 0.5, win_rate: 1 },
        { bucket: "0.5-0.6", trades: "x", contracts: 1, mean_price: 0.5, win_rate: 1 },
        null,
      ],
    });
    expect(c.brier).toBe(0.1825);
    expect(c.buckets.map((b) => [b.lo, b.hi, b.contracts])).toEqual([
      [0.2, 0.3, 30],
      [0.7, 0.8, 10],
    ]);
    // |0 − 0.25| × 30 + |1 − 0.75| × 10, over 40 contracts.
    expect(calibrationError(c.buckets)).toBeCloseTo(0.25, 12);
  });
  it("is empty without resolved trades", () => {
    expect(calibrationOf({ calibration: [] })).toEqual({ brier: null, buckets: [] });
    expect(calibrationOf(null)).toEqual({ brier: null, buckets: [] });
    expect(calibrationError([])).toBeNull();
  });
});
