import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import {
  createMemoryHistory,
  createRootRoute,
  createRoute,
  createRouter,
  RouterProvider,
} from "@tanstack/react-router";
import { act, render, screen, waitFor, within } from "@testing-library/react";
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

  it("puts only the rows in view in the DOM, reports them, and asks for no more far from the end", async () => {
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

class FakeEventSource {
  static CLOSED = 2;
  static opened: FakeEventSource[] = [];
  readyState = 0;
  closed = false;
  onerror: (() => void) | null = null;
  handlers: Record<string, ((e: MessageEvent<string>) => void)[]> = {};
  constructor(readonly url: string) {
    FakeEventSource.opened.push(this);
  }
  addEventListener(kind: string, fn: (e: MessageEvent<string>) => void) {
    (this.handlers[kind] ??= []).push(fn);
  }
  emit(kind: string, data: unknown) {
    for (const fn of this.handlers[kind] ?? []) fn(new MessageEvent(kind, { data: JSON.stringify(data) }));
  }
  close() {
    this.closed = true;
  }
}

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
      if (q === "paged") {
        // Two pages: the second asked for with the first's cursor once the end of the list is in view.
        const second = url.searchParams.get("cursor") === "after-A";
        const page: MarketPage = {
          items: second ? [market("PAGED-B")] : [market("PAGED-A")],
          next_cursor: second ? null : "after-A",
        };
        return new Response(JSON.stringify(page), { status: 200, headers: { "Content-Type": "application/json" } });
      }
      const page: MarketPage = {
        items: [market("KXRAIN-1", { title: "Rain in Paris" }), market("KXVOTE-2", { title: "Turnout" })].filter(
          (m) => !q || `${m.ticker} ${m.title}`.toLowerCase().includes(q.toLowerCase()),
        ),
        next_cursor: null,
      };
      return new Response(JSON.stringify(page), { status: 200, headers: { "Content-Type": "application/json" } });
    }) as typeof fetch;
    // jsdom has no EventSource: one the test drives by hand.
    (globalThis as { EventSource?: unknown }).EventSource = FakeEventSource;
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

  it("loads the next page with the cursor when the end of the list comes into view", async () => {
    renderAt("/?q=paged");
    await screen.findByText("PAGED-B");
    expect(bodyTickers()).toEqual(["PAGED-A", "PAGED-B"]);
    const cursors = asked.filter((p) => p.get("q") === "paged").map((p) => p.get("cursor"));
    expect(cursors).toEqual([null, "after-A"]);
  });

  it("streams the quotes of the rows on screen and shows them in place", async () => {
    FakeEventSource.opened.length = 0;
    renderAt("/");
    await screen.findByText("KXRAIN-1");
    await waitFor(() => expect(FakeEventSource.opened.filter((s) => !s.closed)).toHaveLength(1));
    const source = FakeEventSource.opened.find((s) => !s.closed)!;
    const params = new URL(source.url).searchParams;
    expect(params.get("tickers")).toBe("KXRAIN-1,KXVOTE-2");
    expect(params.get("kinds")).toBe("snapshot");
    const row = () => screen.getByText("KXRAIN-1").closest("tr")!;
    expect(within(row()).getByText("43.5%")).toBeInTheDocument();
    act(() => {
      source.emit("ready", {});
      source.emit("snapshot", {
        ticker: "KXRAIN-1",
        ts: "2026-11-28T12:00:00Z",
        received_at: "2026-11-28T12:00:00Z",
        source: "websocket",
        sequence: 9,
        yes_bid: "0.5000",
        yes_ask: "0.5200",
        no_bid: "0.4800",
        no_ask: null,
        last_price: "0.5100",
        yes_bid_size: null,
        yes_ask_size: null,
        volume: "1300",
        open_interest: null,
        status: "active",
        implied_probability: "0.5100",
        implied_probability_source: "mid",
      });
    });
    expect(within(row()).getByText("51.0%")).toBeInTheDocument();
    expect(within(row()).getByText("+10.0 pts")).toBeInTheDocument(); // 0.025 + (0.51 − 0.435)
    expect(row()).toHaveClass("live-row");
    expect(screen.getByTestId("markets-stream")).toHaveTextContent("live");
  });

  it("says when nothing matches", async () => {
    renderAt("/?q=nothing-like-it");
    expect(await screen.findByText("No market matches these filters.")).toBeInTheDocument();
  });
});
