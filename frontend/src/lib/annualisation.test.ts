import { describe, expect, it } from "vitest";
import { annualisedSpan, shortWindowNote, SHORT_WINDOW_SECONDS } from "./annualisation";

describe("annualised ratios from short windows", () => {
  it("reads the span from a backtest's annualisation block", () => {
    expect(annualisedSpan({ annualisation: { returns: 120, interval_seconds: 60 } })).toBe(7200);
    expect(annualisedSpan({ annualisation: { returns: 0, interval_seconds: 60 } })).toBeNull();
    expect(annualisedSpan({ sharpe: 1.2 })).toBeNull();
    expect(annualisedSpan(null)).toBeNull();
  });

  it("notes a window shorter than a week, and only then", () => {
    expect(shortWindowNote(7200)).toBe("from 2 h of data: too short to annualise");
    expect(shortWindowNote(SHORT_WINDOW_SECONDS - 60)).toMatch(/too short/);
    expect(shortWindowNote(SHORT_WINDOW_SECONDS)).toBeNull();
    expect(shortWindowNote(null)).toBeNull();
  });
});
