import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import {
  createMemoryHistory,
  createRootRoute,
  createRoute,
  createRouter,
  RouterProvider,
} from "@tanstack/react-router";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { MarketPage, MarketSummary } from "../client";
import { parseMarketsSearch } from "../lib/marketsSearch";
import { MarketsPage } from "../pages/MarketsPage";
import { renderWithRouter } from "../test-utils";
import { MarketsTable, points } from "./MarketsTable";

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
  change_24h: "0.0250",
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

// jsdom lays nothing out: give the scroll box a height so the virtualiser has a window to fill.
const clientHeight = Object.getOwnPropertyDescriptor(HTMLElement.prototype, "clientHeight");
beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 600 });
});
afterAll(() => {
  if (clientHeight) Object.defineProperty(HTMLElement.prototype, "clientHeight", clientHeight);
});

const bodyTickers = () =>
  screen
    .getAllByRole("row")
    .filter((r) => r.querySelector(".ticker"))
    .map((r) => r.querySelector(".ticker")!.textContent);

describe("MarketsTable", () => {
  it("shows implied probability, the 24 h change, spread and a link to each market", async () => {
    const rows = [
      market("KXRAIN-1", { implied_probability: "0.2000", change_24h: "-0.0310", yes_bid: "0.1900", yes_ask: "0.2100" }),
      market("KXVOTE-3", { implied_probability: null, change_24h: null, yes_bid: null, yes_ask: null }),
      market("KXFLAT-4", { change_24h: "-0.0004" }),
    ];
    renderWithRouter(<MarketsTable markets={rows} sort="volume" order="desc" onSort={() => {}} />);
    const rain = (await screen.findByText("KXRAIN-1")).closest("tr")!;
    expect(within(rain).getByText("20.0%")).toBeInTheDocument();
    expect(within(rain).getByText("−3.1 pts")).toHaveClass("neg");
    expect(within(rain).getByText("2¢")).toBeInTheDocument(); // 0.21 − 0.19
    const recount = screen.getByText("KXVOTE-3").closest("tr")!;
    expect(within(recount).getAllByText("—").length).toBeGreaterThanOrEqual(3); // no price, change or spread
    expect(screen.getByText("KXRAIN-1").closest("a")).toHaveAttribute("href", "/markets/KXRAIN-1");
    const flat = within(screen.getByText("KXFLAT-4").closest("tr")!).getByText("0 pts");
    expect(flat).not.toHaveClass("neg"); // −0.04 points shows as 0, uncoloured
  });

  it("asks for a server sort when a sortable header is clicked, and marks the sorted column", async () => {
    const user = userEvent.setup();
    const onSort = vi.fn();
    renderWithRouter(<MarketsTable markets={[market("A")]} sort="change_24h" order="asc" onSort={onSort} />);
    await screen.findByText("A");
    expect(screen.getByRole("columnheader", { name: /24 h/ })).toHaveAttribute("aria-sort", "ascending");
    expect(screen.getByRole("columnheader", { name: /Volume/ })).toHaveAttribute("aria-sort", "none");
    await user.click(screen.getByRole("button", { name: /Implied prob/ }));
    await user.click(screen.getByRole("button", { name: /Closes/ }));
    expect(onSort.mock.calls).toEqual([["implied_probability"], ["close_time"]]);
    expect(within(screen.getByRole("columnheader", { name: "Spread" })).queryByRole("button")).toBeNull(); // not sortable
  });

  it("puts only the rows in view in the DOM, reports them, and asks for more near the end", async () => {
    const many = Array.from({ length: 5000 }, (_, i) => market(`KX-${String(i).padStart(4, "0")}`));
    const onVisible = vi.fn();
    const onEnd = vi.fn();
    renderWithRouter(
      <MarketsTable markets={many} sort="volume" order="desc" onSort={() => {}} onVisibleChange={onVisible} onEndReached={onEnd} />,
    );
    await screen.findByText("KX-0000");
    const shown = bodyTickers();
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.length).toBeLessThan(30); // 600 px of 52 px rows and a few more, not 5,000
    await waitFor(() => expect(onVisible).toHaveBeenCalled());
    expect(onVisible.mock.lastCall![0].slice(0, 3)).toEqual(["KX-0000", "KX-0001", "KX-0002"]);
    expect(onEnd).not.toHaveBeenCalled();
    expect(screen.getByRole("table")).toHaveAttribute("aria-rowcount", "5001");
  });

  it("words changes in points", () => {
    expect(points("0.0250")).toBe("+2.5 pts");
    expect(points("-0.2000")).toBe("−20.0 pts");
    expect(points("0.0000")).toBe("0 pts");
    expect(points("-0.0004")).toBe("0 pts");
    expect(points(null)).toBe("—");
  });
});

// The page against a stand-in for the API's answers: the URL sets the query, the controls set the URL.
describe("MarketsPage", () => {
  const asked: URLSearchParams[] = [];
  const realFetch = globalThis.fetch;
  const realEventSource = (globalThis as { EventSource?: unknown }).EventSource;

  beforeAll(() => {
    globalThis.fetch = vi.fn(async (input: RequestInfo | URL) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      asked.push(url.searchParams);
      const q = url.searchParams.get("q");
      const page: MarketPage = {
        items: [market("KXRAIN-1", { title: "Rain in Paris" }), market("KXVOTE-2", { title: "Turnout" })].filter(
          (m) => !q || `${m.ticker} ${m.title}`.toLowerCase().includes(q.toLowerCase()),
        ),
        next_cursor: null,
      };
      return new Response(JSON.stringify(page), { status: 200, headers: { "Content-Type": "application/json" } });
    }) as typeof fetch;
    // jsdom has no EventSource: one that never connects (the stream is not under test here).
    (globalThis as { EventSource?: unknown }).EventSource = class {
      static CLOSED = 2;
      readyState = 0;
      onerror: (() => void) | null = null;
      addEventListener() {}
      close() {}
    };
  });
  afterAll(() => {
    globalThis.fetch = realFetch;
    (globalThis as { EventSource?: unknown }).EventSource = realEventSource;
  });
  afterEach(() => {
    asked.length = 0;
  });

  function renderAt(url: string) {
    const rootRoute = createRootRoute();
    const index = createRoute({ getParentRoute: () => rootRoute, path: "/", component: MarketsPage, validateSearch: parseMarketsSearch });
    const marketRoute = createRoute({ getParentRoute: () => rootRoute, path: "/markets/$ticker", component: () => null });
    const history = createMemoryHistory({ initialEntries: [url] });
    const router = createRouter({ routeTree: rootRoute.addChildren([index, marketRoute]), history });
    const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={client}>
        <RouterProvider router={router as never} />
      </QueryClientProvider>,
    );
    return router;
  }

  it("opens the view a link describes", async () => {
    renderAt("/?q=rain&status=any&category=Politics&sort=change_24h&order=asc");
    await screen.findByText("KXRAIN-1");
    const last = asked.at(-1)!;
    expect(Object.fromEntries(last)).toMatchObject({ q: "rain", category: "Politics", sort: "change_24h", order: "asc" });
    expect(last.has("status")).toBe(false); // any status
    expect(screen.getByLabelText("Search markets")).toHaveValue("rain");
    expect(screen.getByLabelText("Status")).toHaveValue("any");
    expect(screen.getByRole("columnheader", { name: /24 h/ })).toHaveAttribute("aria-sort", "ascending");
  });

  it("writes the search, the filters and the sort into the URL", async () => {
    const user = userEvent.setup();
    const router = renderAt("/");
    await screen.findByText("KXVOTE-2");
    expect(Object.fromEntries(asked.at(-1)!)).toMatchObject({ status: "open", sort: "volume", order: "desc" });

    await user.type(screen.getByLabelText("Search markets"), "turnout");
    await waitFor(() => expect(router.state.location.search).toEqual({ q: "turnout" }));
    await waitFor(() => expect(bodyTickers()).toEqual(["KXVOTE-2"]));

    await user.selectOptions(screen.getByLabelText("Status"), "settled");
    await user.selectOptions(screen.getByLabelText("Category"), "Politics");
    await user.click(screen.getByRole("button", { name: /Implied prob/ }));
    await waitFor(() =>
      expect(router.state.location.search).toEqual({
        q: "turnout",
        status: "settled",
        category: "Politics",
        sort: "implied_probability", // descending: the default order, not written
      }),
    );
    await user.click(screen.getByRole("button", { name: /Implied prob/ }));
    await waitFor(() => expect(router.state.location.search).toMatchObject({ order: "asc" }));
    await waitFor(() =>
      expect(Object.fromEntries(asked.at(-1)!)).toMatchObject({ q: "turnout", status: "settled", sort: "implied_probability", order: "asc" }),
    );

    await user.click(screen.getByRole("button", { name: "Clear filters" }));
    await waitFor(() => expect(router.state.location.search).toEqual({ sort: "implied_probability", order: "asc" }));
    expect(screen.getByLabelText("Search markets")).toHaveValue("");
  });

  it("says when nothing matches", async () => {
    renderAt("/?q=nothing-like-it");
    expect(await screen.findByText("No market matches these filters.")).toBeInTheDocument();
  });
});
