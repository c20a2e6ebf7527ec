import { describe, expect, it } from "vitest";
import { drawdown, maxDrawdown } from "./equity";

describe("drawdown", () => {
  it("is equity below its running peak, 0 at each new high", () => {
    const eq = [100, 110, 99, 105, 120, 90, 130];
    const { dollars, fraction } = drawdown(eq);
    expect(dollars).toEqual([0, 0, -11, -5, 0, -30, 0]);
    expect(fraction[2]).toBeCloseTo(-0.1, 10);
    expect(fraction[5]).toBeCloseTo(-0.25, 10);
    expect(Math.min(...dollars)).toBe(-maxDrawdown(eq));
  });

  it("counts a fall from the very first point and never goes above zero", () => {
    const { dollars } = drawdown([50, 40, 45]);
    expect(dollars).toEqual([0, -10, -5]);
    expect(drawdown([]).dollars).toEqual([]);
    expect(drawdown([1, 2, 3]).dollars.every((d) => d === 0)).toBe(true);
  });

  it("gives no fraction of a peak that is not positive", () => {
    expect(drawdown([0, -5]).fraction).toEqual([0, 0]);
  });
});
