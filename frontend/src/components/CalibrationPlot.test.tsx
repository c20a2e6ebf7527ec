import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { calibrationOf } from "../lib/calibration";
import { CalibrationPlot } from "./CalibrationPlot";

describe("CalibrationPlot", () => {
  it("draws a dot per bucket at (price paid, won), sized by contracts, with its table", () => {
    const calibration = calibrationOf({
      brier_score: 0.21,
      calibration: [
        { bucket: "0.2-0.3", trades: 3, contracts: 40, mean_price: 0.25, win_rate: 0.1 },
        { bucket: "0.8-0.9", trades: 1, contracts: 10, mean_price: 0.85, win_rate: 1 },
      ],
    });
    const { container } = render(<CalibrationPlot calibration={calibration} />);
    const dots = [...container.querySelectorAll("circle.dot")];
    expect(dots).toHaveLength(2);
    // x: 36 + p × 228; y: 264 − won × 228 (a 300-unit square with 36 of padding).
    expect(Number(dots[0]!.getAttribute("cx"))).toBeCloseTo(36 + 0.25 * 228, 6);
    expect(Number(dots[0]!.getAttribute("cy"))).toBeCloseTo(264 - 0.1 * 228, 6);
    expect(Number(dots[1]!.getAttribute("cy"))).toBeCloseTo(36, 6);
    expect(Number(dots[0]!.getAttribute("r"))).toBeGreaterThan(Number(dots[1]!.getAttribute("r")));
    expect(screen.getByText("20–30¢")).toBeInTheDocument();
    expect(screen.getByText(/Brier score 0\.2100/)).toBeInTheDocument();
    expect(screen.getByTestId("calibration")).toHaveAttribute("data-buckets", "2");
  });

  it("says why there is none", () => {
    render(<CalibrationPlot calibration={calibrationOf({})} />);
    expect(screen.getByText(/none of the markets this run traded has settled/)).toBeInTheDocument();
  });
});
