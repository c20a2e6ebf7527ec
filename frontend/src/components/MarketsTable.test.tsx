import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import type { MarketSummary } from "../client";
import { renderWithRouter } from "../test-utils";
import { MarketsTable, filterMarkets } from "./MarketsTable";

const market = (ticker: string, over: Partial<MarketSummary> = {}): MarketSummary => ({
  ticker,
  title: `Will ${ticker} happen?`,
  event_ticker: `EV-${ticker}`,
  series_ticker: "KX",
  category: "Politics",
  status: "active",
  close_time: "2026-12-01T00:00:00Z",
  implied_probability: "0.4350",
  implied_probability_source: "mid",
  last_price: "0.4300",
  last_updated: "2026-11-21T12:00:00Z",
  yes_bid: "0.4300",
  yes_ask: "0.4400",
  yes_price: "0.4300",
  no_price: "0.5600",
  open_interest: "10",
  volume: "1200",
  ...over,
});

const MARKETS = [
  market("KXRAIN-1", { title: "Rain in Paris", category: "Weather", volume: "50", implied_probability: "0.2000", yes_bid: "0.1900", yes_ask: "0.2100" }),
  market("KXVOTE-2", { title: "Turnout above 60%", volume: "9000" }),
  market("KXVOTE-3", { title: "Recount ordered", volume: "300", implied_probability: null, yes_bid: null, yes_ask: null }),
];

function Harness() {
  const [text, setText] = useState("");
  const [category, setCategory] = useState("");
  return (
    <>
      <input aria-label="Search markets" value={text} onChange={(e) => setText(e.target.value)} />
      <select aria-label="Category" value={category} onChange={(e) => setCategory(e.target.value)}>
        <option value="">all</option>
        <option value="Weather">Weather</option>
        <option value="Politics">Politics</option>
      </select>
      <MarketsTable markets={filterMarkets(MARKETS, { text, category })} />
    </>
  );
}

const tickers = () =>
  screen
    .getAllByRole("row")
    .slice(1)
    .map((r) => within(r).getAllByRole("cell")[0]!.querySelector(".ticker")!.textContent);

describe("MarketsTable", () => {
  it("renders a row per market, by volume, with implied probability, spread and a link to the market", async () => {
    renderWithRouter(<Harness />);
    expect(await screen.findByText("KXVOTE-2")).toBeInTheDocument();
    expect(tickers()).toEqual(["KXVOTE-2", "KXVOTE-3", "KXRAIN-1"]);
    const rain = screen.getByText("KXRAIN-1").closest("tr")!;
    expect(within(rain).getByText("20.0%")).toBeInTheDocument();
    expect(within(rain).getByText("2¢")).toBeInTheDocument(); // 0.21 − 0.19
    const recount = screen.getByText("KXVOTE-3").closest("tr")!;
    expect(within(recount).getAllByText("—").length).toBeGreaterThanOrEqual(2); // no price, no spread
    expect(screen.getByText("KXRAIN-1").closest("a")).toHaveAttribute("href", "/markets/KXRAIN-1");
  });

  it("filters by search words and by category, and says so when nothing matches", async () => {
    const user = userEvent.setup();
    renderWithRouter(<Harness />);
    await screen.findByText("KXVOTE-2");
    await user.type(screen.getByLabelText("Search markets"), "turnout");
    expect(tickers()).toEqual(["KXVOTE-2"]);
    await user.clear(screen.getByLabelText("Search markets"));
    await user.selectOptions(screen.getByLabelText("Category"), "Weather");
    expect(tickers()).toEqual(["KXRAIN-1"]);
    await user.type(screen.getByLabelText("Search markets"), "vote");
    expect(screen.getByText("No market matches these filters.")).toBeInTheDocument();
  });

  it("sorts by a column when its header is clicked", async () => {
    const user = userEvent.setup();
    renderWithRouter(<Harness />);
    await screen.findByText("KXVOTE-2");
    await user.click(screen.getByRole("button", { name: /Implied prob/ }));
    const first = tickers();
    await user.click(screen.getByRole("button", { name: /Implied prob/ }));
    expect(tickers()).not.toEqual(first);
    expect(tickers().at(-1)).toBe("KXVOTE-3"); // no price sorts last either way
  });
});
