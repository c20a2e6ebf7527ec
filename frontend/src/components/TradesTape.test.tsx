import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Trade } from "../client";
import { TradesTape } from "./TradesTape";

const trade = (id: string, ts: string, price: string, side: string | null): Trade => ({
  trade_id: id,
  ticker: "T",
  ts,
  yes_price: price,
  no_price: "0",
  count: "2.5",
  taker_side: side,
  is_block_trade: null,
});

describe("TradesTape", () => {
  it("shows each trade's taker, YES price in cents and size, in the order given, with UTC on hover", () => {
    render(<TradesTape trades={[trade("b", "2026-11-21T12:00:02Z", "0.4350", "no"), trade("a", "2026-11-21T12:00:01Z", "0.42", null)]} />);
    const rows = within(screen.getByTestId("trades-tape")).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getByText("NO")).toBeInTheDocument();
    expect(within(rows[0]!).getByText("43.5¢")).toBeInTheDocument();
    expect(within(rows[0]!).getByText("2.5")).toBeInTheDocument();
    expect(within(rows[0]!).getByRole("time")).toHaveAttribute("title", "2026-11-21T12:00:02Z (UTC)");
    expect(within(rows[1]!).getByText("42¢")).toBeInTheDocument();
    expect(within(rows[1]!).getByText("—")).toBeInTheDocument();
  });
});
